"""FastAPI application factory: assembles settings, slo.yaml, the contract, the model and routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from .. import __doc__ as package_doc
from .._template import PROJECT_NAME, TEMPLATE_VERSION
from ..artifact import LoadedModel
from ..config import Settings
from ..data.contract import DataContract
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
from .routes import add_routes
from .telemetry import Telemetry, TelemetryMiddleware, configure_logging

log = logging.getLogger(__name__)


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
        if app.state.model is None:
            try:
                app.state.model = load_model(settings)
                log.info("model loaded", extra={"model_version": app.state.model.version})
            except Exception:
                # Stay alive (liveness) but not ready: the orchestrator keeps traffic away.
                log.exception("model could not be loaded; /readyz answers 503")
        yield
        telemetry.shutdown()  # flushes the spans still queued for export

    app = FastAPI(
        title=PROJECT_NAME,
        description=package_doc or "",
        version=TEMPLATE_VERSION,
        lifespan=lifespan,
    )
    app.state.model = model
    app.state.runtime = Runtime(settings, predictor, telemetry)
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

    add_routes(app, predictor)
    return app
