"""`<package> drift <file>`: an offline drift report (JSON, Markdown, PNG) for a file of inputs.

PSI per feature of the file against the training reference of a model version (see
artifact/profile.py); the running service exports the same PSI over a window of live inputs
(serving/telemetry/drift_window.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..artifact import REFERENCE_DIR, REFERENCE_FILE, ReferenceProfile, bin_proportions
from ..config import Settings
from ..lifecycle import CHAMPION


def drift_report(
    reference: ReferenceProfile,
    data: np.ndarray,
    threshold: float,
    out_dir: Path,
    source: str = "",
) -> dict[str, Any]:
    """PSI of `data` against the reference -> out_dir/drift.{json,md,png}; returns the report."""
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
    }
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
        "--fail-on-drift", action="store_true", help="exit 1 when a feature is above the threshold"
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
    from ..data.contract import DataContract
    from ..data.loaders import load_features
    from ..slo import load_slo

    contract = DataContract.load(settings.contract_path)
    data = load_features(args.file, contract)
    reference = load_reference(settings, args.alias, args.model_dir)
    threshold = load_slo(settings.slo_path).drift.psi_alert_threshold
    out = args.out or settings.reports_dir
    report = drift_report(reference, data, threshold, out, source=str(args.file))
    for row in report["features"][:10]:
        print(
            f"{'DRIFT' if row['drifted'] else 'ok   '}  {row['feature']:<32} PSI {row['psi']:.4f}"
        )
    print(f"report: {out / 'drift.md'} (plot: {out / 'drift.png'})")
    if report["drifted"]:
        print(
            f"{len(report['drifted'])} feature(s) above PSI {threshold:g}: "
            f"{', '.join(report['drifted'])}"
        )
        return 1 if args.fail_on_drift else 0
    print(f"no feature above PSI {threshold:g}")
    return 0
