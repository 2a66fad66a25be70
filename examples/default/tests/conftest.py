"""Shared fixtures: a real MLflow sqlite registry in a temp folder, and a model trained into it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo_ml_service.artifact import LoadedModel
from demo_ml_service.config import Settings
from demo_ml_service.registry import Registry
from demo_ml_service.training.evaluate import evaluate
from demo_ml_service.training.train import train

# Tests assert on spans with their own exporters; the default console exporter would only add noise.
os.environ["OTEL_TRACES_EXPORTER"] = "none"


def bootstrap_baseline(root: Path) -> Path:
    """A baseline file that records no champion yet (what a fresh repo ships)."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "baseline.json"
    if not path.exists():
        path.write_text('{"bootstrap": true}\n', encoding="utf-8")
    return path


def make_settings(root: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "tracking_uri": f"sqlite:///{root / 'mlflow.db'}",
        "artifact_root": root / "mlartifacts",
        "reports_dir": root / "reports",
        # Its own snapshots (ingested from data/sources.yaml on first train) and baseline.
        "snapshots_dir": root / "snapshots",
        "baseline_path": bootstrap_baseline(root),
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def trained_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A registry holding one trained, evaluated and promoted version (shared, read-only)."""
    settings = make_settings(tmp_path_factory.mktemp("registry"))
    train(settings)
    assert evaluate(settings)["passed"]
    Registry.from_settings(settings).promote()
    yield settings


@pytest.fixture(scope="session")
def champion(trained_settings: Settings) -> LoadedModel:
    return Registry.from_settings(trained_settings).load("champion")


@pytest.fixture
def fresh_settings(tmp_path: Path) -> Settings:
    """An empty registry of its own, for tests that change aliases."""
    return make_settings(tmp_path)
