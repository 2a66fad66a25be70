"""The model itself. The use-case team owns this file: `copier update` never overwrites it.

Change the pipeline freely (any scikit-learn estimator, tree ensembles included, or a
scikit-learn-compatible one such as LightGBM's); keep the contract: `build_pipeline()` returns an
unfitted estimator that takes the contract's features as a 2-D float array, in contract order,
with category features as their code (index in the contract's `allowed` list, -1 = unknown) and
missing values as NaN. `preprocessing(contract)` (data/features.py, platform-owned) does the
encoding and imputation for you; keep it as the first step of your pipeline.
"""

from __future__ import annotations

from typing import Any

from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from .data.contract import DataContract
from .data.features import preprocessing

# Logged to MLflow with every training run.
PARAMS: dict[str, Any] = {
    "C": 1.0,
    "max_iter": 1000,
}


def build_pipeline(
    params: dict[str, Any] | None = None, contract: DataContract | None = None
) -> Pipeline:
    chosen = {**PARAMS, **(params or {})}
    return Pipeline(
        [
            ("prepare", preprocessing(contract)),
            ("model", LogisticRegression(C=chosen["C"], max_iter=chosen["max_iter"])),
        ]
    )
