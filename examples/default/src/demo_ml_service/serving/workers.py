"""`serve --workers N` (SERVICE_WORKERS): N uvicorn worker processes on the API port.

The parent process binds the API socket once, starts N workers on it (uvicorn's supervisor: a
worker that dies is replaced) and serves `/metrics` itself, once, on SERVICE_METRICS_PORT. The
workers write their metrics to prometheus-client's multiprocess files in PROMETHEUS_MULTIPROC_DIR
(a fresh directory per start; a configured one is emptied at start); the parent's scrape sums
the counters and histograms of every worker (`MultiProcessCollector`), reads the gauges each
worker publishes every PUBLISH_SECONDS (telemetry/collector.py `PublishedGauges`: how they
combine) and computes the cost gauges from the summed prediction counter, for the whole pod.

With one worker none of this runs: `serve` serves the API and /metrics in one process.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .._template import PACKAGE_NAME
from ..config import Settings
from ..ops import metrics as names
from ..slo import load_slo
from .telemetry.collector import cost_families
from .telemetry.cost import CostMeter

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# How often a worker writes its model and drift gauges (a scrape sees them this much late).
PUBLISH_SECONDS = 2.0
# How long the parent waits for its /metrics server to listen before starting the workers.
METRICS_START_SECONDS = 10.0


def available_cpus() -> int:
    """CPUs this process may use: the cgroup v2 CPU limit (cpu.max, rounded up, like the k8s
    downward API with divisor 1) when there is one, else the CPUs it may run on; at least 1."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (macOS)
        count = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            count = min(count, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return max(1, count)


def worker_count(requested: int) -> int:
    """`requested` workers; 0 = one per available CPU."""
    return requested if requested > 0 else available_cpus()


def fresh_multiproc_dir() -> tuple[Path, bool]:
    """The multiprocess directory of this start, emptied, exported to the workers' environment;
    and whether this process made it (then it removes it at exit)."""
    configured = os.environ.get(MULTIPROC_ENV)
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):  # a previous start's values would be summed in
            stale.unlink()
        return path, False
    path = Path(tempfile.mkdtemp(prefix=f"{PACKAGE_NAME}-metrics-"))
    os.environ[MULTIPROC_ENV] = str(path)
    return path, True


class PodCollector:
    """The parent's /metrics: every worker's metrics summed, plus the pod's cost gauges."""

    def __init__(self, path: Path, hourly_price_usd: float) -> None:
        from prometheus_client import multiprocess

        collector: Any = multiprocess.MultiProcessCollector  # untyped in prometheus-client
        self.multiprocess: Any = collector(None, path=str(path))
        self.cost = CostMeter(hourly_price_usd)
        self.counted = 0.0
        self.lock = threading.Lock()
        self.predictions = names.PREDICTIONS.removesuffix("_total")

    def collect(self) -> Iterator[Any]:
        predictions = 0.0
        for family in self.multiprocess.collect():
            if family.name == self.predictions:
                predictions = sum(s.value for s in family.samples if s.name.endswith("_total"))
            yield family
        with self.lock:  # the predictions since the last scrape feed the pod's cost meter
            if predictions > self.counted:
                self.cost.add(round(predictions - self.counted))
                self.counted = predictions
        yield from cost_families(self.cost)


def metrics_server_app(registry: Any) -> Any:
    """GET /metrics of `registry`, nothing else (text format 0.0.4, as `routes.metrics_app`)."""
    from prometheus_client import generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_PLAIN_0_0_4)

    app = Starlette()
    app.add_route("/metrics", metrics, methods=["GET"])
    return app


def worker_app() -> Any:
    """The app of one worker process (uvicorn imports this factory in each worker)."""
    from .app import create_app

    app = create_app(Settings())
    telemetry = app.state.runtime.telemetry

    def publish() -> None:
        while True:
            telemetry.publish(app.state.model)
            time.sleep(PUBLISH_SECONDS)

    threading.Thread(target=publish, name="metrics-publisher", daemon=True).start()
    return app


def serve_workers(
    settings: Settings, *, host: str, port: int, metrics_port: int, workers: int
) -> int:
    """Run `workers` worker processes on host:port and /metrics on metrics_port (0 = none),
    until SIGINT/SIGTERM."""
    path, owned = fresh_multiproc_dir()
    import uvicorn
    from prometheus_client import CollectorRegistry, multiprocess
    from uvicorn.supervisors import Multiprocess

    class Supervisor(Multiprocess):
        def keep_subprocess_alive(self) -> None:
            before = {process.pid for process in self.processes}
            super().keep_subprocess_alive()
            for pid in before - {process.pid for process in self.processes}:
                if pid is not None:  # its live gauges go; its counters stay in the sums
                    mark_dead: Any = multiprocess.mark_process_dead  # untyped
                    mark_dead(pid, str(path))

    config = uvicorn.Config(
        f"{PACKAGE_NAME}.serving.workers:worker_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
    )
    scrape: uvicorn.Server | None = None
    thread: threading.Thread | None = None
    try:
        if metrics_port:
            registry = CollectorRegistry(auto_describe=False)
            price = load_slo(settings.slo_path).objectives.cost.instance_hourly_price_usd
            registry.register(PodCollector(path, price))
            scrape = uvicorn.Server(
                uvicorn.Config(
                    metrics_server_app(registry),
                    host=host,
                    port=metrics_port,
                    log_config=None,
                    access_log=False,
                    lifespan="off",
                )
            )
            # In a thread: uvicorn leaves the signals to the main thread (the supervisor).
            thread = threading.Thread(target=scrape.run, name="metrics-server", daemon=True)
            thread.start()
            deadline = time.monotonic() + METRICS_START_SECONDS
            while not scrape.started and thread.is_alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            if not scrape.started:
                raise SystemExit(f"error: /metrics could not listen on {host}:{metrics_port}")
        sock = config.bind_socket()
        try:
            Supervisor(config, sockets=[sock]).run()
        finally:
            sock.close()
    finally:
        if scrape is not None and thread is not None:
            scrape.should_exit = True
            thread.join(timeout=5)
        if owned:
            shutil.rmtree(path, ignore_errors=True)
    return 0
