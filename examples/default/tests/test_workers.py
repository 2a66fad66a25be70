"""`serve --workers 2`: two worker processes on one API port, one /metrics that counts them all.

A real `serve` process on 127.0.0.1 (started and stopped here) serving an exported model. On
Linux each worker listens on its own socket (SO_REUSEPORT), so keep-alive connections opened at
once are spread over both; elsewhere requests go on fresh connections until both workers have
answered some (read from each worker's own multiprocess file). Then /metrics is scraped once: its
request and prediction counters must sum to what was sent, across both workers.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from demo_ml_service.config import Settings
from demo_ml_service.ops import metrics as names
from demo_ml_service.registry import Registry
from demo_ml_service.serving.workers import PER_WORKER_SOCKETS, PodCollector

from .test_api import golden_records

START_SECONDS = 180  # generous: two workers import the serving stack at once on a busy box


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(port: int, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def post_on(connection: http.client.HTTPConnection, body: bytes) -> int:
    """POST /predict on an open connection, kept open (keep-alive)."""
    connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    return response.status


def post(port: int, body: bytes) -> int:
    """POST /predict on a fresh connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        return post_on(connection, body)
    finally:
        connection.close()


def scrape(port: int) -> dict[str, list[Any]]:
    status, body = get(port, "/metrics")
    assert status == 200, body[:500]
    samples: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def listen_count(port: int) -> int:
    """Sockets in LISTEN state on `port` (Linux: /proc/net/tcp, one line per socket)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            count += state == "0A" and int(local.rsplit(":", 1)[1], 16) == port
    return count


def predict_requests_by_worker(multiproc_dir: Path) -> dict[str, float]:
    """POST /predict requests counted in each worker's own counter file (by file name: pid)."""
    from prometheus_client import multiprocess

    merge: Any = multiprocess.MultiProcessCollector.merge  # untyped in prometheus-client
    counts: dict[str, float] = {}
    for file in sorted(multiproc_dir.glob("counter_*.db")):
        total = 0.0
        for family in merge([str(file)], accumulate=True):
            if family.name == names.REQUESTS.removesuffix("_total"):
                total += sum(s.value for s in family.samples if s.labels.get("route") == "/predict")
        counts[file.name] = total
    return counts


def wait_until_counted(multiproc_dir: Path, sent: int) -> dict[str, float]:
    """predict_requests_by_worker once all `sent` are counted (at most 10 s): a request is
    counted after its response has been sent, so the last ones may lag the client a moment."""
    deadline = time.monotonic() + 10
    by_worker = predict_requests_by_worker(multiproc_dir)
    while sum(by_worker.values()) < sent and time.monotonic() < deadline:
        time.sleep(0.05)
        by_worker = predict_requests_by_worker(multiproc_dir)
    return by_worker


@pytest.fixture
def two_workers(trained_settings: Settings, tmp_path: Path) -> Iterator[tuple[int, int, Path]]:
    model_dir = tmp_path / "model"
    Registry.from_settings(trained_settings).export("champion", model_dir)
    multiproc_dir = tmp_path / "multiproc"
    multiproc_dir.mkdir()
    (multiproc_dir / "counter_1.db").write_bytes(b"stale")  # a previous start's: emptied at start
    api, metrics = free_port(), free_port()
    env = {
        **os.environ,
        "SERVICE_MODEL_DIR": str(model_dir),
        "SERVICE_WORKERS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir),
        "OTEL_TRACES_EXPORTER": "none",
        "OMP_NUM_THREADS": "1",
    }
    log = (tmp_path / "serve.log").open("w")
    command = [sys.executable, "-c", "from demo_ml_service.cli import main; main()", "serve"]
    process = subprocess.Popen(
        [*command, "--port", str(api), "--metrics-port", str(metrics)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + START_SECONDS
        # Ready = both workers have published their gauges and model_ready (livemin) is 1.
        while True:
            ready = None
            try:
                if len(list(multiproc_dir.glob("gauge_livemin_*.db"))) == 2:
                    ready = scrape(metrics).get(names.MODEL_READY)
            except OSError:
                pass
            if ready and ready[0].value == 1.0:
                break
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                tail = (tmp_path / "serve.log").read_text()[-3000:]
                raise RuntimeError(f"serve --workers 2 did not get ready:\n{tail}")
            time.sleep(0.5)
        yield api, metrics, multiproc_dir
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()


def test_a_scrape_while_a_worker_creates_its_metrics_file_answers(tmp_path: Path) -> None:
    """A starting worker's file exists empty for a moment before it is sized: the pod's /metrics
    leaves it out (no value is in it yet) instead of failing the whole scrape."""
    from prometheus_client import CollectorRegistry, generate_latest

    (tmp_path / "counter_4242.db").write_bytes(b"")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PodCollector(tmp_path, hourly_price_usd=0.1))
    assert names.PREDICTION_COST.encode() in generate_latest(registry)


@pytest.mark.slow  # starts a server with two worker processes
def test_two_workers_share_the_port_and_metrics_count_every_request(
    two_workers: tuple[int, int, Path],
) -> None:
    api, metrics, multiproc_dir = two_workers
    assert not (multiproc_dir / "counter_1.db").exists()
    assert get(api, "/metrics")[0] == 404  # /metrics is served once, by the parent
    body = json.dumps({"records": golden_records(1)}).encode()
    sent = 0
    if PER_WORKER_SOCKETS:
        # One socket per worker: the kernel spreads connections over them, so 16 keep-alive
        # connections opened at once land on both (all on one: a chance of 2 in 65536).
        assert listen_count(api) == 2
        connections = [http.client.HTTPConnection("127.0.0.1", api, timeout=10) for _ in range(16)]
        try:
            for connection in connections:
                connection.connect()
            for _ in range(2):
                for connection in connections:
                    assert post_on(connection, body) == 200
                    sent += 1
        finally:
            for connection in connections:
                connection.close()
    else:  # one shared socket: fresh connections until each worker has accepted some (bounded)
        while sent < 2000:
            for _ in range(20):
                assert post(api, body) == 200
                sent += 1
            by_worker = predict_requests_by_worker(multiproc_dir)
            if len(by_worker) == 2 and all(count > 0 for count in by_worker.values()):
                break
    by_worker = wait_until_counted(multiproc_dir, sent)
    assert len(by_worker) == 2 and all(count > 0 for count in by_worker.values()), by_worker
    samples = scrape(metrics)
    requests = [
        s
        for s in samples[names.REQUESTS]
        if s.labels["route"] == "/predict" and s.labels["method"] == "POST"
    ]
    assert sum(s.value for s in requests) == sent == sum(by_worker.values())
    assert {s.labels["status"] for s in requests} == {"200"}
    assert sum(s.value for s in samples[names.PREDICTIONS]) == sent
    histogram_count = [
        s for s in samples[f"{names.REQUEST_DURATION}_count"] if s.labels["route"] == "/predict"
    ]
    assert sum(s.value for s in histogram_count) == sent
    # Scrape-time gauges, published by the workers, one series each (not one per worker).
    assert [s.value for s in samples[names.MODEL_READY]] == [1.0]
    assert len(samples[names.MODEL_INFO]) == 1
    assert samples[names.MODEL_INFO][0].labels["model_alias"] == "champion"
    [age] = samples[names.TRAINING_DATA_AGE]  # the freshness alert's input, with workers too
    assert age.value >= 0
    assert samples[f"{names.PREDICTION_COST}_total"][0].value > 0
