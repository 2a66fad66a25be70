"""`<package> drift <file>`: an offline drift report (JSON, Markdown, PNG) for a file of inputs.

PSI per feature of the file against the training reference of a model version (see
artifact/profile.py); the running service exports a small-sample-corrected PSI over a window of
live inputs (serving/telemetry/drift_window.py). Rows outside the data contract (values beyond a
feature's range or allowed set, nulls in a non-nullable column, non-numbers) are exactly the
shifted data to analyse: they are counted per feature and reported as a drift signal, never a
reason to refuse the file (only missing feature columns are).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..artifact import REFERENCE_DIR, REFERENCE_FILE, ReferenceProfile, bin_proportions
from ..config import Settings
from ..data.contract import ContractViolation, DataContract
from ..lifecycle import CHAMPION

if TYPE_CHECKING:
    import pandas as pd


def out_of_contract(
    frame: pd.DataFrame, contract: DataContract
) -> tuple[np.ndarray, dict[str, Any]]:
    """The feature matrix (non-numbers as NaN) and the rows outside the contract, per feature.

    Refuses (ContractViolation) only a frame the PSI cannot be computed on: missing columns.
    """
    import pandas as pd

    missing = [name for name in contract.feature_names if name not in frame.columns]
    if missing:
        raise ContractViolation("drift input", [f"missing columns: {', '.join(missing)}"])
    outside = np.zeros(len(frame), dtype=bool)
    by_feature: dict[str, int] = {}
    columns = []
    for feature in contract.features:
        raw = frame[feature.name]
        values = pd.to_numeric(raw, errors="coerce")
        bad = (values.isna() & raw.notna()).to_numpy(copy=True)  # not a number at all
        if not feature.nullable:
            bad |= raw.isna().to_numpy()
        if feature.min is not None:
            bad |= (values < feature.min).to_numpy()
        if feature.max is not None:
            bad |= (values > feature.max).to_numpy()
        if feature.allowed is not None:
            bad |= (values.notna() & ~values.isin(list(feature.allowed))).to_numpy()
        if int(bad.sum()):
            by_feature[feature.name] = int(bad.sum())
        outside |= bad
        columns.append(values.to_numpy(dtype=float))
    data = np.column_stack(columns) if columns else np.empty((len(frame), 0))
    rows = int(outside.sum())
    return data, {
        "rows": rows,
        "share": rows / len(frame) if len(frame) else 0.0,
        "by_feature": by_feature,
    }


def drift_report_for_frame(
    reference: ReferenceProfile,
    frame: pd.DataFrame,
    contract: DataContract,
    threshold: float,
    out_dir: Path,
    source: str = "",
) -> dict[str, Any]:
    """The drift report of a frame of inputs, out-of-contract rows included and counted."""
    data, outside = out_of_contract(frame, contract)
    return drift_report(reference, data, threshold, out_dir, source, outside)


def drift_report(
    reference: ReferenceProfile,
    data: np.ndarray,
    threshold: float,
    out_dir: Path,
    source: str = "",
    outside: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """PSI of `data` against the reference -> out_dir/drift.{json,md,png}; returns the report."""
    outside = outside or {"rows": 0, "share": 0.0, "by_feature": {}}
    psi = reference.psi(data)
    features: list[dict[str, Any]] = [
        {"feature": name, "psi": value, "drifted": value > threshold}
        for name, value in sorted(psi.items(), key=lambda item: -item[1])
    ]
    report: dict[str, Any] = {
        "source": source,
        "rows": len(data),
        "threshold": threshold,
        "drifted": [row["feature"] for row in features if row["drifted"]],
        "features": features,
        "out_of_contract": outside,
    }
    report["drift_detected"] = bool(report["drifted"]) or outside["rows"] > 0
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "drift.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    (out_dir / "drift.md").write_text(_markdown(report), encoding="utf-8")
    _plot(reference, data, report, out_dir / "drift.png")
    return report


def _markdown(report: dict[str, Any]) -> str:
    drifted = report["drifted"]
    lines = [
        f"# Drift report: {report['source']}",
        "",
        f"{report['rows']} rows compared with the training reference; PSI alert threshold "
        f"{report['threshold']:g} (slo.yaml `drift.psi_alert_threshold`).",
        "",
        f"**Drifted features**: {', '.join(drifted) if drifted else 'none'}",
        "",
        _outside_line(report["out_of_contract"], report["rows"]),
        "",
        "![PSI per feature](drift.png)",
        "",
        "| feature | PSI | drifted |",
        "|---|---|---|",
        *(
            f"| `{row['feature']}` | {row['psi']:.4f} | {'yes' if row['drifted'] else 'no'} |"
            for row in report["features"]
        ),
    ]
    return "\n".join(lines) + "\n"


def _outside_line(outside: dict[str, Any], rows: int) -> str:
    if not outside["rows"]:
        return "**Rows outside the data contract**: none."
    per = ", ".join(f"`{k}` {v}" for k, v in sorted(outside["by_feature"].items()))
    return (
        f"**Rows outside the data contract**: {outside['rows']} of {rows} "
        f"({outside['share'] * 100:.1f}%), a drift signal (by feature: {per}); they are "
        "included in the PSI above."
    )


def _plot(
    reference: ReferenceProfile, data: np.ndarray, report: dict[str, Any], path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["features"]
    figure, (bars, bins) = plt.subplots(
        1, 2, figsize=(13, max(4.0, 0.28 * len(rows) + 1.5)), width_ratios=[3, 2]
    )
    names = [row["feature"] for row in rows][::-1]
    values = [row["psi"] for row in rows][::-1]
    colors = ["tab:red" if row["drifted"] else "tab:blue" for row in rows][::-1]
    bars.barh(names, values, color=colors)
    bars.axvline(report["threshold"], color="black", linestyle="--", label="alert threshold")
    bars.set_xlabel("PSI")
    bars.set_title(f"PSI per feature ({report['rows']} rows)")
    bars.legend(loc="lower right")
    if rows:
        top = rows[0]["feature"]
        index = reference.features.index(top)
        column = data[:, index]
        column = column[~np.isnan(column)]
        live = bin_proportions(column, np.asarray(reference.edges[index]))
        positions = np.arange(len(live))
        bins.bar(positions - 0.2, reference.proportions[index], width=0.4, label="training")
        bins.bar(positions + 0.2, live, width=0.4, label="this file")
        bins.set_xlabel("training decile bin")
        bins.set_ylabel("share of rows")
        bins.set_title(f"most drifted: {top}")
        bins.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def add_arguments(parser: Any) -> None:
    parser.add_argument("file", type=Path, help="CSV of inputs with the contract's feature columns")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--alias", default=CHAMPION, help="reference of this registry alias")
    source.add_argument("--model-dir", type=Path, default=None, help="or of an exported model")
    parser.add_argument("--out", type=Path, default=None, help="default: reports/")
    parser.add_argument(
        "--fail-on-drift",
        action="store_true",
        help="exit 1 when a feature is above the threshold or a row is outside the contract",
    )


def load_reference(settings: Settings, alias: str, model_dir: Path | None) -> ReferenceProfile:
    """The training reference of an exported model folder, or of a registry alias's run."""
    import tempfile

    if model_dir is not None:
        return ReferenceProfile.from_json(model_dir / REFERENCE_DIR / REFERENCE_FILE)
    from ..errors import RegistryError
    from ..registry import Registry

    registry = Registry.from_settings(settings)
    info = registry.get_alias(alias)
    if info is None or not info.run_id:
        raise RegistryError(f"no '{alias}' version of {settings.model_name} with a training run")
    with tempfile.TemporaryDirectory(prefix="reference-") as tmp:
        registry.client.download_artifacts(info.run_id, REFERENCE_DIR, tmp)
        return ReferenceProfile.from_json(Path(tmp) / REFERENCE_DIR / REFERENCE_FILE)


