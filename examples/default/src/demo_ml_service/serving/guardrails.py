"""Guardrails on the serving path: contract ranges/allowed values and the low-confidence abstain.

Everything here is vectorised over the request's feature matrix: no per-value Python loops unless
a violation was found.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.contract import DataContract


@dataclass(frozen=True)
class Violation:
    row: int
    feature: str
    reason: str  # "out_of_range" | "not_allowed"
    message: str


class RangeGuard:
    def __init__(self, contract: DataContract) -> None:
        self.contract = contract
        self._lower = np.nan_to_num(contract.lower_bounds, nan=-np.inf)
        self._upper = np.nan_to_num(contract.upper_bounds, nan=np.inf)
        self._categorical = [
            (index, feature, np.asarray(feature.allowed, dtype=float))
            for index, feature in enumerate(contract.features)
            if feature.allowed is not None
        ]

    def check(self, features: np.ndarray) -> list[Violation]:
        # NaN (a null in a nullable column) compares False on both sides and passes.
        outside = (features < self._lower) | (features > self._upper)
        violations: list[Violation] = []
        if outside.any():
            for row, column in zip(*np.nonzero(outside), strict=True):
                feature = self.contract.features[column]
                value = features[row, column]
                bound = (
                    f"below the contract minimum {feature.min}"
                    if value < self._lower[column]
                    else f"above the contract maximum {feature.max}"
                )
                violations.append(
                    Violation(int(row), feature.name, "out_of_range", f"{value:g} is {bound}")
                )
        for column, feature, allowed in self._categorical:
            values = features[:, column]
            bad = ~np.isin(values, allowed) & ~np.isnan(values)
            for row in np.nonzero(bad)[0]:
                violations.append(
                    Violation(
                        int(row),
                        feature.name,
                        "not_allowed",
                        (
                            f"{values[row]:g} is not one of the allowed values "
                            f"{list(feature.allowed or ())}"
                        )
                        if feature.categories is None
                        else f"not one of the allowed categories {list(feature.categories)}",
                    )
                )
        return violations


def abstain_mask(probabilities: np.ndarray, min_confidence: float | None) -> np.ndarray:
    """True where the top-class probability is below the threshold: `abstain`, not a guess."""
    if min_confidence is None:
        return np.zeros(len(probabilities), dtype=bool)
    return np.asarray(probabilities.max(axis=1) < min_confidence)
