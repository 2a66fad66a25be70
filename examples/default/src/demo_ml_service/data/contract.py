"""The data contract (data/contract.yaml): columns, types, ranges, allowed values, nullability.

Enforced on training data (`validate_frame`, at `ingest` and at `train`) and, through the serving
schema and the guardrails, on every request. The file is parsed strictly: an unknown or misspelled
key (`maximum:` for `max:`) is an error that names it.

Feature types: `float` and `int` (numbers; `min`/`max`, `allowed` values, `nullable`: missing
values are imputed inside the model pipeline) and `category` (strings from `allowed`; the API
takes the strings, `encode` turns them into their index in `allowed` and the model pipeline
one-hot encodes that index: append new categories at the end of the list, never reorder it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

if TYPE_CHECKING:
    import pandas as pd

# Row numbers quoted per problem: enough to find the pattern, never the whole file.
MAX_ROWS_QUOTED = 5
# The code of a string that is not an allowed category (refused or flagged by the guardrails).
UNKNOWN_CODE = -1.0
FeatureType = Literal["float", "int", "category"]


class ContractViolation(ValueError):
    """Data does not satisfy the contract; `problems` lists every reason, one per line."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{source} violates the data contract:\n  - " + "\n  - ".join(problems))


class ContractError(ValueError):
    """data/contract.yaml itself is invalid; the message names the file, feature and key."""


class _FeatureSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    dtype: FeatureType = "float"
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    allowed: list[float] | list[str] | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> _FeatureSpec:
        if self.dtype == "category":
            if not self.allowed or not all(isinstance(v, str) for v in self.allowed):
                raise ValueError("a category feature lists its values as strings in `allowed`")
            if self.min is not None or self.max is not None:
                raise ValueError("a category feature has no min/max")
            if len(set(self.allowed)) != len(self.allowed):
                raise ValueError("duplicate values in `allowed`")
        elif self.allowed is not None and not all(isinstance(v, int | float) for v in self.allowed):
            raise ValueError(f"a {self.dtype} feature's `allowed` values are numbers")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class _ContractSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    target: str = Field(min_length=1)
    target_dtype: Literal["float", "int"] = "float"
    classes: dict[int, str] | None = None
    features: list[_FeatureSpec] = Field(min_length=1)


@dataclass(frozen=True)
class Feature:
    name: str
    dtype: FeatureType = "float"
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    # Numbers a numeric feature may take; for a category feature, the codes 0..n-1 of `categories`
    # (what the guardrails check on the encoded matrix).
    allowed: tuple[float, ...] | None = None
    categories: tuple[str, ...] | None = None

    @property
    def is_categorical(self) -> bool:
        return self.categories is not None


