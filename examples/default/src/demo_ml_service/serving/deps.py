"""What a request handler needs, as FastAPI dependencies: the served model and the app's runtime.

The model lives on `app.state.model` (None until start-up loaded it); the predictor, telemetry and
settings built by the app factory live on `app.state.runtime`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from ..artifact import LoadedModel, ModelLoadError, load_model_dir
from ..config import Settings
from .predictor import Predictor
from .telemetry import Telemetry


@dataclass(frozen=True)
class Runtime:
    """Built once per app from settings, slo.yaml and the contract."""

    settings: Settings
    predictor: Predictor
    telemetry: Telemetry


# MLflow's own HTTP defaults (7 retries with exponential backoff, 120 s per request) keep a
# start-up against an unreachable registry silent for minutes, past any startup probe. The
# service retries loading itself (with backoff, in the background), so each attempt is short and
# logs its real cause. Variables already set in the environment win.
REGISTRY_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}


def load_model(settings: Settings) -> LoadedModel:
    """The model this service serves: an exported folder if configured, else the registry alias."""
    if settings.model_dir is not None:
        if not settings.model_dir.is_dir():
            raise ModelLoadError(f"SERVICE_MODEL_DIR {settings.model_dir} is not a folder (yet)")
        return load_model_dir(settings.model_dir, settings.inference_runtime)
    for name, value in REGISTRY_HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    try:
        from ..registry import Registry  # deferred: the registry client is only needed at start-up
    except ImportError as error:  # the baked image ships without the MLflow client
        raise ModelLoadError(
            "SERVICE_MODEL_DIR is not set and the MLflow client is not installed: "
            "serve an exported model folder, or build the image with --target registry"
        ) from error
    registry = Registry.from_settings(settings)
    return registry.load(settings.model_alias, settings.inference_runtime)


def current_model(request: Request) -> LoadedModel | None:
    model: LoadedModel | None = request.app.state.model
    return model


def require_model(request: Request) -> LoadedModel:
    model = current_model(request)
    if model is None:
        raise HTTPException(status_code=503, detail="model not loaded yet; see /readyz")
    return model


def runtime(request: Request) -> Runtime:
    value: Runtime = request.app.state.runtime
    return value


# Module level: with postponed annotations FastAPI resolves dependency types from module globals.
ServedModel = Annotated[LoadedModel, Depends(require_model)]
MaybeModel = Annotated[LoadedModel | None, Depends(current_model)]
AppRuntime = Annotated[Runtime, Depends(runtime)]
