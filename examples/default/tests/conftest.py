"""Shared fixtures: a real MLflow sqlite registry in a temp folder, and a model trained into it."""

from __future__ import annotations

import atexit
import fcntl
import functools
import os
import shutil
import tempfile
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


@functools.cache
def empty_registry_db() -> Path:
    """An empty MLflow sqlite store, its tables made and migrated by MLflow itself, once a process.

    Creating a store runs every MLflow schema migration (1-2 s); a test's own registry starts as a
    copy of this file instead: the same tables and schema revision, in milliseconds. The Default
    experiment's artefact location depends on the working directory, not on the file, so a copy
    equals a store created in place.
    """
    folder = Path(tempfile.mkdtemp(prefix="empty-registry-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    database = folder / "mlflow.db"
    registry = Registry(f"sqlite:///{database}", "empty")
    registry.client.search_experiments()
    registry.client.search_registered_models()
    return database


def make_settings(root: Path, **overrides: object) -> Settings:
    """Settings on a registry of its own under root: a fresh sqlite store unless overridden."""
    if "tracking_uri" not in overrides and not (root / "mlflow.db").exists():
        root.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(empty_registry_db(), root / "mlflow.db")
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
    """A registry holding one trained, evaluated and promoted version (shared, read-only).

    Under pytest-xdist the workers of a run share one: the first to get here trains it while the
    others wait on a lock, then they all read it (a sqlite store takes concurrent readers).
    """
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        root = tmp_path_factory.mktemp("registry")
    else:  # the run's own temp folder, shared by its workers (each has a folder inside it)
        root = tmp_path_factory.getbasetemp().parent / "shared-registry"
    with open(f"{root}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        settings = make_settings(root)
        if not (root / "trained").exists():
            train(settings)
            assert evaluate(settings)["passed"]
            Registry.from_settings(settings).promote()
            (root / "trained").touch()
    yield settings


@pytest.fixture(scope="session")
def champion(trained_settings: Settings) -> LoadedModel:
    return Registry.from_settings(trained_settings).load("champion")


@pytest.fixture
def fresh_settings(tmp_path: Path) -> Settings:
    """An empty registry of its own, for tests that change aliases."""
    return make_settings(tmp_path)
