"""The data contract (data/contract.yaml): columns, types, ranges, allowed values, nullability.

Enforced on training data (`validate_frame`) and, through the serving schema and the guardrails,
on every request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import yaml

if TYPE_CHECKING:
    import pandas as pd


class ContractViolation(ValueError):
    """Data does not satisfy the contract; `problems` lists every reason, one per line."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{source} violates the data contract:\n  - " + "\n  - ".join(problems))


@dataclass(frozen=True)
class Feature:
    name: str
    dtype: Literal["float", "int"] = "float"
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    allowed: tuple[float, ...] | None = None


@dataclass(frozen=True)
class DataContract:
    features: tuple[Feature, ...]
    target: str
    target_dtype: Literal["float", "int"]
    classes: dict[int, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> DataContract:
        raw: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        features = []
        for spec in raw["features"]:
            allowed = spec.get("allowed")
            features.append(
                Feature(
                    name=spec["name"],
                    dtype=spec.get("dtype", "float"),
                    nullable=bool(spec.get("nullable", False)),
                    min=spec.get("min"),
                    max=spec.get("max"),
                    allowed=tuple(float(v) for v in allowed) if allowed is not None else None,
                )
            )
        names = [f.name for f in features]
        if len(set(names)) != len(names):
            raise ValueError(f"{path}: duplicate feature names in the contract")
        classes = {int(k): str(v) for k, v in (raw.get("classes") or {}).items()}
        return cls(tuple(features), raw["target"], raw.get("target_dtype", "float"), classes)

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    # Vectorised bounds, in feature order, for the guardrails' hot path (NaN = unbounded).
    @cached_property
    def lower_bounds(self) -> np.ndarray:
        return np.array([np.nan if f.min is None else f.min for f in self.features], dtype=float)

    @cached_property
    def upper_bounds(self) -> np.ndarray:
        return np.array([np.nan if f.max is None else f.max for f in self.features], dtype=float)

    def validate_frame(self, frame: pd.DataFrame, source: str, with_target: bool = True) -> None:
        """Raise ContractViolation listing every problem of a training or evaluation frame."""
        problems: list[str] = []
        expected = self.feature_names + ([self.target] if with_target else [])
        missing = [c for c in expected if c not in frame.columns]
        unknown = [c for c in frame.columns if c not in expected]
        if missing:
            problems.append(f"missing columns: {', '.join(missing)}")
        if unknown:
            problems.append(f"columns not in the contract: {', '.join(unknown)}")
        for feature in self.features:
            if feature.name not in frame.columns:
                continue
            column = frame[feature.name]
            nulls = int(column.isna().sum())
            if nulls and not feature.nullable:
                problems.append(f"{feature.name}: {nulls} null value(s) in a non-nullable column")
            values = column.dropna()
            if values.dtype.kind not in "biuf":
                problems.append(f"{feature.name}: expected numbers, found dtype {values.dtype}")
                continue
            if feature.min is not None and (low := int((values < feature.min).sum())):
                problems.append(f"{feature.name}: {low} value(s) below the minimum {feature.min}")
            if feature.max is not None and (high := int((values > feature.max).sum())):
                problems.append(f"{feature.name}: {high} value(s) above the maximum {feature.max}")
            if feature.allowed is not None and (odd := int((~values.isin(feature.allowed)).sum())):
                problems.append(
                    f"{feature.name}: {odd} value(s) not in the allowed set {list(feature.allowed)}"
                )
        if with_target and self.target in frame.columns:
            target = frame[self.target]
            if int(target.isna().sum()):
                problems.append(f"{self.target}: the target has null values")
            if self.classes and not target.dropna().isin(list(self.classes)).all():
                problems.append(f"{self.target}: labels outside the classes {sorted(self.classes)}")
        if len(frame) == 0:
            problems.append("no rows")
        if problems:
            raise ContractViolation(source, problems)
