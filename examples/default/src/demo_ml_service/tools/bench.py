"""`make bench`: the service against a bare ASGI app serving the same exported model, over HTTP.

Contestants, each a real server process on 127.0.0.1 (uvicorn with uvloop and httptools, no
access log), all loading the same exported model folder (SERVICE_MODEL_DIR, default ./model):

    bare           a raw ASGI app: json.loads -> predict_proba (or predict) -> json.dumps: the limit
    service        `<pkg> serve` with telemetry as shipped (sampled traces, metrics, JSON logs)
    service-all    the same, every request traced (OTEL_TRACES_SAMPLER=parentbased_always_on)
    service-off    the same, telemetry switched off (SERVICE_TELEMETRY_ENABLED=false)
    service-sklearn  the service as shipped but predicting with scikit-learn
                   (SERVICE_INFERENCE_RUNTIME=sklearn): `service` and the modes above serve the
                   folder's ONNX copy with ONNX Runtime when it has one (artifact/onnx.py)

and, with `--modes`, `service-noexport` (telemetry on, spans exported nowhere: the export's share).

Then the workers phase: `serve --workers N` (telemetry as shipped) against `service` (one worker),
closed loop, alternating rounds: N = the cores left to the servers beside the load generator's,
at least 2; on 2 cores the N workers share a core with the load generator (the report says so).
Its ratio is set against the goal of 0.8 x N (docs/performance.md). `--workers 1` skips it.

Spans go through the real OTLP/HTTP exporter to a sink process; logs go to /dev/null. Servers
are pinned to one core, the load generator (this process, an asyncio HTTP/1.1 keep-alive client)
and the sink to another, when there are at least two. Two phases, each in alternating rounds
(bare, service, service-all, service-off, bare, ...), ratios taken per round, then the median:

    peak    closed loop, `--connections` connections each sending its next request on an answer
    fixed   open loop at `--rate-share` (default 50%) of the bare app's median peak: sends follow
            a fixed schedule; a send whose slot came while every connection was busy is late, and
            latency is measured from the slot (so a server falling behind cannot hide it)

Start-up (process start to the first 200 on /readyz) is measured for each server as it starts.
A benchmark, not a test: it prints figures and writes JSON (`--out`); it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..ops.metrics import PREDICT_ROUTE

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# A minimal OTLP/HTTP receiver: accepts every export with 200 and drops it.
_SINK = """
import http.server, sys
class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
print(server.server_address[1], flush=True)
server.serve_forever()
"""

MODES = ("bare", "service", "service-all", "service-off", "service-sklearn")
# Environment of each service mode, on top of the caller's.
MODE_ENV: dict[str, dict[str, str]] = {
    "service": {},
    "service-all": {"OTEL_TRACES_SAMPLER": "parentbased_always_on"},
    "service-off": {"SERVICE_TELEMETRY_ENABLED": "false"},
    "service-sklearn": {"SERVICE_INFERENCE_RUNTIME": "sklearn"},
    # Diagnostic (not in the default set): telemetry on, spans sampled but exported nowhere.
    "service-noexport": {"OTEL_TRACES_EXPORTER": "none"},
}
# What the bare app predicts with (`--bare-runtime`): scikit-learn (the issue's baseline), or the
# folder's ONNX copy, for the service's overhead against a bare app at ONNX Runtime's speed.
BARE_RUNTIME_ENV = "SLIPWAY_BENCH_BARE_RUNTIME"
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


# -- the bare baseline: what a model server cannot beat on this stack --
def baseline() -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """ASGI app factory (`uvicorn <pkg>.tools.bench:baseline --factory`): the exported model of
    SERVICE_MODEL_DIR behind json.loads -> predict_proba (predict for a regression) -> json.dumps,
    nothing else but what the model needs of its input: category strings as their codes."""
    import numpy as np

    from ..artifact import load_model_dir
    from ..artifact.onnx import Runtime
    from ..data.contract import DataContract
    from ..slo import load_slo

    contract = DataContract.load(Path(os.environ["SERVICE_CONTRACT_PATH"]))
    names = contract.feature_names
    encode = contract.encode_records if contract.category_codes else None
    classification = load_slo(Path(os.environ["SERVICE_SLO_PATH"])).model_task == "classification"
    runtime: Runtime = "onnx" if os.environ.get(BARE_RUNTIME_ENV) == "onnx" else "sklearn"
    pipeline = load_model_dir(Path(os.environ["SERVICE_MODEL_DIR"]), runtime).pipeline

    def answer(record: dict[str, Any]) -> dict[str, Any]:
        if encode is not None:
            row = encode([record])
        else:
            row = np.array([[record[n] for n in names]], dtype=float)
        if classification:
            proba = pipeline.predict_proba(row)
            return {"label": int(proba.argmax()), "confidence": float(proba.max())}
        return {"value": float(pipeline.predict(row)[0])}

    headers = [(b"content-type", b"application/json")]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan: nothing to do
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": f"{scope['type']}.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["path"] != PREDICT_ROUTE:
            body = b'{"status":"ready"}'
        else:
            chunks = []
            while True:
                message = await receive()
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    break
            body = json.dumps(answer(json.loads(b"".join(chunks)))).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*headers, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


# -- servers --
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def pin(core: int | set[int] | None) -> Callable[[], None] | None:
    if core is None:
        return None
    cpus = {core} if isinstance(core, int) else core
    return lambda: os.sched_setaffinity(0, cpus)


@dataclass
class Server:
    mode: str
    port: int
    process: subprocess.Popen[bytes]
    startup_s: float
    metrics_port: int = 0


def start_server(
    mode: str,
    package: str,
    env: dict[str, str],
    core: int | set[int] | None,
    timeout: float = 180.0,
    extra_args: Sequence[str] = (),
) -> Server:
    port = free_port()
    env = {**os.environ, **ONE_THREAD, **env, **MODE_ENV.get(mode, {})}
    env["SERVICE_PORT"] = str(port)
    metrics_port = free_port()
    env["SERVICE_METRICS_PORT"] = str(metrics_port)
    if mode == "bare":
        command = [
            sys.executable, "-m", "uvicorn", f"{package}.tools.bench:baseline", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop", "--http", "httptools",
            "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
    else:
        command = [sys.executable, "-m", f"{package}.cli", "serve", "--port", str(port)]
        command += extra_args
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=pin(core),
    )
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{mode} server exited with {process.returncode} (run it by hand)")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"GET /readyz HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n\r\n")
                if conn.recv(64).startswith(b"HTTP/1.1 200"):
                    return Server(mode, port, process, time.perf_counter() - started, metrics_port)
        except OSError:
            pass
        if time.perf_counter() - started > timeout:
            process.kill()
            raise RuntimeError(f"{mode} server not ready within {timeout:g} s")
        time.sleep(0.02)


def inference_runtime(port: int) -> str:
    """What predicts in a service (`/version`): "onnx" or "sklearn"."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"GET /version HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n\r\n")
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return str(json.loads(answer.split(b"\r\n\r\n", 1)[1]).get("inference_runtime"))


