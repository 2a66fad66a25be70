"""The default image ships neither the MLflow client nor pandas (docs/delivery.md): the serving
path and the CLI must work without them. Checked in a fresh interpreter where both are blocked,
so an `import mlflow` that creeps into the service fails here rather than at deploy time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from demo_ml_service.config import Settings
from demo_ml_service.registry import Registry

from .test_api import golden_records

pytestmark = pytest.mark.slow  # a fresh interpreter imports the whole serving stack

SERVE_WITHOUT_MLFLOW = """
import importlib.abc, json, sys

class NotInTheImage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("mlflow", "pandas"):
            raise ImportError(f"{name} is not installed in the default image")

sys.meta_path.insert(0, NotInTheImage())
from fastapi.testclient import TestClient
from demo_ml_service.cli import main
from demo_ml_service.config import Settings
from demo_ml_service.serving.app import create_app
from demo_ml_service.serving.deps import load_model
try:
    main(["--help"])
except SystemExit as exited:
    assert exited.code == 0, exited.code
with TestClient(create_app(Settings(model_dir=sys.argv[1]))) as client:
    assert client.get("/readyz").status_code == 200, client.get("/readyz").text
    response = client.post("/predict", json=json.loads(sys.argv[2]))
    assert response.status_code == 200, response.text
try:
    load_model(Settings(model_dir=None))
except Exception as error:
    print(error)
"""


def test_an_exported_model_is_served_without_mlflow_or_pandas(
    trained_settings: Settings, tmp_path: Path
) -> None:
    model_dir = tmp_path / "model"
    Registry.from_settings(trained_settings).export("champion", model_dir)
    record = golden_records(1)[0]
    result = subprocess.run(
        [sys.executable, "-c", SERVE_WITHOUT_MLFLOW, str(model_dir), json.dumps(record)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # Without an exported folder the service says which image it needs instead.
    assert "--target registry" in result.stdout, result.stdout
