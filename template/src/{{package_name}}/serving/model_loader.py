"""A loaded model and its metadata, read from an exported model folder (see registry.export)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..drift import ReferenceProfile

METADATA_FILE = "slipway-model.json"
REFERENCE_DIR = "reference"
REFERENCE_FILE = "feature_profile.json"


@dataclass(frozen=True)
class LoadedModel:
    pipeline: Any
    name: str
    version: str
    alias: str
    reference: ReferenceProfile | None = None
    data_hash: str = ""


def load_model_dir(path: Path) -> LoadedModel:
    import mlflow.sklearn  # deferred: importing MLflow costs a second and only start-up needs it

    metadata = json.loads((path / METADATA_FILE).read_text(encoding="utf-8"))
    reference_file = path / REFERENCE_DIR / REFERENCE_FILE
    return LoadedModel(
        pipeline=mlflow.sklearn.load_model(str(path)),
        name=metadata["name"],
        version=str(metadata["version"]),
        alias=metadata["alias"],
        reference=ReferenceProfile.from_json(reference_file) if reference_file.exists() else None,
        data_hash=metadata.get("data_hash", ""),
    )