def run_from_args(settings: Settings, args: Any) -> int:
    import pandas as pd

    from ..slo import load_slo

    contract = DataContract.load(settings.contract_path)
    if not Path(args.file).exists():
        raise FileNotFoundError(f"{args.file} not found")
    frame = pd.read_csv(args.file)
    reference = load_reference(settings, args.alias, args.model_dir)
    threshold = load_slo(settings.slo_path).drift.psi_alert_threshold
    out = args.out or settings.reports_dir
    report = drift_report_for_frame(reference, frame, contract, threshold, out, str(args.file))
    for row in report["features"][:10]:
        print(
            f"{'DRIFT' if row['drifted'] else 'ok   '}  {row['feature']:<32} PSI {row['psi']:.4f}"
        )
    outside = report["out_of_contract"]
    if outside["rows"]:
        print(
            f"DRIFT  {outside['rows']} of {report['rows']} rows ({outside['share'] * 100:.1f}%) "
            f"outside the data contract: {', '.join(sorted(outside['by_feature']))}"
        )
    print(f"report: {out / 'drift.md'} (plot: {out / 'drift.png'})")
    if report["drifted"]:
        print(
            f"{len(report['drifted'])} feature(s) above PSI {threshold:g}: "
            f"{', '.join(report['drifted'])}"
        )
    if report["drift_detected"]:
        return 1 if args.fail_on_drift else 0
    print(f"no feature above PSI {threshold:g}, every row inside the contract")
    return 0
