"""Bring your own data and model: tree ensembles, category features through the API, snapshots
recorded with the version, and the eval gate's baseline rules. Real training, a real registry."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.pipeline import Pipeline

from demo_ml_service.config import Settings
from demo_ml_service.data.contract import DataContract
from demo_ml_service.data.features import preprocessing
from demo_ml_service.ops.metrics import PREDICT_ROUTE, TRAINING_DATA_AGE
from demo_ml_service.registry import Registry
from demo_ml_service.serving.app import create_app
from demo_ml_service.serving.telemetry.facade import Telemetry
from demo_ml_service.slo import load_slo
from demo_ml_service.tools.bench import BARE_RUNTIME_ENV, baseline
from demo_ml_service.training.baseline import BaselineError, record_promotion
from demo_ml_service.training.evaluate import AlreadyGated, evaluate
from demo_ml_service.training.train import train

from .conftest import make_settings

CLASSIFICATION = True
TARGET = "is_fraud" if CLASSIFICATION else "loss"
CONTRACT = f"""\
target: {TARGET}
target_dtype: {"int" if CLASSIFICATION else "float"}
{"classes: {0: legit, 1: fraud}" if CLASSIFICATION else ""}
features:
- {{name: amount, dtype: float, min: 0, max: 10000, nullable: true}}
- {{name: country, dtype: category, allowed: [FR, DE, US]}}
- {{name: channel, dtype: category, allowed: [web, app], nullable: true}}
"""


def fraud_frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "amount": rng.uniform(0, 5000, rows).round(2),
            "country": rng.choice(["FR", "DE", "US"], rows),
            "channel": rng.choice(["web", "app"], rows),
        }
    )
    risky = (frame["country"] == "US") & (frame["channel"] == "app")
    if CLASSIFICATION:
        frame[TARGET] = risky.astype(int)
    else:
        frame[TARGET] = 50.0 * risky + frame["amount"] * 0.01 + rng.normal(0, 1, rows)
    frame.loc[::9, "amount"] = None
    frame.loc[::13, "channel"] = None
    return frame


def linear(settings: Settings) -> Pipeline:
    """The shipped estimator behind the contract's preprocessing (independent of the team's
    model.py, which may predate category features)."""
    from sklearn.linear_model import LogisticRegression

    contract = DataContract.load(settings.contract_path)
    model = LogisticRegression(max_iter=1000)
    return Pipeline([("prepare", preprocessing(contract)), ("model", model)])


@pytest.fixture
def fraud(tmp_path: Path) -> Settings:
    """A fraud team's repo state: its own contract, sources (CSV + Parquet), a lenient floor."""
    (tmp_path / "contract.yaml").write_text(CONTRACT)
    fraud_frame(400, 1).to_csv(tmp_path / "train.csv", index=False)
    fraud_frame(150, 2).to_parquet(tmp_path / "golden.parquet")
    (tmp_path / "sources.yaml").write_text(
        "training: {path: train.csv}\ngolden: {path: golden.parquet}\n"
    )
    slo = yaml.safe_load(Settings().slo_path.read_text())
    quality = slo["objectives"]["quality"]
    quality["threshold"] = {"f1": 0.5, "accuracy": 0.5, "r2": 0.3, "rmse": 20.0}[quality["metric"]]
    (tmp_path / "slo.yaml").write_text(yaml.safe_dump(slo))
    return make_settings(
        tmp_path / "run",
        contract_path=tmp_path / "contract.yaml",
        sources_path=tmp_path / "sources.yaml",
        slo_path=tmp_path / "slo.yaml",
    )


def test_tree_ensembles_train_register_and_load(fraud: Settings) -> None:
    """Any scikit-learn estimator: skops' trusted types come from the fitted pipeline."""
    contract = DataContract.load(fraud.contract_path)
    for estimator in (RandomForestClassifier, GradientBoostingClassifier):
        model = estimator(n_estimators=20, random_state=0)
        pipeline = Pipeline([("prepare", preprocessing(contract, scale=False)), ("model", model)])
        result = train(fraud, pipeline=pipeline)
        assert evaluate(fraud)["model"]["version"] == result.version
        loaded = Registry.from_settings(fraud).load("challenger")
        assert loaded.version == result.version
        assert type(loaded.pipeline.steps[-1][1]) is estimator


@pytest.mark.parametrize("runtime", ["sklearn", "onnx"])
def test_the_bench_baseline_serves_a_category_contract(
    fraud: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runtime: str
) -> None:
    """`make bench`'s bare app encodes category strings as the model expects (and answers a
    regression with predict): a fair baseline for any contract, not only numeric ones."""
    train(fraud, pipeline=linear(fraud))
    assert evaluate(fraud)["passed"]
    registry = Registry.from_settings(fraud)
    registry.promote()
    folder = tmp_path / "exported"
    registry.export("champion", folder)
    if runtime == "onnx" and not (folder / "onnx").is_dir():
        pytest.skip("this pipeline has no ONNX copy")
    monkeypatch.setenv("SERVICE_MODEL_DIR", str(folder))
    monkeypatch.setenv("SERVICE_CONTRACT_PATH", str(fraud.contract_path))
    monkeypatch.setenv("SERVICE_SLO_PATH", str(fraud.slo_path))
    monkeypatch.setenv(BARE_RUNTIME_ENV, runtime)
    client = TestClient(baseline())
    for record in (
        {"amount": 120.5, "country": "US", "channel": "app"},
        {"amount": None, "country": "FR", "channel": None},
    ):
        response = client.post(PREDICT_ROUTE, json=record)
        assert response.status_code == 200, response.text
        answer = response.json()
        if CLASSIFICATION:
            assert 0.5 <= answer["confidence"] <= 1.0, answer
        else:
            assert math.isfinite(answer["value"]), answer


