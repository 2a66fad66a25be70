"""The compiled inference path (artifact/onnx.py): the ONNX copy made at train time and exported,
the gate's parity check (which must fail on a wrong graph), serving with ONNX Runtime answering
as scikit-learn does, and the fallback to scikit-learn for a pipeline skl2onnx cannot convert."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from fastapi.testclient import TestClient
from sklearn.kernel_approximation import Nystroem
from sklearn.pipeline import Pipeline

from demo_ml_service.artifact import ModelLoadError, load_model_dir
from demo_ml_service.artifact.onnx import (
    ONNX_DIR,
    ONNX_FILE,
    PROBA_ATOL,
    VALUE_ATOL,
    VALUE_RTOL,
    gate_check,
    write_onnx,
)
from demo_ml_service.config import Settings
from demo_ml_service.data.contract import DataContract
from demo_ml_service.data.loaders import load_dataset
from demo_ml_service.model import build_pipeline
from demo_ml_service.registry import Registry
from demo_ml_service.serving.app import create_app
from demo_ml_service.slo import load_slo
from demo_ml_service.training.evaluate import evaluate
from demo_ml_service.training.train import train

from .test_api import golden_records

TASK = load_slo(Settings().slo_path).model_task


def golden() -> tuple[np.ndarray, np.ndarray]:
    return load_dataset(Settings().golden_path, DataContract.load(Settings().contract_path))


def perturb(model_file: Path, factor: float = 1.5) -> None:
    """Scale every float constant of the graph (attributes and initialisers): a wrong model."""
    model = onnx.load(str(model_file))
    for node in model.graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.FLOATS:
                values = [v * factor + 0.1 for v in attribute.floats]
                del attribute.floats[:]
                attribute.floats.extend(values)
    for tensor in model.graph.initializer:
        if tensor.data_type == onnx.TensorProto.FLOAT:
            array = onnx.numpy_helper.to_array(tensor) * factor + 0.1
            tensor.CopyFrom(onnx.numpy_helper.from_array(array.astype(np.float32), tensor.name))
    onnx.save(model, str(model_file))


@pytest.fixture(scope="module")
def exported(trained_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("exported") / "model"
    Registry.from_settings(trained_settings).export("champion", folder)
    return folder


def test_export_writes_a_parity_checked_onnx_copy(
    exported: Path, trained_settings: Settings
) -> None:
    assert (exported / ONNX_DIR / ONNX_FILE).stat().st_size > 0
    meta = json.loads((exported / ONNX_DIR / "onnx.json").read_text())
    assert meta["task"] == TASK and meta["parity"]["passed"] is True
    # The gate checked it on the golden set too.
    report = json.loads((trained_settings.reports_dir / "eval.json").read_text())
    check = next(c for c in report["checks"] if c["name"] == "onnx_parity")
    assert check["passed"] is True and not check.get("skipped"), check
    # Serving from the registry (the `registry` image) takes the same copy.
    assert Registry.from_settings(trained_settings).load("champion", "onnx").runtime == "onnx"


def test_parity_passes_on_the_golden_set(exported: Path) -> None:
    features, _ = golden()
    sklearn_model = load_model_dir(exported, "sklearn")
    check = gate_check(sklearn_model.pipeline, exported, features)
    assert check["passed"] is True and not check.get("skipped"), check


def test_a_perturbed_onnx_model_fails_the_gate(fresh_settings: Settings, tmp_path: Path) -> None:
    train(fresh_settings)
    registry = Registry.from_settings(fresh_settings)
    version = registry.get_alias("challenger")
    assert version is not None and version.run_id
    # Replace the ONNX copy logged with the run by a wrong one, then run the real gate.
    assert registry.download_onnx(version.version, tmp_path)
    model_file = tmp_path / ONNX_DIR / ONNX_FILE
    perturb(model_file)
    registry.client.log_artifact(version.run_id, str(model_file), artifact_path=ONNX_DIR)
    report = evaluate(fresh_settings)
    assert report["passed"] is False
    failed = [c for c in report["checks"] if not c["passed"]]
    assert [c["name"] for c in failed] == ["onnx_parity"], report["checks"]
    assert "golden set" in failed[0]["detail"]


def answers(model_dir: Path, runtime: str, records: list[dict[str, float]]) -> dict[str, Any]:
    model = load_model_dir(model_dir, runtime)  # type: ignore[arg-type]
    with TestClient(create_app(Settings(), model=model)) as client:
        version = client.get("/version").json()
        assert version["inference_runtime"] == runtime, version
        response = client.post("/predict", json={"records": records})
        assert response.status_code == 200, response.text
        one = client.post("/predict", json=records[0])
        assert one.status_code == 200, one.text
        return {"batch": response.json(), "one": one.json()}


def same_answers(onnx_answer: Any, sklearn_answer: Any) -> None:
    """Same shape, keys, outcomes and labels; numbers within the parity tolerance."""
    if isinstance(sklearn_answer, dict):
        assert isinstance(onnx_answer, dict) and onnx_answer.keys() == sklearn_answer.keys()
        for key, value in sklearn_answer.items():
            if key != "request_id":  # one per request
                same_answers(onnx_answer[key], value)
    elif isinstance(sklearn_answer, list):
        assert isinstance(onnx_answer, list) and len(onnx_answer) == len(sklearn_answer)
        for got, expected in zip(onnx_answer, sklearn_answer, strict=True):
            same_answers(got, expected)
    elif isinstance(sklearn_answer, float):
        assert isinstance(onnx_answer, float)
        tolerance = PROBA_ATOL if TASK == "classification" else VALUE_ATOL
        assert abs(onnx_answer - sklearn_answer) <= tolerance + VALUE_RTOL * abs(sklearn_answer)
    else:
        assert type(onnx_answer) is type(sklearn_answer) and onnx_answer == sklearn_answer


def test_serving_with_onnx_answers_as_with_sklearn(exported: Path) -> None:
    records = golden_records(50)
    same_answers(answers(exported, "onnx", records), answers(exported, "sklearn", records))


SERVE_WITHOUT_SKLEARN = """
import importlib.abc, json, sys

