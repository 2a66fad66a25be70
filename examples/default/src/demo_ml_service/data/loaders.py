"""Loaders of the governed sample and golden set; every load is checked against the contract."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from .contract import DataContract


def data_hash(path: Path) -> str:
    """sha256 of the file's bytes: recorded with every model trained on it."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_dataset(path: Path, contract: DataContract) -> tuple[np.ndarray, np.ndarray]:
    """Features in contract order and the target, after validating the whole file."""
    frame = pd.read_csv(path)
    contract.validate_frame(frame, source=str(path))
    features = frame[contract.feature_names].to_numpy(dtype=float)
    target = frame[contract.target].to_numpy()
    if contract.target_dtype == "int":
        target = target.astype(int)
    return features, target


def load_features(path: Path, contract: DataContract) -> np.ndarray:
    """Features only (e.g. a file of production inputs for an offline drift report)."""
    frame = pd.read_csv(path)
    if contract.target in frame.columns:
        frame = frame.drop(columns=[contract.target])
    contract.validate_frame(frame, source=str(path), with_target=False)
    return frame[contract.feature_names].to_numpy(dtype=float)
