"""Command line: `<package> train | evaluate | promote | rollback | export | serve | ...`.

Each command imports what it needs when it runs, so `--help` and the serving image (no MLflow,
no pandas) only pay for the command they use.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ._template import PACKAGE_NAME
from .config import Settings
from .lifecycle import CHALLENGER, CHAMPION


def _train(settings: Settings, _: argparse.Namespace) -> int:
    from .training.train import train

    result = train(settings)
    print(
        f"registered {settings.model_name} version {result.version} as '{CHALLENGER}' "
        f"(run {result.run_id}, data sha256 {result.data_hash[:12]}…)"
    )
    print(json.dumps(result.metrics, indent=2))
    return 0


def _evaluate(settings: Settings, args: argparse.Namespace) -> int:
    from .training.evaluate import evaluate

    report = evaluate(settings, alias=args.alias, again=args.again)
    model = report["model"]
    print(f"scored {model['name']} version {model['version']} ('{model['alias']}')")
    print(f"baseline: {report['baseline']}")
    for check in report["checks"]:
        print(f"{'PASS' if check['passed'] else 'FAIL'}  {check['name']}: {check['detail']}")
    print(f"report: {settings.reports_dir / 'eval.md'}")
    if not report["passed"]:
        print("eval gate FAILED: this version cannot be promoted", file=sys.stderr)
        return 1
    print("eval gate passed")
    return 0


def _promote(settings: Settings, args: argparse.Namespace) -> int:
    from .registry import Registry

    registry = Registry.from_settings(settings)
    promoted = registry.promote(args.version)
    print(f"{settings.model_name} version {promoted.version} is now '{CHAMPION}'")
    from .training.baseline import record_promotion

    report_file = settings.reports_dir / "eval.json"
    report = json.loads(report_file.read_text(encoding="utf-8")) if report_file.exists() else {}
    if record_promotion(settings.baseline_path, report, promoted.version) is not None:
        print(f"recorded the champion's metrics in {settings.baseline_path}: commit it")
    else:
        print(
            f"{report_file} is not the eval report of this version: {settings.baseline_path} "
            "not updated (run evaluate, then promote, to record it)"
        )
    return 0


def _rollback(settings: Settings, _: argparse.Namespace) -> int:
    from .registry import Registry

    registry = Registry.from_settings(settings)
    restored = registry.rollback()
    print(f"rolled back: {settings.model_name} version {restored.version} is '{CHAMPION}' again")
    return 0


def _export(settings: Settings, args: argparse.Namespace) -> int:
    import shutil
    import tempfile

    from .registry import Registry

    out: Path = args.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    registry = Registry.from_settings(settings)
    # Exported beside the target first: a refused export (unknown alias, registry down) leaves
    # the folder being served untouched; the swap itself is two renames.
    with tempfile.TemporaryDirectory(prefix=f".{out.name}-", dir=out.parent) as tmp:
        staged = Path(tmp) / "model"
        info = registry.export(args.alias, staged)
        if out.exists():
            previous = Path(tmp) / "previous"
            out.rename(previous)
        staged.rename(out)
        shutil.rmtree(Path(tmp) / "previous", ignore_errors=True)
    print(f"exported {settings.model_name} version {info.version} ({args.alias}) to {args.out}")
    return 0


def _validate_data(settings: Settings, _: argparse.Namespace) -> int:
    from .data.contract import ContractViolation, DataContract
    from .data.loaders import load_dataset

    contract = DataContract.load(settings.contract_path)
    failed = []
    for path in (settings.train_path, settings.golden_path):
        try:
            features, _target = load_dataset(path, contract)
        except ContractViolation as error:  # every file is checked, not only the first
            failed.append(str(error))
            continue
        print(f"{path}: {len(features)} rows satisfy the data contract")
    if failed:
        print("error: " + "\n".join(failed), file=sys.stderr)
        return 2
    return 0


def _ingest(settings: Settings, args: argparse.Namespace) -> int:
    from .data.contract import DataContract
    from .data.snapshots import ingest
    from .data.sources import FileSource, SqlSource, parse_source

    overrides: dict[str, FileSource | SqlSource] = {}
    if args.training:
        overrides["training"] = parse_source(args.training)
    if args.golden:
        overrides["golden"] = parse_source(args.golden)
    contract = DataContract.load(settings.contract_path)
    snapshots = ingest(settings.sources_path, contract, settings.snapshots_dir, overrides)
    for kind, snap in snapshots.items():
        print(
            f"{kind}: {snap.rows} rows from {snap.source} -> "
            f"{settings.snapshots_dir / snap.file} (sha256 {snap.sha256})"
        )
    return 0


def _contract(settings: Settings, args: argparse.Namespace) -> int:
    import yaml

    from .data.contract import DataContract, infer_contract
    from .data.sources import parse_source, read_source

    frame = read_source(parse_source(args.file))
    inferred = infer_contract(frame, args.target)
    DataContract.from_dict(inferred, "the inferred contract")  # what it writes, it can read
    text = (
        f"# Inferred from {args.file} ({len(frame)} rows): review the ranges, the categories and\n"
        "# the class names, then save as data/contract.yaml.\n"
        + yaml.safe_dump(inferred, sort_keys=False, allow_unicode=True)
    )
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    else:
        print(text, end="")
    return 0


def _model_card(settings: Settings, args: argparse.Namespace) -> int:
    from .tools.model_card import main as write_model_card

    return write_model_card(
        settings, report=args.report, allow_non_champion=args.allow_non_champion
    )


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio
    import contextlib
    from collections.abc import Iterator

    from .serving.workers import serve_workers, worker_count

    if args.workers is not None and args.workers < 0:
        print("error: --workers must be 0 (one per available CPU) or more", file=sys.stderr)
        return 2
    workers = worker_count(settings.workers if args.workers is None else args.workers)
    metrics_port = settings.metrics_port if args.metrics_port is None else args.metrics_port
    host = args.host or settings.host
    if workers > 1:
        return serve_workers(
            settings,
            host=host,
            port=args.port or settings.port,
            metrics_port=metrics_port,
            workers=workers,
        )

    import uvicorn

    from .serving.app import create_app

    class MetricsServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # the API server handles SIGTERM/SIGINT; this one stops after it

    app = create_app(settings)
    # uvicorn picks uvloop and httptools (installed with the service); no access log: the
    # telemetry middleware writes the useful lines.
    api = uvicorn.Server(
        uvicorn.Config(
            app, host=host, port=args.port or settings.port, log_config=None, access_log=False
        )
    )
    scrape = MetricsServer(
        uvicorn.Config(
            app.state.metrics_app,
            host=host,
            port=metrics_port,
            log_config=None,
            access_log=False,
            lifespan="off",
        )
    )

    async def serve() -> None:
        metrics = asyncio.create_task(scrape.serve()) if metrics_port else None
        try:
            await api.serve()
        finally:
            scrape.should_exit = True
            if metrics is not None:
                await metrics

    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover (installed with the service on Linux and macOS)
        loop_factory = None
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=loop_factory) as run:
        run.run(serve())
    return 0


def _loadtest(_: Settings, args: argparse.Namespace) -> int:
    from .tools.loadtest import run_from_args

    return run_from_args(args)


def _drift(settings: Settings, args: argparse.Namespace) -> int:
    from .tools.drift_report import run_from_args

    return run_from_args(settings, args)


def _batch_score(settings: Settings, args: argparse.Namespace) -> int:
    from .batch.command import run
    from .tools.drift_report import drift_report

    try:
        return run(settings, args, drift_report)
    except ValueError as error:  # a bad --input/--output/--chunk-rows, or an unset variable
        print(f"error: {error}", file=sys.stderr)
        return 2


def _ops(_: Settings, args: argparse.Namespace) -> int:
    from .config import PROJECT_ROOT
    from .ops.__main__ import main as ops_main

    return ops_main([args.action, "--root", str(args.root or PROJECT_ROOT)])


def _bench(settings: Settings, args: argparse.Namespace) -> int:
    from .tools.bench import run_from_args

    return run_from_args(settings, args)


COMMANDS: dict[str, tuple[str, Callable[[Settings, argparse.Namespace], int]]] = {
    "train": (f"fit on the training snapshot, register a version, alias it '{CHALLENGER}'", _train),
    "evaluate": ("run the eval gate on the golden snapshot (exit 1 when it fails)", _evaluate),
    "promote": ("make the challenger (or --version) the champion, if its eval passed", _promote),
    "rollback": (f"move '{CHAMPION}' back to the previous champion", _rollback),
    "export": ("write a model version to a folder (baked into the image)", _export),
    "validate-data": (
        "check data/train.csv and data/golden.csv against the contract",
        _validate_data,
    ),
    "ingest": (
        "snapshot the training and golden sources (data/sources.yaml) after checking the contract",
        _ingest,
    ),
    "contract": ("`contract infer FILE`: print a starting data contract for a file", _contract),
    "model-card": ("fill docs/model-card.md from the champion's own eval report", _model_card),
    "serve": ("serve the champion over HTTP", _serve),
    "loadtest": ("load test a running service against slo.yaml (exit 1 on breach)", _loadtest),
    "drift": ("PSI of a CSV of inputs vs the training reference -> reports/drift.*", _drift),
    "batch-score": (
        "score a file, Parquet dataset or SQL query with the champion -> Parquet or a table",
        _batch_score,
    ),
    "ops": ("render|check alerts, dashboard and docs/slo.md from slo.yaml", _ops),
    "bench": ("the service vs a bare ASGI app on ./model (docs/performance.md)", _bench),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PACKAGE_NAME, description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, _) in COMMANDS.items():
        # argparse %-formats help strings (not descriptions)
        command = sub.add_parser(name, help=help_text.replace("%", "%%"), description=help_text)
        if name == "evaluate":
            command.add_argument("--alias", default=CHALLENGER, help="version to evaluate")
            command.add_argument(
                "--again", action="store_true", help="re-score a version that was already gated"
            )
        if name == "ingest":
            for kind in ("training", "golden"):
                command.add_argument(
                    f"--{kind}",
                    default=None,
                    help="a path, URL or sql:<ENV_VAR>:<query> (default: data/sources.yaml)",
                )
        if name == "contract":
            command.add_argument("action", choices=["infer"])
            command.add_argument("file", help="CSV/Parquet path, URL or sql:<ENV_VAR>:<query>")
            command.add_argument("--target", required=True, help="the label column")
            command.add_argument("--out", type=Path, default=None, help="default: stdout")
        if name == "promote":
            command.add_argument("--version", default=None, help="default: the challenger")
        if name == "export":
            command.add_argument("--alias", default=CHAMPION)
            command.add_argument("--out", type=Path, default=Path("model"))
        if name == "serve":
            command.add_argument("--host", default=None, help="default: SERVICE_HOST or 127.0.0.1")
            command.add_argument(
                "--port", type=int, default=None, help="default: SERVICE_PORT or 8000"
            )
            command.add_argument(
                "--metrics-port",
                type=int,
                default=None,
                help="/metrics only; 0 = none (default: SERVICE_METRICS_PORT or 9100)",
            )
            command.add_argument(
                "--workers",
                type=int,
                default=None,
                help="worker processes on the API port; 0 = one per available CPU "
                "(default: SERVICE_WORKERS or 1)",
            )
        if name == "loadtest":
            from .tools.loadtest import add_arguments

            add_arguments(command)
        if name == "model-card":
            from .tools.model_card import add_arguments as add_card_arguments

            add_card_arguments(command)
        if name == "drift":
            from .tools.drift_report import add_arguments as add_drift_arguments

            add_drift_arguments(command)
        if name == "batch-score":
            from .batch.command import add_arguments as add_batch_arguments

            add_batch_arguments(command)
        if name == "ops":
            command.add_argument("action", choices=["render", "check"])
            command.add_argument("--root", type=Path, default=None, help="default: the repo root")
        if name == "bench":
            from .tools.bench import add_arguments as add_bench_arguments

            add_bench_arguments(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    from .data.contract import ContractError, ContractViolation
    from .data.sources import SourceError
    from .errors import RegistryError

    try:
        return COMMANDS[args.command][1](settings, args)
    except (
        RegistryError,
        ContractViolation,
        ContractError,
        SourceError,
        FileNotFoundError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
