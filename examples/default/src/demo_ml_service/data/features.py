"""The model-side half of the contract: turn the encoded feature matrix (DataContract.encode:
numbers with NaN for missing, categories as codes) into what an estimator fits on.

Platform-owned (updated by `copier update`), used by the team's model.py as its first step, so a
team changing estimator keeps the encoding and imputation that match the contract.
"""

from __future__ import annotations

from typing import Any

from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from .contract import UNKNOWN_CODE, DataContract


def preprocessing(contract: DataContract | None, scale: bool = True) -> Any:
    """Numbers: missing values imputed with the training median (then scaled); categories:
    one-hot encoded from their codes (a missing or unknown category = all zeros)."""
    impute = SimpleImputer(strategy="median", keep_empty_features=True)
    numeric: list[tuple[str, Any]] = [("impute", impute)]
    if scale:
        numeric.append(("scale", StandardScaler()))
    if contract is None or not contract.categorical_indices:
        return Pipeline(numeric)
    categories = [
        [float(code) for code in (f.allowed or ())] for f in contract.features if f.is_categorical
    ]
    encode = Pipeline(
        [
            ("missing", SimpleImputer(strategy="constant", fill_value=UNKNOWN_CODE)),
            ("onehot", OneHotEncoder(categories=categories, handle_unknown="ignore")),
        ]
    )
    return ColumnTransformer(
        [
            ("numeric", Pipeline(numeric), contract.numeric_indices),
            ("category", encode, contract.categorical_indices),
        ],
        sparse_threshold=0.0,
    )
