"""Loaders of training, golden and snapshot files; every load is checked against the contract."""

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


def read_frame(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file (by extension), e.g. a snapshot written by `ingest`."""
    if path.suffix.lower() in {".parquet", ".pq"}:
        return pd.read_parquet(path)
    return pd.read_csv(path)


def load_dataset(path: Path, contract: DataContract) -> tuple[np.ndarray, np.ndarray]:
    """Features in contract order (categories encoded, see DataContract.encode) and the target,
    after validating the whole file."""
    frame = read_frame(path)
    contract.validate_frame(frame, source=str(path))
    features = contract.encode(frame)
    target = frame[contract.target].to_numpy()
    if contract.target_dtype == "int":
        target = target.astype(int)
    return features, target


def load_features(path: Path, contract: DataContract) -> np.ndarray:
    """Features only (e.g. a file of production inputs for an offline drift report)."""
    frame = read_frame(path)
    if contract.target in frame.columns:
        frame = frame.drop(columns=[contract.target])
    contract.validate_frame(frame, source=str(path), with_target=False)
    return contract.encode(frame)
