"""The serving hot path: read, parse and validate a request body, apply guardrails, predict.

Built once per app from the contract and slo.yaml; per request it reads the body within its byte
and time limits, refuses what the JSON parser should never see (deep nesting, huge numbers,
NaN/Infinity), validates with prebuilt pydantic validators, and calls the pipeline once on one
NumPy array. Every refusal is an exception carrying its HTTP status and a reason that never
echoes the input.
"""

from __future__ import annotations

import asyncio
import json
import operator
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from ..artifact import LoadedModel
from ..data.contract import DataContract
from ..slo import SLO
from .guardrails import RangeGuard, Violation, abstain_mask
from .schemas import record_model

# Bounds checked on the raw bytes, before the JSON parser spends anything on them. A request is
# nested 3 deep at most ({"records": [{...}]}); no contract number needs more digits than this.
MAX_JSON_DEPTH = 16
MAX_NUMBER_DIGITS = 64
# An error body lists at most this many errors, each string cut to this many characters.
MAX_ERRORS = 50
MAX_ERROR_TEXT = 160
# Status of a request whose client went away before its body arrived (nginx's convention):
# neither a server error nor a response anyone reads.
CLIENT_CLOSED_REQUEST = 499

JSON_MEDIA_TYPE = "application/json"
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_LONG_NUMBER = re.compile(rb"[0-9]{%d}" % (MAX_NUMBER_DIGITS + 1))
_OPEN = np.frombuffer(b"[{", dtype=np.uint8)
_CLOSE = np.frombuffer(b"]}", dtype=np.uint8)

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


class BodyRefused(Exception):
    """A request refused before it reached the model: `status` and a `detail` safe to send."""

    status = 400

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


class PayloadTooLarge(BodyRefused):
    status = 413


class UnsupportedMediaType(BodyRefused):
    status = 415


class BodyReadTimeout(BodyRefused):
    status = 408


class ClientGone(BodyRefused):
    status = CLIENT_CLOSED_REQUEST


def is_json_media_type(content_type: str | None) -> bool:
    """application/json or any application/<x>+json, parameters (charset) ignored."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == JSON_MEDIA_TYPE or (
        media.startswith("application/") and media.endswith("+json")
    )


def safe_text(value: object, limit: int = MAX_ERROR_TEXT) -> str:
    """`value` as text that always encodes (lone surrogates escaped), cut to `limit` chars."""
    text = str(value).encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_details(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validation errors as sent: type, location and message, never the input; bounded."""
    details: list[dict[str, Any]] = []
    for error in errors:
        if len(details) == MAX_ERRORS:
            break
        details.append(
            {
                "type": safe_text(error.get("type", "invalid")),
                "loc": [
                    p if isinstance(p, int) else safe_text(p, 64) for p in error.get("loc", ())
                ],
                "msg": safe_text(error.get("msg", "")),
            }
        )
    return details


def invalid(error_type: str, message: str, loc: tuple[str | int, ...] = ("body",)) -> Exception:
    return RequestValidationError([{"type": error_type, "loc": loc, "msg": message}])


def _refuse_constant(token: str) -> Any:
    raise invalid("finite_number", f"{token} is not allowed: numbers must be finite")


def check_json_shape(body: bytes) -> None:
    """Refuse nesting deeper than MAX_JSON_DEPTH and numbers longer than MAX_NUMBER_DIGITS.

    A scan of the bytes with string contents blanked out (regular expressions and NumPy: C
    speed, no recursion), so the parser never meets a body that would cost it a deep recursion
    or a quadratic integer conversion.
    """
    if _LONG_NUMBER.search(body) is None and body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return  # the common case: no long digit run anywhere, too few brackets to nest deeply
    skeleton = _STRING.sub(b'""', body) if b'"' in body else body
    if _LONG_NUMBER.search(skeleton):
        raise invalid(
            "number_too_long", f"a number in the body has more than {MAX_NUMBER_DIGITS} digits"
        )
    if skeleton.count(b"[") + skeleton.count(b"{") <= MAX_JSON_DEPTH:
        return  # cannot be nested deeper than that
    raw = np.frombuffer(skeleton, dtype=np.uint8)
    steps = np.isin(raw, _OPEN).astype(np.int32) - np.isin(raw, _CLOSE).astype(np.int32)
    if int(np.cumsum(steps).max()) > MAX_JSON_DEPTH:
        raise invalid("too_deep", f"the body is nested more than {MAX_JSON_DEPTH} levels deep")