def stop(process: subprocess.Popen[Any]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# -- the load generator: raw HTTP/1.1 keep-alive connections on asyncio --
class Connection(asyncio.Protocol):
    """One keep-alive connection; `request()` sends the prepared bytes, resolves on the answer."""

    def __init__(self) -> None:
        self.buffer = b""
        self.waiter: asyncio.Future[int] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].lower()
        at = head.find(b"content-length:")
        length = int(head[at + 15 :].split(b"\r\n", 1)[0]) if at >= 0 else 0
        if len(self.buffer) < end + 4 + length:
            return
        status = int(self.buffer[9:12])
        self.buffer = self.buffer[end + 4 + length :]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("server closed the connection"))

    def request(self, data: bytes) -> asyncio.Future[int]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter


@dataclass
class Run:
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    late: int = 0
    sent: int = 0

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile_ms(self, q: float) -> float:
        if not self.latencies:
            return math.inf
        ordered = sorted(self.latencies)
        return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1] * 1000


async def connect(port: int, n: int) -> list[Connection]:
    loop = asyncio.get_running_loop()
    connections = []
    for _ in range(n):
        _, protocol = await loop.create_connection(Connection, "127.0.0.1", port)
        connections.append(protocol)
    return connections


async def closed_loop(
    port: int, request: bytes, connections: int, warmup: float, seconds: float
) -> Run:
    pool = await connect(port, connections)
    loop = asyncio.get_running_loop()
    begin = loop.time() + warmup
    end = begin + seconds
    run = Run(seconds)

    async def worker(conn: Connection) -> None:
        while (now := loop.time()) < end:
            status = await conn.request(request)
            if now >= begin:
                run.latencies.append(loop.time() - now)
                run.errors += status != 200

    await asyncio.gather(*(worker(c) for c in pool))
    for c in pool:
        assert c.transport is not None
        c.transport.close()
    return run


