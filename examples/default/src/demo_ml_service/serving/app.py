"""FastAPI application factory: assembles settings, slo.yaml, the contract, the model and routes."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from .. import __doc__ as package_doc
from .._template import PROJECT_NAME, TEMPLATE_VERSION
from ..artifact import LoadedModel, ModelLoadError
from ..config import Settings
from ..data.contract import DataContract
from ..errors import RegistryError
from ..ops.metrics import PREDICT_ROUTE
from ..slo import load_slo
from .deps import Runtime, load_model
from .predictor import (
    BodyRefused,
    ClientGone,
    PayloadTooLarge,
    Predictor,
    UnsupportedMediaType,
    error_details,
)
from .routes import PredictEndpoint, add_routes, metrics_app
from .telemetry import Telemetry, TelemetryMiddleware, configure_logging

log = logging.getLogger(__name__)


# FastAPI's own OpenTelemetry instrumentation (newer FastAPI releases) stays off: the telemetry
# middleware is the service's one tracer, so no request gets two server spans, and FastAPI
# skips its per-request "is a provider configured?" check.
NATIVE_TELEMETRY_OFF: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}}
    if "telemetry" in inspect.signature(FastAPI).parameters
    else {}
)


async def try_loading(app: FastAPI, settings: Settings, retry_in: float) -> bool:
    """One attempt to load the served model (in a thread: the event loop keeps answering)."""
    try:
        model = await asyncio.to_thread(load_model, settings)
    except (RegistryError, ModelLoadError, OSError, ValueError, KeyError) as error:
        # Expected causes (not found, cannot reach, a missing or corrupt folder): one line each.
        log.error(
            "model could not be loaded: %s; /readyz answers 503 (retry in %g s)",
            error,
            retry_in,
            extra={"error_type": type(error).__name__},
        )
        return False
    except Exception:
        log.exception("model could not be loaded; /readyz answers 503 (retry in %g s)", retry_in)
        return False
    app.state.model = model
    log.info("model loaded", extra={"model_version": model.version})
    return True


async def keep_loading(app: FastAPI, settings: Settings) -> None:
    """Retry the load with capped exponential backoff until it succeeds."""
    delay = settings.model_load_retry_seconds
    while True:
        await asyncio.sleep(delay)
        delay = min(delay * 2, settings.model_load_retry_max_seconds)
        if await try_loading(app, settings, delay):
            return


def create_app(
    settings: Settings | None = None,
    model: LoadedModel | None = None,
    telemetry: Telemetry | None = None,
) -> FastAPI:
    """Build the service. Pass `model` to inject one (tests); otherwise it loads at start-up.
    Pass `telemetry` to choose its span exporter or clock (tests)."""
    settings = settings or Settings()
    slo = load_slo(settings.slo_path)
    predictor = Predictor(DataContract.load(settings.contract_path), slo)
    telemetry = telemetry or Telemetry(settings, slo)
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        retrying: asyncio.Task[None] | None = None
        if app.state.model is None and not await try_loading(
            app, settings, settings.model_load_retry_seconds
        ):
            # Alive (liveness) but not ready until a load succeeds: traffic stays away.
            retrying = asyncio.create_task(keep_loading(app, settings))
        yield
        if retrying is not None:
            retrying.cancel()
        telemetry.shutdown()  # flushes the spans still queued for export

    app = FastAPI(
        title=PROJECT_NAME,
        description=package_doc or "",
        version=TEMPLATE_VERSION,
        lifespan=lifespan,
        **NATIVE_TELEMETRY_OFF,
    )
    app.state.model = model
    app.state.runtime = Runtime(settings, predictor, telemetry)
    # Added first = innermost: the telemetry middleware wraps the /predict fast path too.
    app.add_middleware(PredictEndpoint, predictor=predictor, telemetry=telemetry)
    if telemetry.enabled:
        app.add_middleware(TelemetryMiddleware, telemetry=telemetry)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> Response:
        if request.url.path == PREDICT_ROUTE:
            telemetry.record_rejections(["invalid_request"])
        # Built here, not by FastAPI's handler: that one echoes the input (feature values, or
        # a lone surrogate its encoder then fails on).
        return JSONResponse(status_code=422, content={"detail": error_details(error.errors())})

    @app.exception_handler(BodyRefused)
    async def refused(_: Request, error: BodyRefused) -> Response:
        if isinstance(error, ClientGone):
            # Nobody reads this response; the status is for the request metric and access log.
            return Response(status_code=error.status)
        if isinstance(error, PayloadTooLarge):
            telemetry.record_rejections(["payload_too_large"])
        elif isinstance(error, UnsupportedMediaType):
            telemetry.record_rejections(["invalid_request"])
        return JSONResponse(status_code=error.status, content={"detail": error.detail})

    @app.exception_handler(Exception)
    async def failed(_: Request, error: Exception) -> Response:
        # A bug, not a refusal: JSON like every other answer; the traceback goes to the log.
        return JSONResponse(status_code=500, content={"detail": "internal server error"})

    add_routes(app, predictor)
    app.state.metrics_app = metrics_app(app)  # served on settings.metrics_port (`serve`)
    return app
