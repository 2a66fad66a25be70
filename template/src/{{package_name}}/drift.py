"""Data drift: population stability index (PSI) per feature against the training reference."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BINS = 10
# Proportions are floored so that an empty bin does not make the PSI infinite.
EPSILON = 1e-4


@dataclass(frozen=True)
class ReferenceProfile:
    """Per-feature bin edges (deciles of the training data) and the training proportions."""

    features: list[str]
    edges: list[list[float]]
    proportions: list[list[float]]

    @classmethod
    def from_training(cls, features: list[str], data: np.ndarray) -> ReferenceProfile:
        edges, proportions = [], []
        for column in data.T:
            inner = np.unique(np.quantile(column, np.linspace(0, 1, BINS + 1)[1:-1]))
            edges.append(inner.tolist())
            proportions.append(_proportions(column, inner).tolist())
        return cls(features, edges, proportions)

    def to_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.__dict__, indent=1), encoding="utf-8")

    @classmethod
    def from_json(cls, path: Path) -> ReferenceProfile:
        return cls(**json.loads(path.read_text(encoding="utf-8")))

    def psi(self, data: np.ndarray) -> dict[str, float]:
        """PSI of each feature of `data` (rows = observations) against the reference."""
        result = {}
        for index, name in enumerate(self.features):
            expected = np.maximum(np.asarray(self.proportions[index]), EPSILON)
            actual = np.maximum(_proportions(data[:, index], np.asarray(self.edges[index])), EPSILON)
            result[name] = float(np.sum((actual - expected) * np.log(actual / expected)))
        return result


def _proportions(column: np.ndarray, inner_edges: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.searchsorted(inner_edges, column, side="right"), minlength=len(inner_edges) + 1)
    return counts / max(len(column), 1)
