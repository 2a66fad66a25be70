"""The service's HTTP endpoints: /predict, /healthz, /readyz, /version, /metrics."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from .._template import PROJECT_SLUG, TEMPLATE_VERSION
from ..ops.metrics import PREDICT_ROUTE
from .deps import AppRuntime, MaybeModel, ServedModel
from .predictor import Predictor, rejection_errors
from .schemas import (
    ErrorMessage,
    NotReady,
    PredictResponse,
    Ready,
    ValidationErrors,
    VersionResponse,
)

log = logging.getLogger(__name__)


def record_schema(predictor: Predictor) -> dict[str, Any]:
    """JSON schema of one record: the contract's types, and under the `reject` policy its ranges
    and allowed values (under `flag` those are accepted and flagged, so not constraints)."""
    schema = predictor.record.model_json_schema()
    schema["additionalProperties"] = False
    if predictor.slo.guardrails.out_of_range != "reject":
        return schema
    for feature in predictor.contract.features:
        prop = schema["properties"][feature.name]
        kind = "string" if feature.is_categorical else "number"
        number = next((s for s in prop.get("anyOf", [prop]) if s.get("type") == kind), prop)
        if feature.allowed is not None:
            number["enum"] = list(feature.categories or feature.allowed)
        if feature.min is not None:
            number["minimum"] = feature.min
        if feature.max is not None:
            number["maximum"] = feature.max
    return schema


def predict_request_body(predictor: Predictor) -> dict[str, Any]:
    """OpenAPI request body of /predict: one record, or {"records": [...]}, from the contract."""
    record = record_schema(predictor)
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        record,
                        {
                            "type": "object",
                            "properties": {
                                "records": {
                                    "type": "array",
                                    "items": record,
                                    "minItems": 1,
                                    "maxItems": predictor.slo.guardrails.max_batch_size,
                                }
                            },
                            "required": ["records"],
                            "additionalProperties": False,
                        },
                    ]
                }
            }
        },
    }


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses of the refusals: every status the endpoint really returns, as JSON."""
    described = {
        408: (ErrorMessage, "the body did not arrive within guardrails.body_read_timeout_seconds"),
        413: (ErrorMessage, "body over guardrails.max_body_bytes, or batch over max_batch_size"),
        415: (ErrorMessage, "the body is not application/json"),
        422: (ValidationErrors, "invalid body, or refused by a guardrail: one reason per field"),
        503: (ErrorMessage, "the model is not loaded yet (see /readyz)"),
    }
    return {
        status: {"model": described[status][0], "description": described[status][1]}
        for status in statuses
    }


async def predict(request: Request, model: ServedModel, runtime: AppRuntime) -> JSONResponse:
    predictor, telemetry = runtime.predictor, runtime.telemetry
    request_id = (
        getattr(request.state, "request_id", None)  # set by the telemetry middleware
        or request.headers.get("x-request-id")
        or uuid.uuid4().hex
    )
    body = await predictor.read_body(request)  # 415, 413, 408 or 499 before it is parsed
    with telemetry.span("validate") as span:
        features, batch = predictor.parse(body)
        span.set_attribute("slipway.records", len(features))
    # The model name/version/alias are attributes of the request span (telemetry middleware).
    with telemetry.span("predict") as span:
        result = predictor.predict(model, features)
        if result.rejections:
            span.set_attribute("slipway.guardrail.rejections", len(result.rejections))
    if result.rejections:
        reasons = sorted({v.reason for v in result.rejections})
        telemetry.record_rejections(reasons)
        log.warning(
            "guardrail rejection",
            extra={"reasons": reasons, "features": sorted({v.feature for v in result.rejections})},
        )
        return JSONResponse(
            status_code=422,
            content={"detail": rejection_errors(result.rejections, batch)},
            headers={"x-request-id": request_id},
        )
    telemetry.record_predictions(model, features, result.predictions)
    return JSONResponse(
        {
            "request_id": request_id,
            "model": {"name": model.name, "version": model.version, "alias": model.alias},
            "predictions": result.predictions,
        },
        headers={"x-request-id": request_id},
    )


async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def readyz(model: MaybeModel) -> JSONResponse:
    if model is None:
        return JSONResponse(status_code=503, content={"status": "model not loaded"})
    return JSONResponse({"status": "ready", "model_version": model.version})


async def version(model: MaybeModel) -> VersionResponse:
    return VersionResponse(
        model_name=model.name if model else None,
        model_version=model.version if model else None,
        model_alias=model.alias if model else None,
        template_version=TEMPLATE_VERSION,
        service=PROJECT_SLUG,
        training_data=(model.training_data or None) if model else None,
    )


async def metrics(model: MaybeModel, runtime: AppRuntime) -> Response:
    # Text format 0.0.4: the per-prediction cost gauge and the cumulative cost counter share
    # a stem, which OpenMetrics would reject.
    return Response(runtime.telemetry.metrics_text(model), media_type=CONTENT_TYPE_PLAIN_0_0_4)


def add_routes(app: FastAPI, predictor: Predictor) -> None:
    """Register the endpoints on `app` (the request schema of /predict comes from the contract)."""
    app.add_api_route(
        PREDICT_ROUTE,
        predict,
        methods=["POST"],
        response_model=PredictResponse,
        responses=error_responses(408, 413, 415, 422, 503),
        openapi_extra={"requestBody": predict_request_body(predictor)},
    )
    app.add_api_route("/healthz", healthz, methods=["GET"])
    app.add_api_route(
        "/readyz",
        readyz,
        methods=["GET"],
        response_model=Ready,
        responses={503: {"model": NotReady, "description": "the model is not loaded (yet)"}},
    )
    app.add_api_route("/version", version, methods=["GET"], response_model=VersionResponse)
    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
