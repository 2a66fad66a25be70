"""`serve --workers N` (SERVICE_WORKERS): N uvicorn worker processes on the API port.

The parent process binds the API port and starts N workers on it (uvicorn's supervisor: a worker
that dies is replaced) and serves `/metrics` itself, once, on SERVICE_METRICS_PORT. On Linux each
worker gets its own listening socket on the port (SO_REUSEPORT): the kernel spreads new
connections over the workers, where with one shared socket whichever worker wakes first can take
nearly all of a client's keep-alive connections and leave the others idle. The parent holds every
worker's socket, so a worker's replacement takes over its socket and the connections queued on
it. Elsewhere the workers share one socket. The
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
import socket
import sys
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
# SO_REUSEPORT balances connections over the sockets of a port on Linux only (on macOS and the
# BSDs the last socket bound takes them all), so elsewhere the workers share one socket.
PER_WORKER_SOCKETS = sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")
# A multiprocess file's header (bytes used + padding): a smaller file is one being created.
MIN_DB_BYTES = 8


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


def sized(file: Path) -> bool:
    """Whether a multiprocess file has its header (a worker may be creating it or, for live
    gauges of a dead worker, the supervisor removing it)."""
    try:
        return file.stat().st_size >= MIN_DB_BYTES
    except FileNotFoundError:
        return False


class PodCollector:
    """The parent's /metrics: every worker's metrics summed, plus the pod's cost gauges."""

    def __init__(self, path: Path, hourly_price_usd: float) -> None:
        from prometheus_client import multiprocess

        collector: Any = multiprocess.MultiProcessCollector  # untyped in prometheus-client
        self.merge = collector.merge
        self.path = path
        self.cost = CostMeter(hourly_price_usd)
        self.counted = 0.0
        self.lock = threading.Lock()
        self.predictions = names.PREDICTIONS.removesuffix("_total")

    def collect(self) -> Iterator[Any]:
        # As MultiProcessCollector.collect, less the files a starting worker has created but not
        # yet sized (under 8 bytes, no value in them yet): reading one fails the whole scrape.
        files = [str(f) for f in self.path.glob("*.db") if sized(f)]
        predictions = 0.0
        for family in self.merge(files, accumulate=True):
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


def listening_sockets(host: str, port: int, workers: int) -> list[socket.socket]:
    """The workers' sockets on host:port: one per worker with SO_REUSEPORT (PER_WORKER_SOCKETS),
    else one for all. Exits with a clear error when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    try:
        # A plain bind first: SO_REUSEPORT would otherwise let a second `serve --workers` of the
        # same user join a port in use and take its share of the connections, silently.
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
            port = int(probe.getsockname()[1])  # port 0: the one the kernel chose, for all
        for _ in range(workers if PER_WORKER_SOCKETS else 1):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if PER_WORKER_SOCKETS:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            sock.set_inheritable(True)
    except OSError as error:
        for sock in sockets:
            sock.close()
        raise SystemExit(f"error: cannot listen on {host}:{port}: {error.strerror}") from None
    return sockets


def supervisor_class(multiproc_dir: Path) -> Any:
    """uvicorn's supervisor, with worker `i` always on socket `i` when PER_WORKER_SOCKETS (uvicorn
    gives every worker the same list of sockets), and the live gauges of a worker that died
    dropped from the sums."""
    import logging

    from prometheus_client import multiprocess
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors.multiprocess import Multiprocess, Process

    mark_dead: Any = multiprocess.mark_process_dead  # untyped in prometheus-client
    log = logging.getLogger("uvicorn.error")

    class Supervisor(Multiprocess):
        def start_worker(self, index: int) -> Process:
            sockets = [self.sockets[index]] if PER_WORKER_SOCKETS else self.sockets
            process = Process(self.config, sockets)
            process.start()
            return process

        def init_processes(self) -> None:
            self.processes = [self.start_worker(index) for index in range(self.processes_num)]

        def keep_subprocess_alive(self) -> None:
            # As uvicorn's, with the replacement on the dead worker's socket.
            for index, process in enumerate(self.processes):
                if self.should_exit.is_set():
                    return
                if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                    continue
                process.kill()  # hung, or gone
                process.join()
                if process.pid is not None:  # its live gauges go; its counters stay in the sums
                    mark_dead(process.pid, str(multiproc_dir))
                if process.exitcode == STARTUP_FAILURE:  # would fail the same way again
                    log.error("Worker [%s] failed to start: stopping.", process.pid)
                    self.should_exit.set()
                    return
                log.warning("Worker [%s] died: starting its replacement.", process.pid)
                self.processes[index] = self.start_worker(index)

        def restart_all(self) -> None:  # SIGHUP: one worker at a time, the new one ready first
            for index, old in enumerate(self.processes):
                if self.should_exit.is_set():
                    return
                new = self.start_worker(index)
                if not new.wait_until_ready(
                    self.config.timeout_worker_healthcheck, self.should_exit
                ):
                    new.kill()
                    new.join()
                    log.error("Worker [%s] was not ready in time: restart aborted.", new.pid)
                    return
                old.terminate()
                old.join()
                if old.pid is not None:
                    mark_dead(old.pid, str(multiproc_dir))
                self.processes[index] = new

        def handle_ttin(self) -> None:
            log.warning("The number of workers is SERVICE_WORKERS: change it and restart.")

        handle_ttou = handle_ttin

    return Supervisor


def serve_workers(
    settings: Settings, *, host: str, port: int, metrics_port: int, workers: int
) -> int:
    """Run `workers` worker processes on host:port and /metrics on metrics_port (0 = none),
    until SIGINT/SIGTERM."""
    path, owned = fresh_multiproc_dir()
    import uvicorn
    from prometheus_client import CollectorRegistry

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
        slots = listening_sockets(host, port, workers)
        try:
            supervisor_class(path)(config, sockets=slots).run()
        finally:
            for sock in slots:
                sock.close()
    finally:
        if scrape is not None and thread is not None:
            scrape.should_exit = True
            thread.join(timeout=5)
        if owned:
            shutil.rmtree(path, ignore_errors=True)
    return 0
