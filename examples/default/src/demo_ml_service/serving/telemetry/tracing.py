"""Traces: the service's OpenTelemetry resource and TracerProvider, and a no-op child span."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import IO, Any, cast

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from ..._template import PROJECT_SLUG, TEMPLATE_VERSION
from ...artifact import LoadedModel
from ...config import Settings


def service_version() -> str:
    try:
        return version(PROJECT_SLUG)
    except PackageNotFoundError:
        return "0.0.0"


def build_resource(settings: Settings) -> Resource:
    """service.name (OTEL_SERVICE_NAME wins), service.version, deployment.environment.

    Resource.create also merges OTEL_RESOURCE_ATTRIBUTES; the attributes given here win over it.
    """
    return Resource.create(
        {
            "service.name": os.environ.get("OTEL_SERVICE_NAME") or PROJECT_SLUG,
            "service.version": service_version(),
            "deployment.environment": settings.environment,
            "deployment.environment.name": settings.environment,
            "slipway.template.version": TEMPLATE_VERSION,
        }
    )


def sample_ratio(settings: Settings) -> float | None:
    """The share of requests to trace, decided by the service before any span work; None when
    OTEL_TRACES_SAMPLER is set (then the SDK's sampler decides, for every request)."""
    return None if os.environ.get("OTEL_TRACES_SAMPLER") else settings.trace_sample_ratio


def build_tracer_provider(
    settings: Settings, exporter: SpanExporter | None = None, *, presampled: bool = False
) -> TracerProvider:
    """A provider exporting to `exporter` (tests), else to settings.traces_exporter.

    `otlp` is OTLP over HTTP/protobuf; the exporter reads the standard variables itself
    (OTEL_EXPORTER_OTLP_ENDPOINT / _TRACES_ENDPOINT, _HEADERS, _TIMEOUT, ...). Sampling follows
    OTEL_TRACES_SAMPLER(_ARG) when set, else settings.trace_sample_ratio (parent-based), unless
    `presampled`: the caller has already drawn the ratio (`sample_ratio`), so every span it
    starts is recorded. OTEL_SDK_DISABLED=true turns tracing off.
    """
    sampler = None  # None: the SDK reads OTEL_TRACES_SAMPLER
    if sample_ratio(settings) is not None:
        ratio = 1.0 if presampled else settings.trace_sample_ratio
        sampler = ParentBased(TraceIdRatioBased(ratio))
    provider = TracerProvider(resource=build_resource(settings), sampler=sampler)
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif settings.traces_exporter == "console":
        console = ConsoleSpanExporter(
            out=cast(IO[str], _CurrentStdout()),
            formatter=lambda span: span.to_json(indent=None) + "\n",
        )
        provider.add_span_processor(BatchSpanProcessor(console))
    elif settings.traces_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


class _CurrentStdout(io.TextIOBase):
    """sys.stdout as it is at write time (the exporter's thread outlives swapped streams)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def record_error(span: Span, error: BaseException) -> None:
    """Mark `span` failed with the exception's type only, never its message or traceback (they
    can hold request data: a validation error's message carries the offending record)."""
    kind = type(error).__qualname__
    span.set_status(Status(StatusCode.ERROR, kind))
    span.add_event("exception", {"exception.type": kind, "exception.message": "(scrubbed)"})


@contextmanager
def scrubbed_span(tracer: Tracer, name: str, kind: SpanKind = SpanKind.INTERNAL) -> Iterator[Span]:
    """tracer.start_as_current_span, with exceptions recorded by `record_error`."""
    with tracer.start_as_current_span(
        name, kind=kind, record_exception=False, set_status_on_exception=False
    ) as span:
        try:
            yield span
        except Exception as error:
            record_error(span, error)
            raise


def model_attributes(model: LoadedModel) -> dict[str, str]:
    return {"model.name": model.name, "model.version": model.version, "model.alias": model.alias}


class _NoSpan:
    """Stands in for a child span of a request that is not traced (costs nothing)."""

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def set_attribute(self, key: str, value: Any) -> None:
        return None


NO_SPAN = _NoSpan()
