"""The optional compiled inference path: the fitted pipeline as ONNX, served by ONNX Runtime.

    <folder>/onnx/model.onnx      the pipeline converted by skl2onnx (float32 input, no ZipMap)
    <folder>/onnx/onnx.json       task, feature count, classes, and the parity check it passed

Training converts the pipeline (`write_onnx`) and keeps the file only when its predictions equal
scikit-learn's on the training rows (`check_parity`); the eval gate checks the same on the golden
set and fails on a mismatch. A pipeline skl2onnx cannot convert gets one line saying why and is
served by scikit-learn: a conversion never fails training or export.

Serving (`load_onnx`) needs onnxruntime and NumPy only, not scikit-learn, SciPy nor skops: that is
most of a start-up's import time. skl2onnx and onnx (conversion) are training dependencies.

Tolerance: identical labels, probabilities within PROBA_ATOL; regression values within
VALUE_ATOL + VALUE_RTOL x |value| (the graph computes in float32, scikit-learn in float64).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

ONNX_DIR = "onnx"
ONNX_FILE = "model.onnx"
ONNX_META = "onnx.json"
PROBA_ATOL = 1e-5
VALUE_ATOL = 1e-5
VALUE_RTOL = 1e-5
RUNTIMES = ("auto", "onnx", "sklearn")
Runtime = Literal["auto", "onnx", "sklearn"]


@dataclass(frozen=True)
class Parity:
    """The outcome of comparing the ONNX graph with the pipeline on `rows` rows."""

    passed: bool
    rows: int
    max_abs_diff: float
    label_mismatches: int
    detail: str


def convert(pipeline: Any, n_features: int) -> tuple[bytes | None, str]:
    """(the serialised ONNX model, "") or (None, why it could not be converted)."""
    try:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType
    except ImportError as error:
        return None, f"skl2onnx is not installed ({error.name})"
    options: dict[Any, Any] = {}
    if hasattr(pipeline, "predict_proba"):
        # Probabilities as a plain tensor, not a list of {class: p} maps.
        options = {id(_final_step(pipeline)): {"zipmap": False}}
    try:
        model = convert_sklearn(
            pipeline,
            initial_types=[("input", FloatTensorType([None, n_features]))],
            options=options,
            target_opset=None,
        )
    except Exception as error:  # skl2onnx raises many types; any of them means "not convertible"
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return None, f"{type(error).__name__}: {message}"[:300]
    return model.SerializeToString(), ""


def _final_step(pipeline: Any) -> Any:
    steps = getattr(pipeline, "steps", None)
    return steps[-1][1] if steps else pipeline


class OnnxPipeline:
    """An ONNX Runtime session with the scikit-learn methods the service calls: `predict`,
    `predict_proba` and `classes_`, on a 2-D float array, with the same shapes and types."""

    runtime = "onnx"

    def __init__(self, model: bytes | Path, meta: dict[str, Any]) -> None:
        import onnxruntime  # deferred: only serving with ONNX needs it

        options = onnxruntime.SessionOptions()
        # One request at a time per worker: threads would contend with the event loop.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        source = str(model) if isinstance(model, Path) else model
        self.session = onnxruntime.InferenceSession(
            source, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [output.name for output in self.session.get_outputs()]
        self.task = str(meta.get("task", "regression"))
        if self.task == "classification":
            self.classes_ = np.array(meta["classes"])

    def _run(self, features: np.ndarray) -> list[Any]:
        batch = np.ascontiguousarray(features, dtype=np.float32)
        outputs: list[Any] = self.session.run(self.output_names, {self.input_name: batch})
        return outputs

    def predict(self, features: np.ndarray) -> np.ndarray:
        if self.task == "classification":
            return np.asarray(self.classes_[self.predict_proba(features).argmax(axis=1)])
        return np.asarray(self._run(features)[0], dtype=np.float64).reshape(-1)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        # Outputs of a converted classifier: [label, probabilities].
        return np.asarray(self._run(features)[1], dtype=np.float64)


def check_parity(pipeline: Any, onnx_model: OnnxPipeline, features: np.ndarray) -> Parity:
    """Predictions (and, for a classifier, probabilities) of `onnx_model` against `pipeline`."""
    rows = len(features)
    if onnx_model.task == "classification":
        expected = np.asarray(pipeline.predict_proba(features), dtype=np.float64)
        got = onnx_model.predict_proba(features)
        if got.shape != expected.shape:
            return Parity(False, rows, float("inf"), rows, f"shape {got.shape} != {expected.shape}")
        diff = float(np.max(np.abs(got - expected))) if rows else 0.0
        mismatches = int(
            np.sum(onnx_model.predict(features) != np.asarray(pipeline.predict(features)))
        )
        passed = diff <= PROBA_ATOL and mismatches == 0
        detail = (
            f"{rows} rows: {mismatches} label mismatches, max |Δ probability| = {diff:.2e} "
            f"(tolerance: identical labels, {PROBA_ATOL:g})"
        )
        return Parity(passed, rows, diff, mismatches, detail)
    expected = np.asarray(pipeline.predict(features), dtype=np.float64).reshape(-1)
    got = onnx_model.predict(features)
    if got.shape != expected.shape:
        return Parity(False, rows, float("inf"), 0, f"shape {got.shape} != {expected.shape}")
    diff = float(np.max(np.abs(got - expected))) if rows else 0.0
    passed = bool(np.allclose(got, expected, rtol=VALUE_RTOL, atol=VALUE_ATOL))
    detail = (
        f"{rows} rows: max |Δ value| = {diff:.2e} "
        f"(tolerance {VALUE_ATOL:g} + {VALUE_RTOL:g} x |value|)"
    )
    return Parity(passed, rows, diff, 0, detail)


def write_onnx(pipeline: Any, features: np.ndarray, task: str, out_dir: Path) -> str:
    """Convert `pipeline`, check parity on `features`, and write `out_dir/onnx/` only if it
    passed. Never raises for the model's sake: returns the one line to print either way."""
    data, reason = convert(pipeline, features.shape[1])
    if data is None:
        return f"ONNX: not converted, served by scikit-learn ({reason})"
    meta: dict[str, Any] = {"task": task, "n_features": int(features.shape[1])}
    if task == "classification":
        meta["classes"] = np.asarray(pipeline.classes_).tolist()
    try:
        parity = check_parity(pipeline, OnnxPipeline(data, meta), features)
    except ImportError as error:
        return f"ONNX: converted but not checked, served by scikit-learn (no {error.name})"
    except Exception as error:  # onnxruntime refusing the graph is the same verdict
        return f"ONNX: the converted graph does not run, served by scikit-learn ({error})"[:300]
    if not parity.passed:
        return f"ONNX: parity failed, served by scikit-learn ({parity.detail})"
    folder = out_dir / ONNX_DIR
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ONNX_FILE).write_bytes(data)
    meta["parity"] = {"checked_on": "training rows", **asdict(parity)}
    (folder / ONNX_META).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return f"ONNX: converted, parity passed on {parity.detail}"