def test_categories_on_the_api_regating_and_a_changed_feature_set(
    fraud: Settings, tmp_path: Path
) -> None:
    first = train(fraud, pipeline=linear(fraud))
    report = evaluate(fraud)
    assert report["passed"], report["checks"]
    assert report["model"]["version"] == first.version
    # After a failed train the challenger is still this version: not re-gated as new.
    with pytest.raises(AlreadyGated, match=f"version {first.version} .* already gated"):
        evaluate(fraud)
    registry = Registry.from_settings(fraud)
    registry.promote()
    champion = registry.load("champion")
    assert champion.training_data["rows"] == 400
    assert champion.training_data["sha256"] == report["model"]["training_data_hash"]

    client = TestClient(create_app(fraud, model=champion))
    record = {"amount": 120.5, "country": "US", "channel": "app"}
    response = client.post("/predict", json=record)
    assert response.status_code == 200, response.text
    (prediction,) = response.json()["predictions"]
    if CLASSIFICATION:
        assert prediction["label_name"] in {"legit", "fraud"}
    missing = client.post("/predict", json={"amount": None, "country": "FR", "channel": None})
    assert missing.status_code == 200, missing.text
    unknown = client.post("/predict", json={**record, "country": "XX"})
    assert unknown.status_code == 422, unknown.text
    assert "country" in unknown.text and "allowed categories" in unknown.text
    assert client.post("/predict", json={**record, "country": 3}).status_code == 422
    version = client.get("/version").json()
    assert version["training_data"]["source"].endswith("train.csv")
    assert version["training_data"]["rows"] == 400
    # The age of the data the served model was trained on (slo.yaml data_freshness).
    scraped = Telemetry(fraud, load_slo(fraud.slo_path)).metrics_text(champion).decode()
    (age,) = [
        sample.value
        for family in text_string_to_metric_families(scraped)
        for sample in family.samples
        if sample.name == TRAINING_DATA_AGE
    ]
    assert 0 <= age < 3600

    # The team drops a feature: the champion is not comparable; a plain verdict, no traceback.
    channel = "- {name: channel, dtype: category, allowed: [web, app], nullable: true}\n"
    fewer = tmp_path / "fewer.yaml"
    fewer.write_text(CONTRACT.replace(channel, ""))
    frame = pd.read_csv(tmp_path / "train.csv").drop(columns=["channel"])
    frame.to_csv(tmp_path / "train-fewer.csv", index=False)
    pd.read_parquet(tmp_path / "golden.parquet").drop(columns=["channel"]).to_parquet(
        tmp_path / "golden-fewer.parquet"
    )
    (tmp_path / "fewer-sources.yaml").write_text(
        "training: {path: train-fewer.csv}\ngolden: {path: golden-fewer.parquet}\n"
    )
    changed = fraud.model_copy(
        update={
            "contract_path": fewer,
            "sources_path": tmp_path / "fewer-sources.yaml",
            "snapshots_dir": tmp_path / "fewer-snapshots",
        }
    )
    train(changed, pipeline=linear(changed))
    report = evaluate(changed)
    (check,) = [c for c in report["checks"] if c["name"] == "no_regression_vs_champion"]
    assert check["passed"] and "not comparable" in check["detail"]
    assert "removed channel" in check["detail"]


def test_a_fresh_registry_still_compares_with_the_recorded_baseline(
    fraud: Settings, tmp_path: Path
) -> None:
    train(fraud, pipeline=linear(fraud))
    report = evaluate(fraud)
    Registry.from_settings(fraud).promote()
    baseline = tmp_path / "baseline.json"
    record_promotion(baseline, report, report["model"]["version"])
    recorded = json.loads(baseline.read_text())
    assert recorded["version"] == report["model"]["version"] and not recorded["bootstrap"]

    # A CI-like run: a new, empty embedded registry, the baseline file from git.
    ci = fraud.model_copy(
        update={
            "tracking_uri": f"sqlite:///{tmp_path / 'ci.db'}",
            "artifact_root": tmp_path / "ci-artifacts",
            "baseline_path": baseline,
        }
    )
    contract = DataContract.load(fraud.contract_path)
    # A worse model: a single shallow tree on the amount only.
    from sklearn.tree import DecisionTreeClassifier

    poor = Pipeline(
        [("prepare", preprocessing(contract)), ("model", DecisionTreeClassifier(max_depth=1))]
    )
    train(ci, pipeline=poor)
    report = evaluate(ci)
    assert "baseline.json" in report["baseline"]
    (check,) = [c for c in report["checks"] if c["name"] == "no_regression_vs_champion"]
    assert not check["passed"], check
    assert "baseline.json" in check["detail"]

    # Neither a champion nor a baseline file: a clear failure, not a silent pass.
    gone = ci.model_copy(update={"baseline_path": tmp_path / "no.json"})
    with pytest.raises(BaselineError, match="no champion in the registry and no recorded baseline"):
        evaluate(gone, again=True)
