"""The load test against real HTTP servers on 127.0.0.1: the service itself, and a failing one."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml

from demo_ml_service.artifact import LoadedModel
from demo_ml_service.config import Settings
from demo_ml_service.serving.app import create_app
from demo_ml_service.tools.loadtest import main

pytestmark = pytest.mark.slow

Scope = MutableMapping[str, Any]


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Run `app` under uvicorn on a free 127.0.0.1 port; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def slo_with(tmp_path: Path, **objectives: float) -> Path:
    """A copy of the repo's slo.yaml with some objectives replaced."""
    data = yaml.safe_load(Settings().slo_path.read_text(encoding="utf-8"))
    data["objectives"].update(objectives)
    path = tmp_path / "slo.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_service_meets_a_reachable_slo(tmp_path: Path, champion: LoadedModel) -> None:
    # A generous latency objective: this checks the plumbing, not this machine's speed.
    slo = slo_with(tmp_path, latency_p95_ms=5000)
    report = tmp_path / "loadtest.json"
    summary = tmp_path / "summary.md"
    with serving(create_app(Settings(), model=champion)) as url:
        code = main(
            f"--url {url} --requests 120 --concurrency 4 --slo {slo} --report {report} "
            f"--summary-md {summary}".split()
        )
    result = json.loads(report.read_text(encoding="utf-8"))
    assert code == 0, result
    assert result["passed"] and result["requests"] == 120
    assert result["status_counts"] == {"200": 120}
    assert 0 < result["p50_ms"] <= result["p95_ms"] <= result["p99_ms"]
    assert "Load test: passed" in summary.read_text(encoding="utf-8")


def test_latency_breach_fails(tmp_path: Path, champion: LoadedModel) -> None:
    slo = slo_with(tmp_path, latency_p95_ms=0.001)  # no real HTTP round trip is this fast
    report = tmp_path / "loadtest.json"
    with serving(create_app(Settings(), model=champion)) as url:
        code = main(f"--url {url} --requests 40 --slo {slo} --report {report}".split())
    result = json.loads(report.read_text(encoding="utf-8"))
    assert code == 1
    assert any(line.startswith("p95 latency") for line in result["breaches"])


def test_error_rate_breach_fails(tmp_path: Path) -> None:
    """A server that fails one request in five breaches any error-rate SLO below 20 %."""
    calls = 0

    async def flaky(
        scope: Scope,
        receive: Callable[[], Awaitable[Scope]],
        send: Callable[[Scope], Awaitable[None]],
    ) -> None:
        nonlocal calls
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        calls += 1
        status = 500 if calls % 5 == 0 else 200
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}"})

    slo = slo_with(tmp_path, latency_p95_ms=5000, max_error_rate=0.05)
    report = tmp_path / "loadtest.json"
    with serving(flaky) as url:
        code = main(
            f"--url {url} --requests 100 --warmup 0 --concurrency 1 --slo {slo} "
            f"--report {report}".split()
        )
    result = json.loads(report.read_text(encoding="utf-8"))
    assert code == 1
    assert result["status_counts"] == {"200": 80, "500": 20}
    assert result["error_rate"] == pytest.approx(0.2)
    assert any(line.startswith("error rate") for line in result["breaches"])


def test_unreachable_service_counts_as_errors(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    report = tmp_path / "loadtest.json"
    url = f"http://127.0.0.1:{port}"
    code = main(f"--url {url} --requests 5 --warmup 0 --timeout 2 --report {report}".split())
    result = json.loads(report.read_text(encoding="utf-8"))
    assert code == 1
    assert result["error_rate"] == 1.0


def test_smoke_check_rejects_an_unexpected_model_version(
    tmp_path: Path, champion: LoadedModel
) -> None:
    with serving(create_app(Settings(), model=champion)) as url:
        wrong = main(f"--url {url} --requests 5 --wait-ready 5 --expect-model-version 999".split())
        right = main(
            f"--url {url} --requests 5 --wait-ready 5 --expect-model-version {champion.version} "
            f"--slo {slo_with(tmp_path, latency_p95_ms=5000)}".split()
        )
    assert (wrong, right) == (1, 0)