async def open_loop(
    port: int, request: bytes, connections: int, rate: float, warmup: float, seconds: float
) -> Run:
    """Sends at `rate` per second on a fixed schedule; latency counts from the scheduled slot."""
    pool = await connect(port, connections)
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for c in pool:
        idle.put_nowait(c)
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    begin = start + warmup
    total = int((warmup + seconds) * rate)
    run = Run(seconds)
    pending: set[asyncio.Task[None]] = set()

    async def one(conn: Connection, slot: float) -> None:
        status = await conn.request(request)
        if slot >= begin:
            run.latencies.append(loop.time() - slot)
            run.errors += status != 200
        idle.put_nowait(conn)

    for i in range(total):
        slot = start + i / rate
        delay = slot - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if idle.empty() and slot >= begin:
            run.late += 1  # every connection busy when the slot came: the server fell behind
        conn = await idle.get()
        if slot >= begin:
            run.sent += 1
        task = asyncio.create_task(one(conn, slot))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    for c in pool:
        assert c.transport is not None
        c.transport.close()
    return run


# -- the benchmark --
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per phase")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds per run")
    parser.add_argument("--connections", type=int, default=32, help="closed-loop connections")
    parser.add_argument(
        "--rate-share", type=float, default=0.5, help="fixed rate, share of the bare peak"
    )
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset")
    parser.add_argument(
        "--bare-runtime",
        choices=("sklearn", "onnx"),
        default="sklearn",
        help="what the bare app predicts with (default: scikit-learn, the baseline of the goals)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="workers of the workers phase; 0 = the cores beside the load generator's, "
        "at least 2; 1 = no workers phase",
    )
    parser.add_argument("--out", type=Path, default=Path("reports/bench.json"))
    parser.add_argument(
        "--short", action="store_true", help="1 round of 1 s + 0.5 s warm-up (CI smoke run)"
    )


def request_bytes(settings: Any) -> bytes:
    from ..data.contract import DataContract

    contract = DataContract.load(settings.contract_path)
    with settings.golden_path.open(encoding="utf-8") as handle:
        row = next(csv.DictReader(handle))
    body = json.dumps(contract.request_record(row)).encode()
    return (
        f"POST {PREDICT_ROUTE} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body


def cores() -> tuple[int | None, int | None]:
    """(server core, client core) when there are two or more, else (None, None)."""
    available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(available) < 2:
        return None, None
    return available[0], available[1]


def start_sink(core: int | None) -> tuple[subprocess.Popen[str], str]:
    sink = subprocess.Popen(
        [sys.executable, "-c", _SINK],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=pin(core),
    )
    assert sink.stdout is not None
    port = sink.stdout.readline().strip()
    return sink, f"http://127.0.0.1:{port}/v1/traces"


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def run_from_args(settings: Any, args: argparse.Namespace) -> int:
    from .._template import PACKAGE_NAME

    if args.short:
        args.rounds, args.seconds, args.warmup = 1, 1.0, 0.5
    modes = [m for m in args.modes.split(",") if m]
    if "bare" not in modes or any(m not in ("bare", *MODE_ENV) for m in modes):
        print(
            f"--modes must include bare; choose from bare, {', '.join(MODE_ENV)}", file=sys.stderr
        )
        return 2
    model_dir = settings.model_dir or Path("model")
    if not (model_dir / "slipway-model.json").is_file():
        print(f"no exported model in {model_dir}: run `make export` first", file=sys.stderr)
        return 2
    server_core, client_core = cores()
    workers, worker_cores, shared = worker_plan(args.workers)  # before this process is pinned
    if client_core is not None:
        os.sched_setaffinity(0, {client_core})
    sink, endpoint = start_sink(client_core)
    env = {
        "SERVICE_MODEL_DIR": str(model_dir.resolve()),
        "SERVICE_CONTRACT_PATH": str(settings.contract_path),
        "SERVICE_SLO_PATH": str(settings.slo_path),
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint,
        BARE_RUNTIME_ENV: args.bare_runtime,
    }
    request = request_bytes(settings)
    servers: dict[str, Server] = {}
    try:
        for mode in modes:  # one at a time, so each start-up is timed alone
            servers[mode] = start_server(mode, PACKAGE_NAME, env, server_core)
        runtimes = {m: inference_runtime(s.port) for m, s in servers.items() if m != "bare"}
        figures = asyncio.run(measure(servers, request, args))
        if workers > 1:
            if "service" not in servers:
                servers["service"] = start_server("service", PACKAGE_NAME, env, server_core)
            with tempfile.TemporaryDirectory(prefix="bench-multiproc-") as multiproc:
                many = start_server(
                    "service-workers",
                    PACKAGE_NAME,
                    {**env, "PROMETHEUS_MULTIPROC_DIR": multiproc},
                    worker_cores,
                    extra_args=["--workers", str(workers)],
                )
                servers["service-workers"] = many
                wait_for_workers(many, Path(multiproc), workers)
                figures["workers"] = {
                    "workers": workers,
                    "cores": sorted(worker_cores or ()),
                    "shared_with_load_generator": shared,
                    **asyncio.run(
                        measure_workers(servers["service"], many, workers, request, args)
                    ),
                }
    finally:
        for server in servers.values():
            stop(server.process)
        stop(sink)
    report = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "server_core": server_core, "client_core": client_core},
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "startup_s": {m: round(s.startup_s, 3) for m, s in servers.items()},
        "inference_runtime": {"bare": args.bare_runtime, **runtimes},
        **figures,
    }
    print_report(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"written: {args.out}")
    return 0