def parse_json_slowly(body: bytes) -> Any:
    """json.loads with the refusals sent to the client: not UTF-8, NaN/Infinity, invalid JSON."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise invalid("json_invalid", "the body is not UTF-8 encoded JSON") from error
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise invalid(
            "json_invalid",
            f"invalid JSON: {error.msg} at line {error.lineno} column {error.colno}",
        ) from error


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
        self._values = operator.attrgetter(*self.names)
        self.guard = RangeGuard(contract)
        self.classes = contract.classes
        self._codes = contract.category_codes

    def check_body_size(self, size: int) -> None:
        """413 for a body over slo.yaml's `guardrails.max_body_bytes` (declared or received)."""
        limit = self.slo.guardrails.max_body_bytes
        if size > limit:
            raise PayloadTooLarge(f"request body is {size} bytes; the limit is {limit}")

    async def read_body(self, request: Request) -> bytes:
        """`receive_body` for a Starlette request."""
        return await self.receive_body(
            request.headers.get("content-type"),
            request.headers.get("content-length"),
            request.receive,
        )

    async def receive_body(
        self, content_type: str | None, content_length: str | None, receive: Receive
    ) -> bytes:
        """The body, read from the ASGI `receive` as it streams: 415 unless JSON, 413 once it
        outgrows the limit (declared or not: chunked bodies are counted as they arrive), 408 when
        it does not arrive within `guardrails.body_read_timeout_seconds`, 499 when the client
        leaves."""
        if not is_json_media_type(content_type):
            raise UnsupportedMediaType(f"send the body as {JSON_MEDIA_TYPE}")
        if content_length and content_length.isdigit():
            self.check_body_size(int(content_length))  # refused before any of it is read
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.slo.guardrails.body_read_timeout_seconds):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise ClientGone("the client disconnected before sending the whole body")
                    chunk: bytes = message.get("body", b"")
                    size += len(chunk)
                    self.check_body_size(size)  # counted as it arrives: chunked bodies too
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError as error:
            raise BodyReadTimeout(
                "the request body did not arrive within "
                f"{self.slo.guardrails.body_read_timeout_seconds:g} s"
            ) from error
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def parse(self, body: bytes) -> tuple[np.ndarray, bool]:
        """Body -> (feature matrix in contract order, was it a batch); 422 or 413 on bad input."""
        limits = self.slo.guardrails
        prefix: tuple[str | int, ...] = ("body",)
        self.check_body_size(len(body))
        check_json_shape(body)
        try:
            payload = orjson.loads(body)  # refuses NaN/Infinity, invalid UTF-8, huge integers
        except orjson.JSONDecodeError:
            # The standard parser says why (and accepts what orjson alone refuses, such as an
            # integer over 64 bits or an escaped lone surrogate): the rare path, not the hot one.
            payload = parse_json_slowly(body)
        try:
            if isinstance(payload, dict) and "records" in payload:
                if set(payload) != {"records"}:
                    raise invalid("extra_forbidden", "only 'records' is allowed in a batch body")
                records = payload["records"]
                if isinstance(records, list) and len(records) > limits.max_batch_size:
                    raise PayloadTooLarge(
                        f"batch of {len(records)} records; the limit is {limits.max_batch_size}"
                    )
                if isinstance(records, list) and not records:
                    raise invalid("too_short", "records must not be empty", ("body", "records"))
                prefix = ("body", "records")
                rows = self._many.validate_python(records)
            else:
                prefix = ("body",)
                rows = [self._one.validate_python(payload)]
        except ValidationError as error:
            raise RequestValidationError(
                [{**e, "loc": (*prefix, *e["loc"])} for e in error.errors(include_url=False)]
            ) from error
        if self._codes:  # category features: their string -> code (unknown = UNKNOWN_CODE)
            features = self.contract.encode_records([row.__dict__ for row in rows])
        else:
            # One C call per row for the values in contract order; NumPy turns a None (a null in
            # a nullable column) into NaN for a float array.
            features = np.array([self._values(row) for row in rows], dtype=float)
            if features.ndim == 1:  # one feature: attrgetter gives a value, not a tuple
                features = features.reshape(-1, 1)
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
        try:
            if self.slo.model_task == "classification":
                return PredictionBatch(self._classify(model, features, flags))
            values = model.pipeline.predict(features)
            if not np.isfinite(values).all():
                raise ValueError("the model predicted a non-finite value")
        except (ValueError, FloatingPointError):
            if not violations:
                raise  # in-contract input the model cannot score: a bug, not the caller's fault
            # Flagged values so far outside the contract that the pipeline overflows: refused.
            return PredictionBatch(
                [],
                [
                    Violation(v.row, v.feature, v.reason, f"{v.message}; too far to be scored")
                    for v in violations
                ],
            )
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
