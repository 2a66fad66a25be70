"""`<package> batch-score`: arguments, and the run the CLI calls (the drift report is passed in
by the CLI, which sits above tools/). Importing this module stays light (no pandas, no MLflow):
the CLI builds every command's arguments, in the serving image too."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import Settings
from ..lifecycle import CHAMPION
from .report import PUSHGATEWAY_VARIABLE
from .rules import DEFAULT_CHUNK_ROWS

DriftReport = Callable[..., dict[str, Any]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input",
        required=True,
        help="a CSV/Parquet file or folder, an fsspec URL, sql:<ENV_VAR>:<query>, "
        "or (Spark) table:<name>",
    )
    parser.add_argument(
        "--output",
        required=True,
        help="a Parquet dataset folder or URL, sql:<ENV_VAR>:<table>, or (Spark) table:<name>",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--alias", default=CHAMPION, help="registry alias to score with")
    which.add_argument("--version", default=None, help="or a registry version")
    parser.add_argument(
        "--chunk-rows",
        type=int,
        default=DEFAULT_CHUNK_ROWS,
        help=f"rows per chunk, local engine (memory grows with it; default {DEFAULT_CHUNK_ROWS})",
    )
    parser.add_argument("--engine", choices=["local", "spark"], default="local")
    parser.add_argument(
        "--master", default=None, help="Spark master (default: SPARK_MASTER or local[*])"
    )
    parser.add_argument(
        "--report-dir",
        type=Path,
        default=None,
        help="summary and drift report (default: reports/batch/)",
    )
    parser.add_argument(
        "--pushgateway",
        default=None,
        help=f"Prometheus Pushgateway URL for the run's metrics (default: {PUSHGATEWAY_VARIABLE})",
    )
    parser.add_argument("--no-drift", action="store_true", help="skip the drift report")


def run(settings: Settings, args: argparse.Namespace, drift_report: DriftReport) -> int:
    import os

    from ..data.contract import DataContract
    from ..data.sources import parse_source
    from ..slo import load_slo
    from .job import BatchResult, Progress, batch_model, count_rows, run_local
    from .report import push, write_summary
    from .sinks import parse_sink

    if args.chunk_rows < 1:
        raise ValueError(f"--chunk-rows must be at least 1; got {args.chunk_rows}")
    contract = DataContract.load(settings.contract_path)
    slo = load_slo(settings.slo_path)
    spark = args.engine == "spark"
    source: Any = (
        args.input if spark and args.input.startswith("table:") else parse_source(args.input)
    )
    target: Any = (
        args.output if spark and args.output.startswith("table:") else parse_sink(args.output)
    )
    out_dir: Path = args.report_dir or settings.reports_dir / "batch"
    with batch_model(settings, args.alias, args.version) as model:
        result: BatchResult
        if spark:
            from .spark import run_spark, stop

            try:
                result = run_spark(source, target, model, contract, slo, master=args.master)
            finally:
                stop()
        else:
            import pyarrow

            # The system allocator returns freed chunks; Arrow's default pool keeps them (measured:
            # ~30 MiB more peak memory on a 400 000-row input).
            pyarrow.set_memory_pool(pyarrow.system_memory_pool())
            result = run_local(
                source, target, model, contract, slo, args.chunk_rows, Progress(count_rows(source))
            )
        summary = result.summary(slo, model, args.input, args.output)
        drift = None
        if not args.no_drift and model.loaded.reference is not None and len(result.drift_rows):
            drift = drift_report(
                model.loaded.reference,
                result.drift_rows,
                slo.drift.psi_alert_threshold,
                out_dir,
                source=args.input,
            )
    write_summary(summary, drift, out_dir)
    url = args.pushgateway or os.environ.get(PUSHGATEWAY_VARIABLE)
    if url:
        push(summary, url)
    print(
        f"scored {summary['rows']} rows with {summary['model']['name']} version "
        f"{summary['model']['version']} ({args.engine}): {summary['predicted']} predicted, "
        f"{summary['flagged']} flagged, {summary['abstain']} abstain, {summary['refused']} refused "
        f"in {summary['duration_seconds']:g} s -> {args.output}"
    )
    print(f"summary: {out_dir / 'summary.md'}", file=sys.stderr)
    return 0
