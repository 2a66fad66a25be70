"""The training reference profile of a model version: per-feature decile edges and proportions.

Written by training (MLflow artefact `reference/feature_profile.json`), exported with the model,
read by the service's drift window and by the offline drift report; PSI is computed here.
"""

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
            proportions.append(bin_proportions(column, inner).tolist())
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
            column = data[:, index]
            column = column[~np.isnan(column)]  # nulls of nullable columns are not a bin
            if not len(column):
                continue
            expected = np.maximum(np.asarray(self.proportions[index]), EPSILON)
            actual = np.maximum(bin_proportions(column, np.asarray(self.edges[index])), EPSILON)
            result[name] = float(np.sum((actual - expected) * np.log(actual / expected)))
        return result


def bin_proportions(column: np.ndarray, inner_edges: np.ndarray) -> np.ndarray:
    """Share of `column` in each bin delimited by `inner_edges` (len(inner_edges) + 1 bins)."""
    counts = np.bincount(
        np.searchsorted(inner_edges, column, side="right"), minlength=len(inner_edges) + 1
    )
    return counts / max(len(column), 1)
