from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from demo_ml_service import cli
from demo_ml_service.config import Settings
from demo_ml_service.registry import Registry
from demo_ml_service.training.train import train


def strict_slo(tmp_path: Path) -> Path:
    """slo.yaml with a quality floor no model reaches on the golden set."""
    slo = yaml.safe_load(Settings().slo_path.read_text())
    metric = slo["objectives"]["quality"]["metric"]
    slo["objectives"]["quality"]["threshold"] = 0.001 if metric == "rmse" else 1.0
    path = tmp_path / "slo.yaml"
    path.write_text(yaml.safe_dump(slo))
    return path


def test_gate_passes_and_writes_reports(
    fresh_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    train(fresh_settings)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", fresh_settings.tracking_uri)
    monkeypatch.setenv("SERVICE_REPORTS_DIR", str(fresh_settings.reports_dir))
    monkeypatch.setenv("SERVICE_ARTIFACT_ROOT", str(fresh_settings.artifact_root))
    assert cli.main(["evaluate"]) == 0
    report = json.loads((fresh_settings.reports_dir / "eval.json").read_text())
    assert report["passed"] is True
    assert report["metrics"][report["slo"]["metric"]] > 0
    assert (fresh_settings.reports_dir / report["plot"]).read_bytes()[:4] == b"\x89PNG"
    assert "Eval gate: PASSED" in (fresh_settings.reports_dir / "eval.md").read_text()
    version = Registry.from_settings(fresh_settings).get_alias("challenger")
    assert version is not None and version.eval_passed


def test_gate_fails_below_the_slo_and_blocks_promotion(
    fresh_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    train(fresh_settings)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", fresh_settings.tracking_uri)
    monkeypatch.setenv("SERVICE_REPORTS_DIR", str(fresh_settings.reports_dir))
    monkeypatch.setenv("SERVICE_SLO_PATH", str(strict_slo(tmp_path)))
    assert cli.main(["evaluate"]) == 1
    report = json.loads((fresh_settings.reports_dir / "eval.json").read_text())
    assert report["passed"] is False
    assert [c["name"] for c in report["checks"] if not c["passed"]] == ["quality_floor"]
    assert cli.main(["promote"]) == 2


def test_gate_fails_on_regression_against_the_champion(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    """A challenger trained on a fraction of the data must not replace a better champion."""
    from demo_ml_service.training.evaluate import evaluate

    train(fresh_settings)
    assert evaluate(fresh_settings)["passed"]
    registry = Registry.from_settings(fresh_settings)
    registry.promote()

    import pandas as pd

    frame = pd.read_csv(fresh_settings.train_path)
    target = frame.columns[-1]
    # A deliberately bad training set: the target shuffled, so the model learns noise.
    frame[target] = frame[target].sample(frac=1.0, random_state=0).to_numpy()
    poor = tmp_path / "poor.csv"
    frame.to_csv(poor, index=False)
    sources = tmp_path / "sources.yaml"
    golden = fresh_settings.golden_path
    sources.write_text(f"training:\n  path: {poor}\ngolden:\n  path: {golden}\n")
    worse = fresh_settings.model_copy(
        update={"sources_path": sources, "snapshots_dir": tmp_path / "poor-snapshots"}
    )
    train(worse)
    report = evaluate(worse)
    assert report["passed"] is False
    assert report["champion"] is not None
    failed = {c["name"] for c in report["checks"] if not c["passed"]}
    assert "no_regression_vs_champion" in failed
