"""Tests of the team's own model code (team-owned: `copier update` never overwrites this file)."""

from __future__ import annotations

from demo_ml_service.config import Settings
from demo_ml_service.data.contract import DataContract
from demo_ml_service.data.loaders import load_dataset
from demo_ml_service.model import build_pipeline


def test_pipeline_fits_and_predicts_the_sample() -> None:
    settings = Settings()
    contract = DataContract.load(settings.contract_path)
    features, target = load_dataset(settings.train_path, contract)
    pipeline = build_pipeline().fit(features, target)
    assert pipeline.predict(features[:3]).shape == (3,)
