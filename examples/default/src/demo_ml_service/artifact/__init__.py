"""The model artifact, one home for its format: written by training and export, read by serving,
drift and the tools. Depends on nothing else in the package (the bottom of the import graph)."""

from .folder import (
    METADATA_FILE,
    REFERENCE_DIR,
    REFERENCE_FILE,
    SERIALIZATION_FORMAT,
    TRUSTED_MODULE_PREFIXES,
    LoadedModel,
    ModelLoadError,
    ModelMetadata,
    load_model_dir,
    load_pipeline,
)
from .profile import ReferenceProfile, bin_proportions

__all__ = [
    "METADATA_FILE",
    "REFERENCE_DIR",
    "REFERENCE_FILE",
    "SERIALIZATION_FORMAT",
    "TRUSTED_MODULE_PREFIXES",
    "LoadedModel",
    "ModelLoadError",
    "ModelMetadata",
    "ReferenceProfile",
    "bin_proportions",
    "load_model_dir",
    "load_pipeline",
]