def read_meta(folder: Path) -> dict[str, Any] | None:
    """The ONNX metadata of a model folder (or of its `onnx/` subfolder), None without one."""
    onnx_dir = folder if (folder / ONNX_META).exists() else folder / ONNX_DIR
    meta_file, model_file = onnx_dir / ONNX_META, onnx_dir / ONNX_FILE
    if not (meta_file.exists() and model_file.exists()):
        return None
    meta: dict[str, Any] = json.loads(meta_file.read_text(encoding="utf-8"))
    meta["path"] = str(model_file)
    return meta


def load_onnx(folder: Path) -> tuple[OnnxPipeline | None, str]:
    """(the ONNX pipeline of a model folder, "") or (None, why not): no file, parity not
    passed at conversion, onnxruntime not installed."""
    meta = read_meta(folder)
    if meta is None:
        return None, f"no {ONNX_DIR}/{ONNX_FILE} in {folder}"
    if not meta.get("parity", {}).get("passed", False):
        return None, f"{ONNX_DIR}/{ONNX_FILE} did not pass its parity check"
    try:
        return OnnxPipeline(Path(meta["path"]), meta), ""
    except ImportError:
        return None, "onnxruntime is not installed"


def gate_check(pipeline: Any, onnx_dir: Path | None, features: np.ndarray) -> dict[str, Any]:
    """The eval gate's `onnx_parity` check on the golden set: passed, failed (a mismatch or a
    graph that does not run), or skipped with the reason when there is no ONNX model."""
    name = "onnx_parity"
    meta = read_meta(onnx_dir) if onnx_dir is not None else None
    if meta is None:
        return {"name": name, "passed": True, "skipped": True,
                "detail": "skipped: no ONNX model (served by scikit-learn)"}  # fmt: skip
    try:
        parity = check_parity(pipeline, OnnxPipeline(Path(meta["path"]), meta), features)
    except ImportError as error:
        return {"name": name, "passed": True, "skipped": True,
                "detail": f"skipped: {error.name} is not installed"}  # fmt: skip
    except Exception as error:
        return {"name": name, "passed": False, "detail": f"the ONNX model does not run: {error}"}
    return {"name": name, "passed": parity.passed, "detail": f"golden set, {parity.detail}"}
