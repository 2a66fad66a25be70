"""A loaded model and its metadata, read from an exported model folder (see registry.export)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

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


# Only these may be instantiated from a model file: a file asking for anything else is refused.
TRUSTED_MODULE_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.")


class ModelLoadError(RuntimeError):
    pass


def load_pipeline(path: Path) -> Any:
    """The fitted scikit-learn pipeline of an MLflow model folder, read with skops (no pickle).

    Reads the file directly rather than through mlflow.sklearn, so the runtime image needs
    neither MLflow's training stack nor pandas.
    """
    import skops.io  # deferred: only start-up loads a model

    flavor = yaml.safe_load((path / "MLmodel").read_text(encoding="utf-8"))["flavors"]["sklearn"]
    if flavor.get("serialization_format") != "skops":
        raise ModelLoadError(
            f"{path}: serialization_format {flavor.get('serialization_format')!r} is not served; "
            "log models with serialization_format='skops'"
        )
    model_file = path / flavor["pickled_model"]
    untrusted = skops.io.get_untrusted_types(file=model_file)
    refused = [t for t in untrusted if not t.startswith(TRUSTED_MODULE_PREFIXES)]
    if refused:
        raise ModelLoadError(f"{model_file}: refusing to load untrusted types {refused}")
    return skops.io.load(model_file, trusted=untrusted)


def load_model_dir(path: Path) -> LoadedModel:
    metadata = json.loads((path / METADATA_FILE).read_text(encoding="utf-8"))
    reference_file = path / REFERENCE_DIR / REFERENCE_FILE
    return LoadedModel(
        pipeline=load_pipeline(path),
        name=metadata["name"],
        version=str(metadata["version"]),
        alias=metadata["alias"],
        reference=ReferenceProfile.from_json(reference_file) if reference_file.exists() else None,
        data_hash=metadata.get("data_hash", ""),
    )
