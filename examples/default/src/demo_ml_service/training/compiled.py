"""The ONNX copy of a trained pipeline, in the registry: logged with the training run, checked by
the gate (see artifact/onnx.py for the format, the conversion and the tolerance)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import mlflow
import numpy as np

from ..artifact.onnx import ONNX_DIR, gate_check, write_onnx
from ..registry import Registry


def log_onnx(pipeline: Any, features: np.ndarray, task: str) -> str:
    """Convert the fitted pipeline, check it on the training rows, and log `onnx/` with the
    active run when it passed. Prints and returns one line; never raises for the model's sake."""
    with tempfile.TemporaryDirectory(prefix="onnx-") as tmp:
        line = write_onnx(pipeline, features, task, Path(tmp))
        if (Path(tmp) / ONNX_DIR).is_dir():
            mlflow.log_artifacts(str(Path(tmp) / ONNX_DIR), artifact_path=ONNX_DIR)
    print(line)
    return line


def onnx_parity_check(
    registry: Registry, version: str, pipeline: Any, features: np.ndarray
) -> dict[str, Any]:
    """The gate's `onnx_parity` check of a registered version on the golden set."""
    with tempfile.TemporaryDirectory(prefix="onnx-") as tmp:
        found = registry.download_onnx(version, Path(tmp))
        return gate_check(pipeline, Path(tmp) if found else None, features)