@dataclass(frozen=True)
class DataContract:
    features: tuple[Feature, ...]
    target: str
    target_dtype: Literal["float", "int"]
    classes: dict[int, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> DataContract:
        try:
            raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            raise ContractError(f"{path}: not valid YAML: {error}") from error
        return cls.from_dict(raw, str(path))

    @classmethod
    def from_dict(cls, raw: Any, source: str = "contract") -> DataContract:
        try:
            spec = _ContractSpec.model_validate(raw if raw is not None else {})
        except ValidationError as error:
            raise ContractError(f"{source}: " + "; ".join(_describe(error, raw))) from error
        names = [f.name for f in spec.features]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ContractError(f"{source}: duplicate feature names {duplicates}")
        if spec.target in names:
            raise ContractError(f"{source}: the target {spec.target!r} is also a feature")
        features = []
        for f in spec.features:
            if f.dtype == "category":
                categories = tuple(str(v) for v in f.allowed or ())
                allowed: tuple[float, ...] | None = tuple(float(i) for i in range(len(categories)))
            else:
                categories = None
                allowed = tuple(float(v) for v in f.allowed) if f.allowed is not None else None
            features.append(Feature(f.name, f.dtype, f.nullable, f.min, f.max, allowed, categories))
        return cls(tuple(features), spec.target, spec.target_dtype, dict(spec.classes or {}))

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def categorical_indices(self) -> list[int]:
        return [i for i, f in enumerate(self.features) if f.is_categorical]

    @property
    def numeric_indices(self) -> list[int]:
        return [i for i, f in enumerate(self.features) if not f.is_categorical]

    def request_record(self, row: Mapping[str, str]) -> dict[str, Any]:
        """A CSV row's features as `POST /predict` takes them: a category as its string, a
        number as a float, an empty cell of a nullable feature as null (the load test, bench)."""
        record: dict[str, Any] = {}
        for f in self.features:
            cell = row[f.name]
            if f.nullable and cell.strip() == "":
                record[f.name] = None
            else:
                record[f.name] = cell if f.is_categorical else float(cell)
        return record

    def label_name(self, label: int) -> str:
        """A class's name from the contract (`classes:`), else the label itself."""
        return self.classes.get(label, str(label))

    # Vectorised bounds, in feature order, for the guardrails' hot path (NaN = unbounded).
    @cached_property
    def lower_bounds(self) -> np.ndarray:
        return np.array([np.nan if f.min is None else f.min for f in self.features], dtype=float)

    @cached_property
    def upper_bounds(self) -> np.ndarray:
        return np.array([np.nan if f.max is None else f.max for f in self.features], dtype=float)

    @cached_property
    def category_codes(self) -> dict[str, dict[str, float]]:
        """Per category feature: string -> its code (the index in `allowed`)."""
        return {
            f.name: {value: float(i) for i, value in enumerate(f.categories)}
            for f in self.features
            if f.categories is not None
        }

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """The float feature matrix, in contract order: numbers as they are (missing = NaN),
        categories as their code (unknown = UNKNOWN_CODE, missing = NaN)."""
        columns = []
        for feature in self.features:
            column = frame[feature.name]
            if feature.categories is not None:
                codes = self.category_codes[feature.name]
                mapped = column.map(lambda v, c=codes: np.nan if _missing(v) else c.get(str(v)))
                columns.append(mapped.fillna(UNKNOWN_CODE).where(column.notna(), np.nan))
            else:
                columns.append(column)
        if not columns:
            return np.empty((len(frame), 0))
        return np.column_stack([np.asarray(c, dtype=float) for c in columns])

    def encode_records(self, records: list[dict[str, Any]]) -> np.ndarray:
        """`encode` for validated request records (dicts of feature -> value or None)."""
        codes = self.category_codes
        rows = []
        for record in records:
            row = []
            for name in self.feature_names:
                value = record[name]
                if value is None:
                    row.append(np.nan)
                elif name in codes:
                    row.append(codes[name].get(value, UNKNOWN_CODE))
                else:
                    row.append(value)
            rows.append(row)
        return np.array(rows, dtype=float).reshape(len(records), len(self.features))

    def validate_frame(self, frame: pd.DataFrame, source: str, with_target: bool = True) -> None:
        """Raise ContractViolation listing every problem of a training or evaluation frame, with
        the (1-based, header excluded) row numbers of the first offending rows."""
        problems: list[str] = []
        expected = self.feature_names + ([self.target] if with_target else [])
        missing = [c for c in expected if c not in frame.columns]
        unknown = [c for c in frame.columns if c not in expected]
        if missing:
            problems.append(f"missing columns: {', '.join(missing)}")
        if unknown:
            problems.append(f"columns not in the contract: {', '.join(map(str, unknown))}")
        for feature in self.features:
            if feature.name not in frame.columns:
                continue
            column = frame[feature.name]
            nulls = column.isna()
            if nulls.any() and not feature.nullable:
                problems.append(
                    f"{feature.name}: {int(nulls.sum())} null value(s) in a non-nullable column"
                    f"{_rows(nulls)}"
                )
            values = column[~nulls]
            if feature.categories is not None:
                odd = ~nulls & ~column.astype(str).isin(feature.categories)
                if odd.any():
                    seen = sorted({str(v) for v in column[odd]})[:MAX_ROWS_QUOTED]
                    problems.append(
                        f"{feature.name}: {int(odd.sum())} value(s) not in the allowed categories "
                        f"{list(feature.categories)} (e.g. {seen}){_rows(odd)}"
                    )
                continue
            if values.dtype.kind not in "biuf":
                problems.append(
                    f"{feature.name}: expected numbers, found dtype {values.dtype} "
                    "(a string feature is `dtype: category` with its `allowed` values)"
                )
                continue
            # Masks over the whole column (NaN compares False), so row numbers are the file's.
            if feature.min is not None and (low := column < feature.min).any():
                problems.append(
                    f"{feature.name}: {int(low.sum())} value(s) below the minimum {feature.min}"
                    f"{_rows(low)}"
                )
            if feature.max is not None and (high := column > feature.max).any():
                problems.append(
                    f"{feature.name}: {int(high.sum())} value(s) above the maximum {feature.max}"
                    f"{_rows(high)}"
                )
            odd = ~nulls & ~column.isin(feature.allowed or ())
            if feature.allowed is not None and odd.any():
                problems.append(
                    f"{feature.name}: {int(odd.sum())} value(s) not in the allowed set "
                    f"{list(feature.allowed)}{_rows(odd)}"
                )
        if with_target and self.target in frame.columns:
            target = frame[self.target]
            if (nulls := target.isna()).any():
                problems.append(f"{self.target}: the target has null values{_rows(nulls)}")
            if self.classes and (odd := ~target.isin(list(self.classes)) & target.notna()).any():
                problems.append(
                    f"{self.target}: labels outside the classes {sorted(self.classes)}{_rows(odd)}"
                )
        if len(frame) == 0:
            problems.append("no rows")
        if problems:
            raise ContractViolation(source, problems)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _rows(mask: pd.Series) -> str:
    """' (rows 3, 17, ...)': the 1-based data row numbers (row 1 = the first row under a CSV's
    header) of the first MAX_ROWS_QUOTED offenders."""
    positions = np.flatnonzero(np.asarray(mask, dtype=bool))
    if not len(positions):
        return ""
    quoted = ", ".join(str(int(p) + 1) for p in positions[:MAX_ROWS_QUOTED])
    more = ", ..." if len(positions) > MAX_ROWS_QUOTED else ""
    return f" (row{'s' if len(positions) > 1 else ''} {quoted}{more})"


def _describe(error: ValidationError, raw: Any) -> list[str]:
    """One line per problem, naming the feature and the key: `features[2] (amount): unknown key
    'maximum'`."""
    lines = []
    for item in error.errors():
        loc = list(item["loc"])
        # Drop pydantic's union branch names (list[float] | list[str]) from the location.
        loc = [p for p in loc if p not in ("list[float]", "list[str]")]
        where = ""
        if len(loc) >= 2 and loc[0] == "features" and isinstance(loc[1], int):
            name = None
            if isinstance(raw, dict) and isinstance(raw.get("features"), list):
                entries = raw["features"]
                if loc[1] < len(entries) and isinstance(entries[loc[1]], dict):
                    name = entries[loc[1]].get("name")
            where = f"features[{loc[1]}]" + (f" ({name})" if name else "")
            loc = loc[2:]
        key = ".".join(str(p) for p in loc)
        if item["type"] == "extra_forbidden":
            lines.append(f"{where + ': ' if where else ''}unknown key {key!r}")
        else:
            target = ": ".join(p for p in (where, key) if p)
            lines.append(f"{target or '(top level)'}: {item['msg']}")
    # A union of list types reports each branch: keep each message once.
    return list(dict.fromkeys(lines))


def infer_contract(frame: pd.DataFrame, target: str, widen: float = 0.25) -> dict[str, Any]:
    """A starting contract for `frame` (as a dict to dump to YAML): numeric ranges widened by
    `widen` of their span on each side (floored at 0 for non-negative columns), string columns as
    categories listing the values seen, `nullable` where values are missing."""
    if target not in frame.columns:
        raise ContractError(
            f"no column {target!r} to use as the target: columns are {list(frame.columns)}"
        )
    features: list[dict[str, Any]] = []
    for name in frame.columns:
        if name == target:
            continue
        column = frame[name]
        spec: dict[str, Any] = {"name": str(name)}
        values = column.dropna()
        if values.dtype.kind in "biuf" and values.dtype.kind != "b":
            integer = values.dtype.kind in "iu"
            low, high = (float(values.min()), float(values.max())) if len(values) else (0.0, 0.0)
            margin = (high - low) * widen
            widened_low = low - margin if low < 0 else max(0.0, low - margin)
            spec["dtype"] = "int" if integer else "float"
            spec["nullable"] = bool(column.isna().any())
            spec["min"] = _round(widened_low, integer, down=True)
            spec["max"] = _round(high + margin, integer, down=False)
        else:
            spec["dtype"] = "category"
            spec["nullable"] = bool(column.isna().any())
            spec["allowed"] = sorted({str(v) for v in values})
        features.append(spec)
    labels = frame[target].dropna()
    out: dict[str, Any] = {"version": 1, "target": str(target)}
    if labels.dtype.kind in "iub" and labels.nunique() <= 20:
        out["target_dtype"] = "int"
        out["classes"] = {int(v): f"class_{int(v)}" for v in sorted(labels.unique())}
    else:
        out["target_dtype"] = "float"
    out["features"] = features
    return out


def _round(value: float, integer: bool, down: bool) -> float | int:
    if integer:
        return int(np.floor(value) if down else np.ceil(value))
    return float(f"{value:.6g}")