class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("sklearn", "scipy", "skops"):
            raise ImportError(f"{name} must not be imported when serving with ONNX Runtime")

sys.meta_path.insert(0, Blocked())
from fastapi.testclient import TestClient
from demo_ml_service.config import Settings
from demo_ml_service.serving.app import create_app
with TestClient(create_app(Settings(model_dir=sys.argv[1]))) as client:
    assert client.get("/readyz").status_code == 200, client.get("/readyz").text
    assert client.get("/version").json()["inference_runtime"] == "onnx"
    response = client.post("/predict", json=json.loads(sys.argv[2]))
    assert response.status_code == 200, response.text
"""


def test_serving_with_onnx_imports_neither_sklearn_nor_scipy(exported: Path) -> None:
    """What makes start-up fast: the ONNX path loads no scikit-learn, SciPy nor skops."""
    record = json.dumps(golden_records(1)[0])
    result = subprocess.run(
        [sys.executable, "-c", SERVE_WITHOUT_SKLEARN, str(exported), record],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def with_unconvertible_step() -> Pipeline:
    """The team's pipeline behind a step skl2onnx has no converter for."""
    kernel = Nystroem(n_components=20, random_state=0)
    return Pipeline([("kernel", kernel), *build_pipeline().steps])


def test_a_pipeline_onnx_cannot_convert_is_served_by_sklearn(
    fresh_settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    features, target = golden()
    line = write_onnx(with_unconvertible_step().fit(features, target), features, TASK, tmp_path)
    assert line.startswith("ONNX: not converted, served by scikit-learn (")
    assert "Nystroem" in line and not (tmp_path / ONNX_DIR).exists()
    # Through training, the gate and export: nothing fails, the gate says it skipped.
    monkeypatch.setattr("demo_ml_service.training.train.build_pipeline", with_unconvertible_step)
    train(fresh_settings)
    assert "ONNX: not converted" in capsys.readouterr().out
    report = evaluate(fresh_settings)
    check = next(c for c in report["checks"] if c["name"] == "onnx_parity")
    assert check["passed"] is True and check["skipped"] is True, check
    folder = tmp_path / "model"
    Registry.from_settings(fresh_settings).export("challenger", folder)
    assert not (folder / ONNX_DIR).exists()
    assert load_model_dir(folder, "auto").runtime == "sklearn"
    with pytest.raises(ModelLoadError, match="SERVICE_INFERENCE_RUNTIME=onnx"):
        load_model_dir(folder, "onnx")
