"""Request and response schemas. The record schema is built from the data contract."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AllowInfNan, BaseModel, ConfigDict, Field, Strict, StrictStr, create_model

from ..data.contract import DataContract

# Strict: JSON numbers only ("1.5" or true are refused with a 422 rather than coerced); finite
# only (1e999 parses to infinity: refused like the NaN and Infinity tokens).
StrictNumber = Annotated[float, Strict(), AllowInfNan(False)]


def record_model(contract: DataContract) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for feature in contract.features:
        value: Any = StrictStr if feature.is_categorical else StrictNumber
        kind: Any = value | None if feature.nullable else value
        fields[feature.name] = (kind, Field(default=None) if feature.nullable else ...)
    return create_model("Record", __config__=ConfigDict(extra="forbid", frozen=True), **fields)


class ModelRef(BaseModel):
    name: str
    version: str
    alias: str


class Prediction(BaseModel):
    outcome: Literal["predicted", "abstain", "flagged"]
    label: int | None = None
    label_name: str | None = None
    confidence: float | None = None
    value: float | None = None
    flags: list[str] = Field(default_factory=list)


class PredictResponse(BaseModel):
    request_id: str
    model: ModelRef
    predictions: list[Prediction]


class VersionResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model_name: str | None
    model_version: str | None
    model_alias: str | None
    # "onnx" (ONNX Runtime) or "sklearn"; None before a model is loaded.
    inference_runtime: str | None = None
    template_version: str
    # The model's training snapshot (source, query, rows, sha256, created_at), when recorded.
    training_data: dict[str, Any] | None = None
    service: str


class ErrorMessage(BaseModel):
    """A refusal with one reason (408, 413, 415, 503, 500)."""

    detail: str


class FieldError(BaseModel):
    type: str
    loc: list[str | int]
    msg: str


class ValidationErrors(BaseModel):
    """422: one entry per offending field (at most 50), never the input itself."""

    detail: list[FieldError]


class Ready(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    status: Literal["ready"]
    model_version: str


class NotReady(BaseModel):
    status: str
