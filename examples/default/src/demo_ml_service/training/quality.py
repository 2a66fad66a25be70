"""Quality metrics shared by training (in-sample) and the eval gate (golden set)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
)


def score(task: str, pipeline: Any, features: np.ndarray, target: np.ndarray) -> dict[str, float]:
    if task == "classification":
        predicted = pipeline.predict(features)
        proba = pipeline.predict_proba(features)[:, 1]
        return {
            "accuracy": float(accuracy_score(target, predicted)),
            "f1": float(f1_score(target, predicted)),
            "precision": float(precision_score(target, predicted)),
            "recall": float(recall_score(target, predicted)),
            "roc_auc": float(roc_auc_score(target, proba)),
        }
    predicted = pipeline.predict(features)
    return {
        "rmse": float(np.sqrt(mean_squared_error(target, predicted))),
        "mae": float(mean_absolute_error(target, predicted)),
        "r2": float(r2_score(target, predicted)),
    }
