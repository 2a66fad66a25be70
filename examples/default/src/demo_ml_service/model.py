"""The model itself. The use-case team owns this file: `copier update` never overwrites it.

Change the pipeline freely; keep the contract: `build_pipeline()` returns an unfitted scikit-learn
estimator that takes the contract's features as a 2-D float array, in contract order.
"""

from __future__ import annotations

from typing import Any

from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

# Logged to MLflow with every training run.
PARAMS: dict[str, Any] = {
    "C": 1.0,
    "max_iter": 1000,
}


def build_pipeline(params: dict[str, Any] | None = None) -> Pipeline:
    chosen = {**PARAMS, **(params or {})}
    return Pipeline(
        [
            ("scale", StandardScaler()),
            ("model", LogisticRegression(C=chosen["C"], max_iter=chosen["max_iter"])),
        ]
    )
