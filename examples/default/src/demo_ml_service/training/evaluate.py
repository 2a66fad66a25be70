"""The eval gate: score the golden set, compare with slo.yaml and with the champion, write reports.

The gate fails (and `evaluate` exits non-zero) when the quality floor is missed or when the
candidate is worse than the current champion by more than slo.yaml's tolerance. The champion is
the registry's; without one, the champion recorded in git (data/baseline.json, written by
promote). A champion trained on another feature set is not comparable: the gate is the floor only,
and the report says so. The report names the version scored and the baseline used.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..config import PROJECT_ROOT, Settings
from ..data.contract import DataContract
from ..data.loaders import load_dataset
from ..data.snapshots import describe_snapshot
from ..errors import RegistryError
from ..lifecycle import CHALLENGER, CHAMPION, EVAL_PASSED_TAG, FEATURES_TAG
from ..registry import Registry
from ..slo import SLO, load_slo
from .baseline import Baseline, BaselineError
from .compiled import onnx_parity_check
from .quality import score
from .train import feature_signature, snapshot_for

REPORT_JSON = "eval.json"
REPORT_MD = "eval.md"


class AlreadyGated(RegistryError):
    """The version behind the alias was gated before: it is not a new model."""


def evaluate(settings: Settings, alias: str = CHALLENGER, again: bool = False) -> dict[str, Any]:
    """Gate the version behind `alias` on the golden snapshot: the slo.yaml floor, and no
    regression against the champion (the registry's, else the one recorded in
    data/baseline.json). A version already gated is refused unless `again` (after a failed
    `train`, the challenger is still the previous version: re-scoring it is not a new result)."""
    slo = load_slo(settings.slo_path)
    contract = DataContract.load(settings.contract_path)
    golden = snapshot_for(settings, "golden", contract)
    golden_file = golden.path(settings.snapshots_dir)
    features, target = load_dataset(golden_file, contract)
    registry = Registry.from_settings(settings)
    info = registry.get_alias(alias)
    if info is None:
        raise RegistryError(f"no '{alias}' version of {settings.model_name}: run `train` first")
    if EVAL_PASSED_TAG in info.tags and not again:
        verdict = "passed" if info.eval_passed else "failed"
        raise AlreadyGated(
            f"{settings.model_name} version {info.version} ('{alias}') was already gated "
            f"({verdict}): it is not a new model. Did the last `train` fail? Train again, or "
            "pass --again to re-score this version on purpose"
        )
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
    signature = feature_signature(contract)
    candidate_features = info.tags.get(FEATURES_TAG, signature)
    champion, check, baseline_used = _versus_champion(
        settings, registry, info.version, candidate_features, features, target, value, slo
    )
    checks.append(check)
    checks.append(onnx_parity_check(registry, info.version, candidate.pipeline, features))
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
            "training_data": candidate.training_data,
            "features": candidate_features,
        },
        "dataset": {
            "path": _relative(golden_file),
            "source": golden.source,
            "rows": len(target),
            "sha256": golden.sha256,
        },
        "slo": {
            "metric": quality.metric,
            "threshold": quality.threshold,
            "higher_is_better": quality.higher_is_better,
            "max_regression_vs_champion": quality.max_regression_vs_champion,
        },
        "metrics": metrics,
        "champion": champion,
        "baseline": baseline_used,
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


NOT_COMPARABLE_POLICY = (
    "not comparable: the champion was trained on a different feature set, so the gate is the "
    "quality floor only (docs/bring-your-own-data.md, 'Changing the features')"
)


def _versus_champion(
    settings: Settings,
    registry: Registry,
    version: str,
    candidate_features: str,
    features: np.ndarray,
    target: np.ndarray,
    value: float,
    slo: SLO,
) -> tuple[dict[str, Any] | None, dict[str, Any], str]:
    """(champion summary, the no-regression check, which baseline was used)."""
    quality = slo.objectives.quality
    name = "no_regression_vs_champion"
    champion_info = registry.get_alias(CHAMPION)
    if champion_info is not None and champion_info.version == version:
        return None, {"name": name, "passed": True, "detail": "candidate is the champion"}, "none"
    if champion_info is not None:
        where = f"registry champion v{champion_info.version}"
        champion_features = champion_info.tags.get(FEATURES_TAG)
        if champion_features is not None and champion_features != candidate_features:
            change = _feature_change(champion_features, candidate_features)
            detail = f"{NOT_COMPARABLE_POLICY}; {change}"
            return None, {"name": name, "passed": True, "detail": detail}, where
        champion_model = registry.load(CHAMPION)
        try:
            champion_metrics = score(slo.model_task, champion_model.pipeline, features, target)
        except ValueError as error:  # e.g. a champion from before feature signatures were kept
            detail = f"{NOT_COMPARABLE_POLICY}; scoring the champion failed: {error}"
            return None, {"name": name, "passed": True, "detail": detail}, where
        reference = champion_metrics[quality.metric]
        champion: dict[str, Any] = {"version": champion_info.version, "metrics": champion_metrics}
    else:
        baseline = Baseline.read(settings.baseline_path)
        where = f"{_relative(settings.baseline_path)}"
        if baseline.bootstrap:
            detail = (
                f"no champion yet: neither the registry nor {where} records one (bootstrap), "
                "so the first model is gated on the quality floor only"
            )
            return None, {"name": name, "passed": True, "detail": detail}, f"{where} (bootstrap)"
        where = f"{where} (champion v{baseline.version}, promoted {baseline.promoted_at})"
        if baseline.features is not None and baseline.features != candidate_features:
            change = _feature_change(baseline.features, candidate_features)
            detail = f"{NOT_COMPARABLE_POLICY}; {change}"
            return None, {"name": name, "passed": True, "detail": detail}, where
        if quality.metric not in baseline.metrics:
            raise BaselineError(
                f"{settings.baseline_path} records no {quality.metric}: promote a version again"
            )
        reference = baseline.metrics[quality.metric]
        champion = {
            "version": baseline.version,
            "metrics": baseline.metrics,
            "recorded": True,
        }
    worse_by = quality.regression_vs(value, reference)
    detail = (
        f"{quality.metric} {value:.4f} vs {where} {reference:.4f}: worse by "
        f"{max(worse_by, 0.0):.4f}, tolerance {quality.max_regression_vs_champion}"
    )
    passed = worse_by <= quality.max_regression_vs_champion
    check = {"name": name, "passed": passed, "detail": detail}
    return champion, check, where


def _feature_change(before: str, after: str) -> str:
    old = {f[0]: f for f in json.loads(before)}
    new = {f[0]: f for f in json.loads(after)}
    parts = []
    if added := sorted(set(new) - set(old)):
        parts.append(f"added {', '.join(added)}")
    if removed := sorted(set(old) - set(new)):
        parts.append(f"removed {', '.join(removed)}")
    if changed := sorted(n for n in set(old) & set(new) if old[n] != new[n]):
        parts.append(f"type or categories changed: {', '.join(changed)}")
    if not parts and list(old) != list(new):
        parts.append("columns reordered")
    return "features " + ("; ".join(parts) or "differ")


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
        f"Compared with: {report.get('baseline', 'none')}.",
        "",
        f"Training snapshot: {describe_snapshot(model.get('training_data') or {})}.",
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