def worker_plan(requested: int) -> tuple[int, set[int] | None, bool]:
    """(workers, the cores they run on, whether those include the load generator's core)."""
    available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    _, client = cores()
    if requested == 1 or len(available) < 2:
        return 1, None, False
    own = [core for core in available if core != client]
    workers = requested or max(2, len(own))
    if workers <= len(own):
        return workers, set(own[:workers]), False
    return workers, set(available), True


def wait_for_workers(server: Server, multiproc: Path, workers: int, timeout: float = 180.0) -> None:
    """Until every worker has its model (its readiness gauge published, model_ready = 1);
    the server's start-up then counts to that moment."""
    from ..ops.metrics import MODEL_READY

    started = time.perf_counter() - server.startup_s
    url = f"http://127.0.0.1:{server.metrics_port}/metrics"
    while True:
        if len(list(multiproc.glob("gauge_livemin_*.db"))) >= workers:
            with urllib.request.urlopen(url, timeout=5) as response:
                text = response.read().decode()
            if f"\n{MODEL_READY} 1.0\n" in f"\n{text}":
                server.startup_s = time.perf_counter() - started
                return
        if server.process.poll() is not None or time.perf_counter() - started > timeout:
            raise RuntimeError(f"{workers} workers not all ready within {timeout:g} s")
        time.sleep(0.1)


async def measure_workers(
    one: Server, many: Server, workers: int, request: bytes, args: argparse.Namespace
) -> dict[str, Any]:
    """Closed loop, alternating rounds: one worker vs `workers` workers (more connections, so
    that each worker has enough of them whatever the kernel's share of them)."""
    connections = max(args.connections, 16 * workers)
    rps: dict[str, list[float]] = {"one": [], "many": []}
    non_200 = 0
    for _ in range(args.rounds):
        for name, server in (("one", one), ("many", many)):
            run = await closed_loop(server.port, request, connections, args.warmup, args.seconds)
            rps[name].append(run.throughput)
            non_200 += run.errors
    ratios = [m / o if o else math.nan for m, o in zip(rps["many"], rps["one"], strict=True)]
    return {
        "connections": connections,
        "one_worker_rps_rounds": rps["one"],
        "workers_rps_rounds": rps["many"],
        "ratio_rounds": ratios,
        "ratio_median": median(ratios),
        "goal_ratio": 0.8 * workers,
        "efficiency_median": median(ratios) / workers,
        "startup_s": round(many.startup_s, 3),
        "non_200": non_200,
    }


