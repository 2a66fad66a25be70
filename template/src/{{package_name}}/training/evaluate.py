"""The eval gate: score the golden set, compare with slo.yaml and with the champion, write reports.

The gate fails (and `evaluate` exits non-zero) when the quality floor is missed or when the
candidate is worse than the current champion by more than slo.yaml's tolerance.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..config import PROJECT_ROOT, Settings
from ..data.contract import DataContract
from ..data.loaders import data_hash, load_dataset
from ..errors import RegistryError
from ..lifecycle import CHALLENGER, CHAMPION
from ..registry import Registry
from ..slo import SLO, load_slo
from .compiled import onnx_parity_check
from .quality import score

REPORT_JSON = "eval.json"
REPORT_MD = "eval.md"


def evaluate(settings: Settings, alias: str = CHALLENGER) -> dict[str, Any]:
    slo = load_slo(settings.slo_path)
    contract = DataContract.load(settings.contract_path)
    features, target = load_dataset(settings.golden_path, contract)
    registry = Registry.from_settings(settings)
    if registry.get_alias(alias) is None:
        raise RegistryError(f"no '{alias}' version of {settings.model_name}: run `train` first")
    candidate = registry.load(alias)
    metrics = score(slo.model_task, candidate.pipeline, features, target)
    if slo.model_task == "classification" and slo.guardrails.min_confidence is not None:
        confidence = candidate.pipeline.predict_proba(features).max(axis=1)
        metrics["abstain_rate"] = float(np.mean(confidence < slo.guardrails.min_confidence))

    quality = slo.objectives.quality
    value = metrics[quality.metric]
    comparison = "≥" if quality.higher_is_better else "≤"
    checks = [
        {
            "name": "quality_floor",
            "passed": quality.meets_threshold(value),
            "detail": f"{quality.metric} = {value:.4f}, required {comparison} {quality.threshold}",
        }
    ]
    checks.append(onnx_parity_check(registry, candidate.version, candidate.pipeline, features))
    champion_info = registry.get_alias(CHAMPION)
    champion: dict[str, Any] | None = None
    if champion_info is None or champion_info.version == candidate.version:
        checks.append(
            {
                "name": "no_regression_vs_champion",
                "passed": True,
                "detail": "no champion yet"
                if champion_info is None
                else "candidate is the champion",
            }
        )
    else:
        champion_model = registry.load(CHAMPION)
        champion_metrics = score(slo.model_task, champion_model.pipeline, features, target)
        champion = {"version": champion_info.version, "metrics": champion_metrics}
        worse_by = quality.regression_vs(value, champion_metrics[quality.metric])
        checks.append(
            {
                "name": "no_regression_vs_champion",
                "passed": worse_by <= quality.max_regression_vs_champion,
                "detail": (
                    f"{quality.metric} {value:.4f} vs champion v{champion_info.version} "
                    f"{champion_metrics[quality.metric]:.4f}: worse by {max(worse_by, 0.0):.4f}, "
                    f"tolerance {quality.max_regression_vs_champion}"
                ),
            }
        )
    passed = all(check["passed"] for check in checks)
    report: dict[str, Any] = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "passed": passed,
        "task": slo.model_task,
        "model": {
            "name": candidate.name,
            "version": candidate.version,
            "alias": alias,
            "training_data_hash": candidate.data_hash,
        },
        "dataset": {
            "path": _relative(settings.golden_path),
            "rows": len(target),
            "sha256": data_hash(settings.golden_path),
        },
        "slo": {
            "metric": quality.metric,
            "threshold": quality.threshold,
            "higher_is_better": quality.higher_is_better,
            "max_regression_vs_champion": quality.max_regression_vs_champion,
        },
        "metrics": metrics,
        "champion": champion,
        "checks": checks,
    }
    out = settings.reports_dir
    out.mkdir(parents=True, exist_ok=True)
    report["plot"] = _plot(slo, candidate.pipeline, features, target, out)
    (out / REPORT_JSON).write_text(json.dumps(report, indent=2), encoding="utf-8")
    (out / REPORT_MD).write_text(render_markdown(report), encoding="utf-8")

    registry.record_eval(
        candidate.version,
        passed,
        {
            "metric": quality.metric,
            "value": round(value, 6),
            "golden_sha256": report["dataset"]["sha256"],
        },
    )
    version = registry.version(candidate.version)
    if version.run_id:
        for name in (REPORT_JSON, REPORT_MD, report["plot"]):
            registry.client.log_artifact(version.run_id, str(out / name), artifact_path="eval")
    return report


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def _plot(slo: SLO, pipeline: Any, features: np.ndarray, target: np.ndarray, out: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 4), dpi=100)
    predicted = pipeline.predict(features)
    if slo.model_task == "classification":
        from sklearn.metrics import ConfusionMatrixDisplay

        ConfusionMatrixDisplay.from_predictions(target, predicted, ax=axis, colorbar=False)
        axis.set_title("Confusion matrix (golden set)")
        name = "confusion_matrix.png"
    else:
        axis.scatter(predicted, target - predicted, s=10)
        axis.axhline(0, color="grey", linewidth=1)
        axis.set_xlabel("predicted")
        axis.set_ylabel("residual (actual - predicted)")
        axis.set_title("Residuals (golden set)")
        name = "residuals.png"
    figure.tight_layout()
    figure.savefig(out / name)
    plt.close(figure)
    return name


def render_markdown(report: dict[str, Any]) -> str:
    verdict = "PASSED" if report["passed"] else "FAILED"
    model = report["model"]
    lines = [
        f"# Eval gate: {verdict}",
        "",
        f"Model `{model['name']}` version {model['version']} (alias `{model['alias']}`), "
        f"golden set `{report['dataset']['path']}` ({report['dataset']['rows']} rows), "
        f"{report['generated_at']}.",
        "",
        "| metric | value | champion |",
        "|---|---|---|",
    ]
    champion_metrics = (report["champion"] or {}).get("metrics", {})
    for name, value in report["metrics"].items():
        other = champion_metrics.get(name)
        lines.append(f"| {name} | {value:.4f} | {'' if other is None else f'{other:.4f}'} |")
    lines += ["", "| check | result | detail |", "|---|---|---|"]
    for check in report["checks"]:
        lines.append(
            f"| {check['name']} | {'pass' if check['passed'] else 'FAIL'} | {check['detail']} |"
        )
    lines += ["", f"![plot]({report['plot']})", ""]
    return "\n".join(lines)
