"""Typed view of slo.yaml, the definition of done: everything that needs a threshold reads it.

The one parser of slo.yaml: the eval gate, the service and the ops generators (run by copier's own
Python: only PyYAML and pydantic here) all use `load_slo`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

# The direction of every metric the gate can check (the threshold is a floor or a ceiling).
HIGHER_IS_BETTER = {"f1": True, "accuracy": True, "r2": True, "rmse": False}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Quality(_Strict):
    metric: Literal["f1", "accuracy", "r2", "rmse"]
    threshold: float
    max_regression_vs_champion: float = Field(ge=0)

    @property
    def higher_is_better(self) -> bool:
        return HIGHER_IS_BETTER[self.metric]

    def meets_threshold(self, value: float) -> bool:
        return value >= self.threshold if self.higher_is_better else value <= self.threshold

    def regression_vs(self, value: float, champion: float) -> float:
        """How much worse `value` is than the champion's (positive = worse)."""
        return champion - value if self.higher_is_better else value - champion


class Cost(_Strict):
    ceiling_per_1k_predictions_usd: float = Field(gt=0)
    instance_hourly_price_usd: float = Field(gt=0)


class DataFreshness(_Strict):
    # Maximum age of the served model's training snapshot (`ingest`), in days.
    max_age_days: float = Field(default=30.0, gt=0)


class Objectives(_Strict):
    latency_p95_ms: float = Field(gt=0)
    max_error_rate: float = Field(gt=0, lt=1)
    quality: Quality
    cost: Cost
    # Defaulted: a slo.yaml written before this objective existed stays valid.
    data_freshness: DataFreshness = Field(default_factory=DataFreshness)
    # The SLO window in days: the error budgets (errors: max_error_rate of the requests; latency:
    # the 5% of requests above the p95 target) are spent over this period, and the burn-rate
    # alerts scale with it. At least 7 days, so that the slow-burn alert's 3-day window fits.
    # Defaulted (the usual 30 days): a slo.yaml written before it existed stays valid.
    slo_window_days: int = Field(default=30, ge=7, le=366)


class Rollback(_Strict):
    breach_window_minutes: int = Field(gt=0)
    action: str


class Guardrails(_Strict):
    out_of_range: Literal["reject", "flag"] = "reject"
    min_confidence: float | None = Field(default=None, ge=0, le=1)
    max_batch_size: int = Field(default=256, gt=0)
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    # A request body must arrive within this many seconds (408 after): a slow client cannot
    # hold a connection and its buffer open indefinitely.
    body_read_timeout_seconds: float = Field(default=10.0, gt=0)


class Drift(_Strict):
    psi_alert_threshold: float = Field(gt=0)
    window_size: int = Field(gt=10)


class SLO(_Strict):
    service: str
    model_task: Literal["classification", "regression"]
    objectives: Objectives
    rollback: Rollback
    guardrails: Guardrails
    drift: Drift

    @model_validator(mode="after")
    def _metric_fits_task(self) -> SLO:
        allowed = {"classification": {"f1", "accuracy"}, "regression": {"r2", "rmse"}}
        if self.objectives.quality.metric not in allowed[self.model_task]:
            raise ValueError(
                f"quality metric {self.objectives.quality.metric!r} does not fit a "
                f"{self.model_task} model; use one of {sorted(allowed[self.model_task])}"
            )
        return self


def load_slo(path: Path) -> SLO:
    with path.open(encoding="utf-8") as handle:
        return SLO.model_validate(yaml.safe_load(handle))
