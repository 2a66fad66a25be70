"""The service's HTTP endpoints: /predict, /healthz, /readyz, /version; /metrics on its own port."""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from starlette.applications import Starlette

from .._template import PROJECT_SLUG, TEMPLATE_VERSION
from ..artifact import LoadedModel
from ..ops.metrics import PREDICT_ROUTE
from .deps import AppRuntime, MaybeModel, Runtime
from .predictor import (
    BodyRefused,
    ClientGone,
    PayloadTooLarge,
    Predictor,
    UnsupportedMediaType,
    error_details,
    rejection_errors,
)
from .schemas import (
    ErrorMessage,
    NotReady,
    PredictResponse,
    Ready,
    ValidationErrors,
    VersionResponse,
)
from .telemetry import Telemetry

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


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


Answer = tuple[int, bytes, str]  # status, JSON body, request id
JSON_HEADER = (b"content-type", b"application/json")
NOT_LOADED = orjson.dumps({"detail": "model not loaded yet; see /readyz"})


def json_body(content: Any) -> bytes:
    return orjson.dumps(content)


async def answer_predict(
    predictor: Predictor,
    telemetry: Telemetry,
    model: LoadedModel | None,
    request_id: str,
    content_type: str | None,
    content_length: str | None,
    receive: Receive,
) -> Answer:
    """POST /predict: read, parse, guard, predict; every refusal as (status, JSON, request id).

    Plain code on the ASGI messages: no Request object, no dependency resolution, no response
    class. A bug is not answered here: it propagates (500, logged with its traceback)."""
    if model is None:
        return 503, NOT_LOADED, request_id
    try:
        body = await predictor.receive_body(content_type, content_length, receive)
        with telemetry.span("validate") as span:
            features, batch = predictor.parse(body)
            span.set_attribute("slipway.records", len(features))
    except BodyRefused as error:
        if isinstance(error, ClientGone):
            # Nobody reads this response; the status is for the request metric and access log.
            return error.status, b"", request_id
        if isinstance(error, PayloadTooLarge):
            telemetry.record_rejections(["payload_too_large"])
        elif isinstance(error, UnsupportedMediaType):
            telemetry.record_rejections(["invalid_request"])
        return error.status, json_body({"detail": error.detail}), request_id
    except RequestValidationError as error:
        telemetry.record_rejections(["invalid_request"])
        return 422, json_body({"detail": error_details(error.errors())}), request_id
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
        detail = rejection_errors(result.rejections, batch)
        return 422, json_body({"detail": detail}), request_id
    telemetry.record_predictions(model, features, result.predictions)
    return (
        200,
        json_body(
            {
                "request_id": request_id,
                "model": {"name": model.name, "version": model.version, "alias": model.alias},
                "predictions": result.predictions,
            }
        ),
        request_id,
    )


class PredictEndpoint:
    """POST /predict as plain ASGI, ahead of FastAPI's router (the hot path: no routing, no
    dependency resolution, no Request/Response objects). Everything else goes to `app`.

    FastAPI still registers /predict (below) for its OpenAPI document and for any request this
    endpoint does not see; both answer through `answer_predict`.
    """

    def __init__(self, app: ASGIApp, predictor: Predictor, telemetry: Telemetry) -> None:
        self.app = app
        self.predictor = predictor
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PREDICT_ROUTE or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        content_type = content_length = given_id = None
        for key, value in scope["headers"]:
            if key == b"content-type":
                content_type = value.decode("latin-1")
            elif key == b"content-length":
                content_length = value.decode("latin-1")
            elif key == b"x-request-id":
                given_id = value.decode("latin-1")
        request_id = (
            scope.get("state", {}).get("request_id")  # set by the telemetry middleware
            or given_id
            or os.urandom(16).hex()
        )
        status, body, request_id = await answer_predict(
            self.predictor,
            self.telemetry,
            scope["app"].state.model,
            request_id,
            content_type,
            content_length,
            receive,
        )
        headers = [
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", request_id.encode()),
        ]
        if body:
            headers.append(JSON_HEADER)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def predict(request: Request, runtime: AppRuntime) -> Response:
    """The FastAPI route of /predict (documented in OpenAPI); PredictEndpoint answers first."""
    status, body, request_id = await answer_predict(
        runtime.predictor,
        runtime.telemetry,
        request.app.state.model,
        getattr(request.state, "request_id", None)
        or request.headers.get("x-request-id")
        or os.urandom(16).hex(),
        request.headers.get("content-type"),
        request.headers.get("content-length"),
        request.receive,
    )
    return Response(
        body,
        status_code=status,
        media_type="application/json" if body else None,
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
        inference_runtime=model.runtime if model else None,
        template_version=TEMPLATE_VERSION,
        service=PROJECT_SLUG,
        training_data=(model.training_data or None) if model else None,
    )


def metrics_app(app: FastAPI) -> Starlette:
    """The app served on SERVICE_METRICS_PORT: GET /metrics of `app` (its model and telemetry),
    nothing else. The API port does not serve /metrics."""

    async def metrics(_: Request) -> Response:
        runtime: Runtime = app.state.runtime
        # Text format 0.0.4: the per-prediction cost gauge and the cumulative cost counter share
        # a stem, which OpenMetrics would reject.
        return Response(
            runtime.telemetry.metrics_text(app.state.model), media_type=CONTENT_TYPE_PLAIN_0_0_4
        )

    scrape = Starlette()
    scrape.add_route("/metrics", metrics, methods=["GET"])
    return scrape


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
