"""The exported model folder: what `export` writes, the image bakes in and the service loads.

    <folder>/MLmodel, model.skops, ...     the MLflow model (sklearn flavour, skops format)
    <folder>/slipway-model.json            name, version, alias, run id, data hash, template
    <folder>/reference/feature_profile.json  the training reference profile (drift)
    <folder>/onnx/model.onnx, onnx.json    optional: the ONNX copy (artifact/onnx.py)

Reading it needs neither MLflow nor pandas, so the runtime image ships without them.
"""

from __future__ import annotations

import calendar
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .onnx import Runtime, load_onnx
from .profile import ReferenceProfile

METADATA_FILE = "slipway-model.json"
# The run artefact folder of the reference profile, and its file (same layout in the run).
REFERENCE_DIR = "reference"
REFERENCE_FILE = "feature_profile.json"
# The sklearn flavour's model file format: skops, never pickle.
SERIALIZATION_FORMAT = "skops"
# Only these may be instantiated from a model file: a file asking for anything else is refused.
# LightGBM (the boosting library slipway tests end to end) is trusted too; its booster state
# is an OrderedDict. A model of another library needs its prefix added here (platform change).
TRUSTED_MODULE_PREFIXES = (
    "sklearn.",
    "numpy.",
    "scipy.",
    "builtins.",
    "lightgbm.",
    "collections.OrderedDict",
)


@dataclass(frozen=True)
class LoadedModel:
    pipeline: Any
    name: str
    version: str
    alias: str
    reference: ReferenceProfile | None = None
    data_hash: str = ""
    # The training snapshot: source, query, rows, sha256, created_at (UTC ISO 8601).
    training_data: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    # What predicts: "sklearn" (the skops pipeline) or "onnx" (ONNX Runtime, artifact/onnx.py).
    runtime: str = "sklearn"

    @property
    def training_data_epoch(self) -> float | None:
        """When the training snapshot was ingested (epoch seconds), if recorded."""
        created = self.training_data.get("created_at")
        if not created:
            return None
        try:
            return float(calendar.timegm(time.strptime(str(created), "%Y-%m-%dT%H:%M:%SZ")))
        except ValueError:
            return None


@dataclass(frozen=True)
class ModelMetadata:
    """The contents of METADATA_FILE."""

    name: str
    version: str
    alias: str
    run_id: str | None = None
    data_hash: str = ""
    template_version: str = ""
    training_data: dict[str, Any] = field(default_factory=dict)

    def write(self, folder: Path) -> None:
        (folder / METADATA_FILE).write_text(json.dumps(self.__dict__, indent=2), encoding="utf-8")

    @classmethod
    def read(cls, folder: Path) -> ModelMetadata:
        data = json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))
        known = {key: data[key] for key in cls.__dataclass_fields__ if key in data}
        return cls(**{**known, "version": str(known["version"])})


class ModelLoadError(RuntimeError):
    pass


def load_pipeline(path: Path) -> Any:
    """The fitted scikit-learn pipeline of an MLflow model folder, read with skops (no pickle).

    Reads the file directly rather than through mlflow.sklearn, so the runtime image needs
    neither MLflow's training stack nor pandas.
    """
    try:
        import skops.io  # deferred: only start-up loads a model
    except ImportError as error:
        # The image built for a model's ONNX copy ships without scikit-learn.
        raise ModelLoadError(
            f"{path}: serving with scikit-learn needs {error.name}, which is not installed "
            "(an image built for a model's ONNX copy has none: docs/performance.md, section Image)"
        ) from error

    flavor = yaml.safe_load((path / "MLmodel").read_text(encoding="utf-8"))["flavors"]["sklearn"]
    if flavor.get("serialization_format") != SERIALIZATION_FORMAT:
        raise ModelLoadError(
            f"{path}: serialization_format {flavor.get('serialization_format')!r} is not served; "
            f"log models with serialization_format={SERIALIZATION_FORMAT!r}"
        )
    model_file = path / flavor["pickled_model"]
    untrusted = skops.io.get_untrusted_types(file=model_file)
    refused = [t for t in untrusted if not t.startswith(TRUSTED_MODULE_PREFIXES)]
    if refused:
        raise ModelLoadError(f"{model_file}: refusing to load untrusted types {refused}")
    return skops.io.load(model_file, trusted=untrusted)


def load_model_dir(path: Path, runtime: Runtime = "sklearn") -> LoadedModel:
    """The model of an exported folder. `runtime`: "sklearn" loads the skops pipeline; "onnx"
    the parity-checked ONNX copy (ModelLoadError without one); "auto" the ONNX copy when there is
    one and onnxruntime is installed, else scikit-learn (saying why, in one line)."""
    metadata = ModelMetadata.read(path)
    reference_file = path / REFERENCE_DIR / REFERENCE_FILE
    pipeline: Any = None
    if runtime != "sklearn":
        pipeline, reason = load_onnx(path)
        if pipeline is None and runtime == "onnx":
            raise ModelLoadError(f"SERVICE_INFERENCE_RUNTIME=onnx but {reason}")
        if pipeline is None:
            print(f"inference runtime: scikit-learn ({reason})", file=sys.stderr)
    return LoadedModel(
        pipeline=pipeline if pipeline is not None else load_pipeline(path),
        runtime="sklearn" if pipeline is None else "onnx",
        name=metadata.name,
        version=metadata.version,
        alias=metadata.alias,
        reference=ReferenceProfile.from_json(reference_file) if reference_file.exists() else None,
        data_hash=metadata.data_hash,
        training_data=dict(metadata.training_data),
    )