async def measure(
    servers: dict[str, Server], request: bytes, args: argparse.Namespace
) -> dict[str, Any]:
    modes = list(servers)
    peak: dict[str, list[float]] = {m: [] for m in modes}
    peak_p99: dict[str, list[float]] = {m: [] for m in modes}
    errors = dict.fromkeys(modes, 0)
    for _ in range(args.rounds):
        for mode in modes:
            run = await closed_loop(
                servers[mode].port, request, args.connections, args.warmup, args.seconds
            )
            peak[mode].append(run.throughput)
            peak_p99[mode].append(run.percentile_ms(99))
            errors[mode] += run.errors
    rate = args.rate_share * median(peak["bare"])
    fixed: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    for _ in range(args.rounds):
        for mode in modes:
            run = await open_loop(servers[mode].port, request, 64, rate, args.warmup, args.seconds)
            fixed[mode].append(
                {
                    "p50_ms": run.percentile_ms(50),
                    "p99_ms": run.percentile_ms(99),
                    "late": run.late,
                    "sent": run.sent,
                    "achieved_rps": run.throughput,
                }
            )
            errors[mode] += run.errors
    rounds = range(args.rounds)
    return {
        "peak": {
            m: {
                "rps_median": median(peak[m]),
                "rps_rounds": peak[m],
                "ratio_vs_bare_median": median([peak[m][r] / peak["bare"][r] for r in rounds]),
                "p99_ms_median": median(peak_p99[m]),
            }
            for m in modes
        },
        "fixed_rate": {
            "rate_rps": rate,
            **{
                m: {
                    "p50_ms_median": median([f["p50_ms"] for f in fixed[m]]),
                    "p99_ms_median": median([f["p99_ms"] for f in fixed[m]]),
                    "p99_ratio_vs_bare_median": median(
                        [fixed[m][r]["p99_ms"] / fixed["bare"][r]["p99_ms"] for r in rounds]
                    ),
                    "late_total": sum(int(f["late"]) for f in fixed[m]),
                    "sent_total": sum(int(f["sent"]) for f in fixed[m]),
                    "rounds": fixed[m],
                }
                for m in modes
            },
        },
        "non_200": errors,
    }


def print_report(report: dict[str, Any]) -> None:
    s = report["settings"]
    print(
        f"POST {PREDICT_ROUTE}, one record; {s['rounds']} alternating round(s) of "
        f"{s['seconds']:g} s (+{s['warmup']:g} s warm-up); server core "
        f"{report['machine']['server_core']}, client core {report['machine']['client_core']}"
    )
    print(f"\npeak, closed loop, {s['connections']} connections")
    print(f"  {'':16} {'req/s':>8} {'x bare':>7} {'p99 ms':>8} {'start s':>8}  runtime")
    for mode, p in report["peak"].items():
        print(
            f"  {mode:16} {p['rps_median']:8.0f} {p['ratio_vs_bare_median']:7.2f} "
            f"{p['p99_ms_median']:8.1f} {report['startup_s'][mode]:8.2f}  "
            f"{report['inference_runtime'][mode]}"
        )
    fixed = report["fixed_rate"]
    print(
        f"\nfixed rate, open loop, {fixed['rate_rps']:.0f} req/s "
        f"({s['rate_share']:.0%} of the bare peak)"
    )
    print(f"  {'':16} {'p50 ms':>8} {'p99 ms':>8} {'p99 x bare':>10} {'late':>7}")
    for mode in report["peak"]:
        f = fixed[mode]
        print(
            f"  {mode:16} {f['p50_ms_median']:8.2f} {f['p99_ms_median']:8.2f} "
            f"{f['p99_ratio_vs_bare_median']:10.2f} {f['late_total']:>4}/{f['sent_total']}"
        )
    scaling = report.get("workers")
    if scaling:
        where = (
            "sharing cores with the load generator"
            if scaling["shared_with_load_generator"]
            else "on cores of their own"
        )
        print(
            f"\nworkers, closed loop, {scaling['connections']} connections: "
            f"{scaling['workers']} workers on cores {scaling['cores']} ({where})"
        )
        print(
            f"  1 worker {median(scaling['one_worker_rps_rounds']):8.0f} req/s; "
            f"{scaling['workers']} workers {median(scaling['workers_rps_rounds']):8.0f} req/s; "
            f"x one worker {scaling['ratio_median']:.2f} (goal >= {scaling['goal_ratio']:.1f}), "
            f"start {scaling['startup_s']:.2f} s"
        )
        if scaling["non_200"]:
            print(f"  non-200 answers in the workers phase: {scaling['non_200']}", file=sys.stderr)
    bad = {m: n for m, n in report["non_200"].items() if n}
    if bad:
        print(f"\nnon-200 answers (a broken run, not a measurement): {bad}", file=sys.stderr)
