"""The serving hot path: parse and validate a request body, apply guardrails, predict.

Built once per app from the contract and slo.yaml; per request it only parses JSON, validates
with prebuilt pydantic validators, and calls the pipeline once on one NumPy array.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from ..artifact import LoadedModel
from ..data.contract import DataContract
from ..slo import SLO
from .guardrails import RangeGuard, Violation, abstain_mask
from .schemas import record_model


class PayloadTooLarge(Exception):
    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


@dataclass
class PredictionBatch:
    predictions: list[dict[str, Any]]
    rejections: list[Violation] = field(default_factory=list)


class Predictor:
    def __init__(self, contract: DataContract, slo: SLO) -> None:
        self.contract = contract
        self.slo = slo
        self.names = contract.feature_names
        # The one record model: validation here, the request schema in the OpenAPI document.
        self.record = record_model(contract)
        self._one = TypeAdapter(self.record)
        self._many = TypeAdapter(list[self.record])  # type: ignore[name-defined]
        self.guard = RangeGuard(contract)
        self.classes = contract.classes

    def check_body_size(self, size: int) -> None:
        """413 for a body over slo.yaml's `guardrails.max_body_bytes` (declared or received)."""
        limit = self.slo.guardrails.max_body_bytes
        if size > limit:
            raise PayloadTooLarge(f"request body is {size} bytes; the limit is {limit}")

    def parse(self, body: bytes) -> tuple[np.ndarray, bool]:
        """Body -> (feature matrix in contract order, was it a batch); 422 or 413 on bad input."""
        limits = self.slo.guardrails
        prefix: tuple[str | int, ...] = ("body",)
        self.check_body_size(len(body))
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise RequestValidationError(
                [
                    {
                        "type": "json_invalid",
                        "loc": ("body",),
                        "msg": f"invalid JSON: {error}",
                        "input": None,
                    }
                ]
            ) from error
        try:
            if isinstance(payload, dict) and "records" in payload:
                if set(payload) != {"records"}:
                    raise RequestValidationError(
                        [
                            {
                                "type": "extra_forbidden",
                                "loc": ("body",),
                                "msg": "only 'records' is allowed beside a batch",
                                "input": None,
                            }
                        ]
                    )
                records = payload["records"]
                if isinstance(records, list) and len(records) > limits.max_batch_size:
                    raise PayloadTooLarge(
                        f"batch of {len(records)} records; the limit is {limits.max_batch_size}"
                    )
                if isinstance(records, list) and not records:
                    raise RequestValidationError(
                        [
                            {
                                "type": "too_short",
                                "loc": ("body", "records"),
                                "msg": "records must not be empty",
                                "input": [],
                            }
                        ]
                    )
                prefix = ("body", "records")
                rows = self._many.validate_python(records)
            else:
                prefix = ("body",)
                rows = [self._one.validate_python(payload)]
        except ValidationError as error:
            raise RequestValidationError(
                [{**e, "loc": (*prefix, *e["loc"])} for e in error.errors(include_url=False)]
            ) from error
        features = np.array(
            [[np.nan if (v := getattr(row, n)) is None else v for n in self.names] for row in rows],
            dtype=float,
        )
        return features, prefix != ("body",)

    def predict(self, model: LoadedModel, features: np.ndarray) -> PredictionBatch:
        violations = self.guard.check(features)
        flags: dict[int, list[str]] = {}
        if violations:
            if self.slo.guardrails.out_of_range == "reject":
                return PredictionBatch([], violations)
            for violation in violations:
                flags.setdefault(violation.row, []).append(
                    f"{violation.feature}: {violation.message}"
                )
        if self.slo.model_task == "classification":
            return PredictionBatch(self._classify(model, features, flags))
        values = model.pipeline.predict(features)
        return PredictionBatch(
            [
                {
                    "outcome": "flagged" if i in flags else "predicted",
                    "value": float(value),
                    "flags": flags.get(i, []),
                }
                for i, value in enumerate(values)
            ]
        )

    def _classify(
        self, model: LoadedModel, features: np.ndarray, flags: dict[int, list[str]]
    ) -> list[dict[str, Any]]:
        probabilities = model.pipeline.predict_proba(features)
        labels = model.pipeline.classes_[probabilities.argmax(axis=1)]
        confidence = probabilities.max(axis=1)
        abstain = abstain_mask(probabilities, self.slo.guardrails.min_confidence)
        predictions = []
        for i in range(len(features)):
            if abstain[i]:
                predictions.append(
                    {
                        "outcome": "abstain",
                        "label": None,
                        "label_name": None,
                        "confidence": float(confidence[i]),
                        "flags": flags.get(i, []),
                    }
                )
                continue
            label = int(labels[i])
            predictions.append(
                {
                    "outcome": "flagged" if i in flags else "predicted",
                    "label": label,
                    "label_name": self.classes.get(label),
                    "confidence": float(confidence[i]),
                    "flags": flags.get(i, []),
                }
            )
        return predictions


def rejection_errors(violations: list[Violation], batch: bool) -> list[dict[str, Any]]:
    """Guardrail refusals in FastAPI's 422 error shape, one per offending field."""
    prefix: tuple[str | int, ...] = ("body", "records") if batch else ("body",)
    return [
        {
            "type": v.reason,
            "loc": [*prefix, *((v.row,) if batch else ()), v.feature],
            "msg": v.message,
        }
        for v in violations
    ]
