"""Load test against a running service, judged by slo.yaml (p95 latency and error rate).

A closed-loop async client: `concurrency` workers send POST /predict requests built from the golden
set until `requests` have been answered (size --concurrency to the load one pod must carry: each
in-flight request queues behind the others on a busy worker). Latency is measured at the client,
so it includes the network, as a user sees it. Exit status 1 when an objective is breached: the CD
pipeline runs this against staging and production and rolls back on failure.

    <pkg> loadtest --url http://127.0.0.1:8000        (or: make loadtest URL=...)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..config import Settings
from ..data.contract import DataContract
from ..ops.metrics import PREDICT_ROUTE
from ..slo import SLO, load_slo


@dataclass
class LoadResult:
    url: str
    requests: int
    concurrency: int
    duration_s: float
    latencies_ms: list[float] = field(repr=False)
    status_counts: dict[str, int]
    server_errors: int  # 5xx and transport failures (timeouts, refused connections)
    client_errors: int  # 4xx: the golden set should never be rejected

    @property
    def error_rate(self) -> float:
        return self.server_errors / self.requests if self.requests else 1.0

    @property
    def throughput_rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    def percentile_ms(self, q: float) -> float:
        """Nearest-rank percentile of the latencies (q in 0..100)."""
        if not self.latencies_ms:
            return math.inf
        ordered = sorted(self.latencies_ms)
        rank = max(1, math.ceil(q / 100 * len(ordered)))
        return ordered[rank - 1]

    def summary(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "latencies_ms"}
        data.update(
            error_rate=self.error_rate,
            throughput_rps=round(self.throughput_rps, 2),
            p50_ms=round(self.percentile_ms(50), 2),
            p95_ms=round(self.percentile_ms(95), 2),
            p99_ms=round(self.percentile_ms(99), 2),
        )
        return data


def golden_payloads(golden: Path, contract: DataContract, batch_size: int = 1) -> list[bytes]:
    """Request bodies made from the golden set's feature columns (never its target)."""
    with golden.open(newline="", encoding="utf-8") as handle:
        rows = [contract.request_record(row) for row in csv.DictReader(handle)]
    if not rows:
        raise ValueError(f"{golden} has no rows to build requests from")
    if batch_size == 1:
        return [json.dumps(row).encode() for row in rows]
    return [
        json.dumps({"records": rows[i : i + batch_size]}).encode()
        for i in range(0, len(rows), batch_size)
    ]


async def run_load(
    url: str,
    payloads: Sequence[bytes],
    *,
    requests: int = 500,
    concurrency: int = 4,
    timeout_s: float = 10.0,
    warmup: int = 5,
) -> LoadResult:
    """POST `requests` /predict calls (after `warmup` unmeasured ones); record each outcome."""
    import httpx  # deferred: a dev/CD tool; the runtime image's CLI must import without it

    endpoint = url.rstrip("/") + PREDICT_ROUTE
    headers = {"content-type": "application/json"}
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    server_errors = 0
    client_errors = 0
    next_index = 0

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=timeout_s, limits=limits) as client:
        for i in range(warmup):
            # A failure here is not counted: it shows up in the measured phase if it persists.
            with contextlib.suppress(httpx.HTTPError):
                await client.post(endpoint, content=payloads[i % len(payloads)], headers=headers)

        async def worker() -> None:
            nonlocal next_index, server_errors, client_errors
            while next_index < requests:
                body = payloads[next_index % len(payloads)]
                next_index += 1
                started = time.perf_counter()
                try:
                    response = await client.post(endpoint, content=body, headers=headers)
                    status = str(response.status_code)
                except httpx.HTTPError as error:
                    status = type(error).__name__
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[status] = statuses.get(status, 0) + 1
                if not status.isdigit() or int(status) >= 500:
                    server_errors += 1
                elif int(status) >= 400:
                    client_errors += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
        duration = time.perf_counter() - began

    return LoadResult(
        url=url,
        requests=len(latencies),
        concurrency=concurrency,
        duration_s=round(duration, 3),
        latencies_ms=latencies,
        status_counts=dict(sorted(statuses.items())),
        server_errors=server_errors,
        client_errors=client_errors,
    )


class SmokeFailure(RuntimeError):
    pass


