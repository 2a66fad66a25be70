"""`make bench`: throughput of POST /predict with telemetry on vs off, and the overhead ratio.

Both apps are the real service (create_app) with the same model, driven in-process over ASGI
(no network, no HTTP client in the measurement, so the figure isolates what telemetry costs the
service). "On" means: spans exported through the real OTLP/HTTP exporter to a sink process on
127.0.0.1 (or the exporter you choose), metrics updated, one JSON access log line per request
(written to /dev/null). Rounds alternate off/on; the medians are compared. A benchmark, not a
test: it prints figures; `--check` makes it exit 1 above the budget.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

BUDGET = 0.15

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

Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[Message]],
        Callable[[Message], Awaitable[None]],
    ],
    Awaitable[None],
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--requests", type=int, default=1500, help="requests per round and mode")
    parser.add_argument("--rounds", type=int, default=5, help="alternating off/on rounds")
    parser.add_argument("--batch", type=int, default=1, help="records per request")
    parser.add_argument(
        "--exporter",
        choices=["otlp", "console", "none"],
        default="otlp",
        help="trace exporter when on (otlp: to a local sink over HTTP; default)",
    )
    parser.add_argument("--check", action="store_true", help=f"exit 1 above {BUDGET:.0%} overhead")


def example_body(settings: Any, batch: int) -> bytes:
    from .data.contract import DataContract

    contract = DataContract.load(settings.contract_path)
    with settings.golden_path.open(encoding="utf-8") as handle:
        rows = [row for _, row in zip(range(batch), csv.DictReader(handle), strict=False)]
    records = [{name: float(row[name]) for name in contract.feature_names} for row in rows]
    return json.dumps(records[0] if batch == 1 else {"records": records}).encode()


async def post(app: ASGIApp, body: bytes) -> int:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict",
        "raw_path": b"/predict",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    delivered = False
    status = 0

    async def receive() -> Message:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _drive(app: ASGIApp, body: bytes, requests: int) -> None:
    for _ in range(requests):
        status = await post(app, body)
        if status != 200:
            raise RuntimeError(f"POST /predict answered {status}")


def throughput(app: ASGIApp, body: bytes, requests: int) -> tuple[float, float]:
    """(requests per wall-clock second, requests per CPU second of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    asyncio.run(_drive(app, body, requests))
    return requests / (time.perf_counter() - wall), requests / (time.process_time() - cpu)


def start_sink() -> tuple[subprocess.Popen[str], str]:
    sink = subprocess.Popen([sys.executable, "-c", _SINK], stdout=subprocess.PIPE, text=True)
    assert sink.stdout is not None
    port = sink.stdout.readline().strip()
    return sink, f"http://127.0.0.1:{port}/v1/traces"


def run_from_args(settings: Any, args: argparse.Namespace) -> int:
    from .serving.app import create_app, load_model

    model = load_model(settings)
    body = example_body(settings, args.batch)
    sink = None
    if args.exporter == "otlp":
        sink, endpoint = start_sink()
        os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = endpoint
    try:
        on = create_app(
            settings.model_copy(
                update={"telemetry_enabled": True, "traces_exporter": args.exporter}
            ),
            model,
        )
        off = create_app(settings.model_copy(update={"telemetry_enabled": False}), model)
        figures: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
        stderr = sys.stderr
        with open(os.devnull, "w") as devnull:
            sys.stderr = devnull  # the JSON access log lines are written (and cost) but not shown
            try:
                throughput(on, body, 200)
                throughput(off, body, 200)
                for _ in range(args.rounds):
                    figures["off"].append(throughput(off, body, args.requests))
                    figures["on"].append(throughput(on, body, args.requests))
            finally:
                sys.stderr = stderr
                on.state.telemetry.shutdown()
    finally:
        if sink is not None:
            sink.terminate()
            sink.wait(timeout=10)
    wall = {mode: statistics.median(f[0] for f in figures[mode]) for mode in figures}
    cpu = {mode: statistics.median(f[1] for f in figures[mode]) for mode in figures}
    overhead = 1 - cpu["on"] / cpu["off"]
    print(
        f"POST /predict, {args.batch} record(s) per request, "
        f"{args.rounds} rounds x {args.requests} requests, medians"
    )
    print(f"{'':14} {'req/s':>9} {'req/CPU-s':>10}")
    print(f"{'telemetry off':14} {wall['off']:9.1f} {cpu['off']:10.1f}")
    print(f"{'telemetry on':14} {wall['on']:9.1f} {cpu['on']:10.1f}   traces -> {args.exporter}")
    print(f"{'ratio on/off':14} {wall['on'] / wall['off']:9.3f} {cpu['on'] / cpu['off']:10.3f}")
    # CPU time includes the span export thread and is not skewed by other processes on the host.
    print(f"overhead: {overhead:.1%} of throughput per CPU second (budget {BUDGET:.0%})")
    if overhead > BUDGET:
        print(f"over budget: telemetry costs {overhead:.1%} of throughput", file=sys.stderr)
        return 1 if args.check else 0
    return 0
