"""`make bench`: throughput of POST /predict with telemetry on vs off, and the overhead ratio.

Both apps are the real service (create_app) with the same model, driven in-process over ASGI
(no network, no HTTP client in the measurement, so the figure isolates what telemetry costs the
service). "On" means: spans exported through the real OTLP/HTTP exporter to a sink process on
127.0.0.1 (or the exporter you choose), metrics updated, one JSON access log line per request
(written to /dev/null). "On" samples traces as configured (SERVICE_TRACE_SAMPLE_RATIO or the
OTEL_TRACES_SAMPLER variables); a third app traces every request, for comparison. Short blocks
of requests take turns between the apps, and CPU time of this process (which includes the span
export thread) is compared. A benchmark, not a test: it prints figures; `--check` makes it exit 1
above the budget.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ..ops.metrics import PREDICT_ROUTE

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
    parser.add_argument("--requests", type=int, default=3000, help="requests per mode")
    parser.add_argument("--block", type=int, default=50, help="requests per alternating block")
    parser.add_argument("--batch", type=int, default=1, help="records per request")
    parser.add_argument(
        "--exporter",
        choices=["otlp", "console", "none"],
        default="otlp",
        help="trace exporter when on (otlp: to a local sink over HTTP; default)",
    )
    # %% because argparse %-formats help strings
    parser.add_argument(
        "--check", action="store_true", help=f"exit 1 above {BUDGET * 100:.0f}%% overhead"
    )


def example_body(settings: Any, batch: int) -> bytes:
    from ..data.contract import DataContract

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
        "path": PREDICT_ROUTE,
        "raw_path": PREDICT_ROUTE.encode(),
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


async def interleaved(
    apps: dict[str, ASGIApp], body: bytes, requests: int, block: int
) -> dict[str, tuple[float, float]]:
    """mode -> (requests per wall second, requests per CPU second), measured in short blocks
    that take turns, so that a neighbour's load falls on every mode alike."""
    wall = dict.fromkeys(apps, 0.0)
    cpu = dict.fromkeys(apps, 0.0)
    for app in apps.values():  # warm-up
        await _drive(app, body, min(block * 2, 200))
    for _ in range(max(requests // block, 1)):
        for mode, app in apps.items():
            w, c = time.perf_counter(), time.process_time()
            await _drive(app, body, block)
            wall[mode] += time.perf_counter() - w
            cpu[mode] += time.process_time() - c
    done = max(requests // block, 1) * block
    return {mode: (done / wall[mode], done / cpu[mode]) for mode in apps}


def start_sink() -> tuple[subprocess.Popen[str], str]:
    sink = subprocess.Popen([sys.executable, "-c", _SINK], stdout=subprocess.PIPE, text=True)
    assert sink.stdout is not None
    port = sink.stdout.readline().strip()
    return sink, f"http://127.0.0.1:{port}/v1/traces"


def run_from_args(settings: Any, args: argparse.Namespace) -> int:
    from ..serving.app import create_app
    from ..serving.deps import load_model

    model = load_model(settings)
    body = example_body(settings, args.batch)
    sink = None
    if args.exporter == "otlp":
        sink, endpoint = start_sink()
        os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = endpoint
    on_settings = settings.model_copy(
        update={"telemetry_enabled": True, "traces_exporter": args.exporter}
    )
    sampler = os.environ.get("OTEL_TRACES_SAMPLER")
    sampling = (
        f"OTEL_TRACES_SAMPLER={sampler} {os.environ.get('OTEL_TRACES_SAMPLER_ARG', '')}".strip()
        if sampler
        else f"{settings.trace_sample_ratio:.0%} of requests traced (SERVICE_TRACE_SAMPLE_RATIO)"
    )
    apps: dict[str, Any] = {
        "off": create_app(settings.model_copy(update={"telemetry_enabled": False}), model),
        "on": create_app(on_settings, model),
    }
    os.environ["OTEL_TRACES_SAMPLER"] = "parentbased_always_on"
    try:
        apps["on, every request traced"] = create_app(on_settings, model)
    finally:
        if sampler is None:
            del os.environ["OTEL_TRACES_SAMPLER"]
        else:
            os.environ["OTEL_TRACES_SAMPLER"] = sampler
    stderr = sys.stderr
    try:
        with open(os.devnull, "w") as devnull:
            sys.stderr = devnull  # the JSON access log lines are written (and cost) but not shown
            try:
                figures = asyncio.run(interleaved(apps, body, args.requests, args.block))
            finally:
                sys.stderr = stderr
                for app in apps.values():
                    app.state.runtime.telemetry.shutdown()
    finally:
        if sink is not None:
            sink.terminate()
            sink.wait(timeout=10)
    off_cpu = figures["off"][1]
    print(
        f"POST /predict, {args.batch} record(s) per request, {args.requests} requests per mode "
        f"in alternating blocks of {args.block}; traces -> {args.exporter}"
    )
    print(f"{'':36} {'req/s':>8} {'req/CPU-s':>10} {'ratio':>7}")
    for mode, (wall, cpu) in figures.items():
        print(f"{'telemetry ' + mode:36} {wall:8.1f} {cpu:10.1f} {cpu / off_cpu:7.3f}")
    overhead = 1 - figures["on"][1] / off_cpu
    # CPU time counts the span export thread and is less skewed by other processes than wall time.
    print(
        f"overhead (on, {sampling}): {overhead:.1%} of throughput per CPU second; "
        f"budget {BUDGET:.0%}"
    )
    if overhead > BUDGET:
        print(f"over budget: telemetry costs {overhead:.1%} of throughput", file=sys.stderr)
        return 1 if args.check else 0
    return 0