def wait_ready(url: str, timeout_s: float, expect_model_version: str | None = None) -> None:
    """Smoke check: /readyz answers 200 in time and /version serves the expected model."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        ready = False
        with contextlib.suppress(httpx.HTTPError):
            ready = httpx.get(url.rstrip("/") + "/readyz", timeout=5).status_code == 200
        if ready:
            break
        if time.monotonic() > deadline:
            raise SmokeFailure(f"{url}/readyz did not answer 200 within {timeout_s:g} s")
        time.sleep(1)
    served = httpx.get(url.rstrip("/") + "/version", timeout=5).json()
    if expect_model_version and str(served.get("model_version")) != expect_model_version:
        raise SmokeFailure(
            f"{url} serves model version {served.get('model_version')}, "
            f"expected {expect_model_version}"
        )


def breaches(result: LoadResult, slo: SLO) -> list[str]:
    """Every objective the run breached, as sentences; empty when the SLO holds."""
    found = []
    p95 = result.percentile_ms(95)
    if p95 > slo.objectives.latency_p95_ms:
        found.append(f"p95 latency {p95:.1f} ms > SLO {slo.objectives.latency_p95_ms:g} ms")
    if result.error_rate > slo.objectives.max_error_rate:
        found.append(
            f"error rate {result.error_rate:.2%} > SLO {slo.objectives.max_error_rate:.2%} "
            f"(statuses: {result.status_counts})"
        )
    if result.client_errors:
        found.append(
            f"{result.client_errors} golden-set requests were rejected with 4xx "
            f"(statuses: {result.status_counts}): the service and data/contract.yaml disagree"
        )
    return found


def markdown(result: LoadResult, slo: SLO, found: list[str]) -> str:
    objectives = slo.objectives
    p50, p95, p99 = (result.percentile_ms(q) for q in (50, 95, 99))
    lines = [
        f"### Load test: {'FAILED' if found else 'passed'} ({result.url})",
        "",
        "| measure | value | objective |",
        "|---|---|---|",
        f"| p95 latency | {p95:.1f} ms | ≤ {objectives.latency_p95_ms:g} ms |",
        f"| error rate | {result.error_rate:.2%} | ≤ {objectives.max_error_rate:.2%} |",
        f"| p50 / p99 latency | {p50:.1f} / {p99:.1f} ms | |",
        f"| requests / concurrency | {result.requests} / {result.concurrency} | |",
        f"| throughput | {result.throughput_rps:.1f} req/s | |",
        "",
    ]
    lines += [f"- {line}" for line in found]
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="base URL of the service")
    parser.add_argument("--requests", type=int, default=500, help="measured requests")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    parser.add_argument("--batch-size", type=int, default=1, help="records per request")
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request timeout (s)")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured requests first")
    parser.add_argument(
        "--wait-ready", type=float, default=0, help="first wait up to this many s for /readyz"
    )
    parser.add_argument(
        "--expect-model-version", default=None, help="fail unless /version serves this version"
    )
    parser.add_argument("--slo", type=Path, default=None, help="slo.yaml (default: the repo's)")
    parser.add_argument("--golden", type=Path, default=None, help="CSV the requests come from")
    parser.add_argument("--report", type=Path, default=None, help="write the JSON summary here")
    parser.add_argument(
        "--summary-md", type=Path, default=None, help="append a Markdown table to this file"
    )


def run_from_args(args: argparse.Namespace) -> int:
    settings = Settings()
    slo = load_slo(args.slo or settings.slo_path)
    contract = DataContract.load(settings.contract_path)
    payloads = golden_payloads(args.golden or settings.golden_path, contract, args.batch_size)
    if args.wait_ready or args.expect_model_version:
        try:
            wait_ready(args.url, args.wait_ready, args.expect_model_version)
        except SmokeFailure as error:
            print(f"smoke test FAILED: {error}", file=sys.stderr)
            return 1
    result = asyncio.run(
        run_load(
            args.url,
            payloads,
            requests=args.requests,
            concurrency=args.concurrency,
            timeout_s=args.timeout,
            warmup=args.warmup,
        )
    )
    found = breaches(result, slo)
    text = markdown(result, slo, found)
    print(text, end="")
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        summary = {**result.summary(), "breaches": found, "passed": not found}
        args.report.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if args.summary_md:
        with args.summary_md.open("a", encoding="utf-8") as handle:
            handle.write(text)
    return 1 if found else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="loadtest", description="Load test a running service against slo.yaml."
    )
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
