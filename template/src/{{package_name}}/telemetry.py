"""Telemetry of the service: OpenTelemetry traces, Prometheus metrics and JSON logs.

One `Telemetry` per app: its own TracerProvider (not the global one) and its own
CollectorRegistry (not prometheus-client's default), so tests can build several apps in one
process. Work done per request is constant and small (a span, a few counter increments, one
log line, a copy of the feature rows into the drift window); drift PSI, the cost estimate and the
model gauges are computed when /metrics is scraped.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import sys
import threading
import time
from collections import Counter as Tally
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from contextvars import ContextVar
from importlib.metadata import PackageNotFoundError, version
from typing import IO, Any, cast

import numpy as np
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ._template import PROJECT_SLUG, TEMPLATE_VERSION
from .config import Settings
from .drift import ReferenceProfile
from .ops import metrics as names
from .serving.model_loader import LoadedModel
from .slo import SLO

log = logging.getLogger(__name__)

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
MODEL_VERSION: ContextVar[str | None] = ContextVar("model_version", default=None)

# Probes and scrapes are counted in the metrics but produce neither spans nor access log lines.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
# Guardrail rejection reasons: the guardrails' own plus request-level refusals.
REJECTION_REASONS = ("out_of_range", "not_allowed", "payload_too_large", "invalid_request")
# Throughput behind the per-prediction cost estimate is measured over this many seconds.
COST_WINDOW_SECONDS = 300
# PSI on a handful of rows is noise: exported once the window holds this many (or is full).
DRIFT_MIN_SAMPLES = 100

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# ---- traces ------------------------------------------------------------------------------------


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


def build_tracer_provider(
    settings: Settings, exporter: SpanExporter | None = None
) -> TracerProvider:
    """A provider exporting to `exporter` (tests), else to settings.traces_exporter.

    `otlp` is OTLP over HTTP/protobuf; the exporter reads the standard variables itself
    (OTEL_EXPORTER_OTLP_ENDPOINT / _TRACES_ENDPOINT, _HEADERS, _TIMEOUT, ...). Sampling follows
    OTEL_TRACES_SAMPLER(_ARG) when set, else settings.trace_sample_ratio (parent-based);
    OTEL_SDK_DISABLED=true turns tracing off.
    """
    sampler = None  # None: the SDK reads OTEL_TRACES_SAMPLER
    if not os.environ.get("OTEL_TRACES_SAMPLER"):
        sampler = ParentBased(TraceIdRatioBased(settings.trace_sample_ratio))
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


def model_attributes(model: LoadedModel) -> dict[str, str]:
    return {"model.name": model.name, "model.version": model.version, "model.alias": model.alias}


# ---- JSON logs ---------------------------------------------------------------------------------

# Standard LogRecord attributes, and uvicorn's ANSI-coloured duplicate of its message.
_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, trace_id, span_id, trace_sampled,
    request_id, model_version, then any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        context = trace.get_current_span().get_span_context()
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "trace_id": format(context.trace_id, "032x") if context.is_valid else None,
            "span_id": format(context.span_id, "016x") if context.is_valid else None,
            # Every request has a trace id; only sampled ones are exported to the trace backend.
            "trace_sampled": context.trace_flags.sampled if context.is_valid else None,
            "request_id": REQUEST_ID.get(),
            "model_version": MODEL_VERSION.get(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the current sys.stderr (test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr from the root logger (uvicorn's loggers propagate to it). Idempotent."""
    root = logging.getLogger()
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(level.upper())
    # The JSON lines carry none of these, and collecting them is most of what a log call costs:
    # the caller's file and line (a stack walk), thread, process and asyncio task names.
    logging._srcfile = None  # the knob logging documents in its source for this
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    if hasattr(logging, "logAsyncioTasks"):  # Python 3.12+
        logging.logAsyncioTasks = False


# ---- drift and cost, computed at scrape time ---------------------------------------------------


class DriftWindow:
    """The last `size` feature rows the service predicted on, in a ring buffer."""

    def __init__(self, reference: ReferenceProfile, size: int) -> None:
        self.reference = reference
        self.size = size
        self._rows = np.empty((size, len(reference.features)), dtype=float)
        self._count = 0
        self._next = 0
        self._seen = 0
        self._cached: tuple[int, dict[str, float]] = (-1, {})
        self._lock = threading.Lock()

    def observe(self, rows: np.ndarray) -> None:
        n = len(rows)
        with self._lock:
            if n >= self.size:
                self._rows[:] = rows[-self.size :]
                self._next = 0
            else:
                first = min(n, self.size - self._next)
                self._rows[self._next : self._next + first] = rows[:first]
                self._rows[: n - first] = rows[first:]
                self._next = (self._next + n) % self.size
            self._count = min(self._count + n, self.size)
            self._seen += n

    def psi(self) -> dict[str, float]:
        """PSI per feature over the window (empty until enough rows); cached until new rows."""
        with self._lock:
            if self._cached[0] == self._seen:
                return self._cached[1]
            seen, count = self._seen, self._count
            rows = self._rows[:count].copy()
        result = self.reference.psi(rows) if count >= min(DRIFT_MIN_SAMPLES, self.size) else {}
        self._cached = (seen, result)
        return result


class CostMeter:
    """Instance cost accrued since start, and the cost of one prediction at recent throughput.

    cost per prediction = hourly price / 3600 x window seconds / predictions in the window
    """

    def __init__(
        self,
        hourly_price_usd: float,
        clock: Callable[[], float] = time.monotonic,
        window_seconds: int = COST_WINDOW_SECONDS,
    ) -> None:
        self.per_second = hourly_price_usd / 3600.0
        self.clock = clock
        self.window = window_seconds
        self.started = clock()
        self._seconds: deque[list[int]] = deque()  # [whole second, predictions in it]
        self._lock = threading.Lock()

    def add(self, predictions: int) -> None:
        second = int(self.clock())
        with self._lock:
            if self._seconds and self._seconds[-1][0] == second:
                self._seconds[-1][1] += predictions
            else:
                self._seconds.append([second, predictions])
                while len(self._seconds) > self.window + 2:
                    self._seconds.popleft()

    def snapshot(self) -> tuple[float, float]:
        """(cumulative cost in USD, estimated USD per prediction; NaN without predictions)."""
        now = self.clock()
        elapsed = max(now - self.started, 0.0)
        window = min(float(self.window), elapsed)
        oldest = math.floor(now - window)
        with self._lock:
            while self._seconds and self._seconds[0][0] < oldest:
                self._seconds.popleft()
            predictions = sum(count for _, count in self._seconds)
        per_prediction = self.per_second * window / predictions if predictions else math.nan
        return self.per_second * elapsed, per_prediction


class _ScrapeTimeCollector:
    """Model info/readiness, drift PSI and cost: read from live state at each scrape."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry

    def collect(self) -> Iterator[Metric]:
        t = self.telemetry
        model = t.model_getter()
        info = GaugeMetricFamily(
            names.MODEL_INFO,
            "The model this replica serves (value 1).",
            labels=["model_name", "model_version", "model_alias", "template_version"],
        )
        if model is not None:
            info.add_metric([model.name, model.version, model.alias, TEMPLATE_VERSION], 1.0)
        yield info
        yield GaugeMetricFamily(
            names.MODEL_READY,
            "1 when the model is loaded (/readyz 200).",
            value=float(model is not None),
        )
        drift = GaugeMetricFamily(
            names.FEATURE_DRIFT_PSI,
            "Population stability index of each feature: recent inputs vs training data.",
            labels=["feature"],
        )
        window = t.drift_window(model)
        if window is not None:
            for feature, value in window.psi().items():
                drift.add_metric([feature], value)
        yield drift
        total, per_prediction = t.cost.snapshot()
        yield GaugeMetricFamily(
            names.PREDICTION_COST,
            "Estimated USD cost of one prediction: instance price / recent throughput.",
            value=per_prediction,
        )
        # CounterMetricFamily appends `_total` to the family name.
        yield CounterMetricFamily(
            names.PREDICTION_COST,
            "Instance cost accrued since start (USD).",
            value=total,
        )


# ---- the per-app facade ------------------------------------------------------------------------


class _NoSpan:
    """Stands in for a child span of a request that is not traced (costs nothing)."""

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def set_attribute(self, key: str, value: Any) -> None:
        return None


_NO_SPAN = _NoSpan()


class Telemetry:
    def __init__(
        self,
        settings: Settings,
        slo: SLO,
        model_getter: Callable[[], LoadedModel | None] = lambda: None,
        *,
        span_exporter: SpanExporter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enabled = settings.telemetry_enabled
        self.model_getter = model_getter
        self.window_size = slo.drift.window_size
        # Access log lines: errors, requests slower than the latency objective and traced
        # requests; every request with SERVICE_ACCESS_LOG_ALL=true.
        self.log_every_request = settings.access_log_all
        self.slow_seconds = slo.objectives.latency_p95_ms / 1000.0
        self.routes: frozenset[str] = frozenset()
        self.provider: TracerProvider | None = None
        self.tracer: trace.Tracer = trace.NoOpTracer()
        if self.enabled:
            self.provider = build_tracer_provider(settings, span_exporter)
            self.tracer = self.provider.get_tracer(__name__)
        self.registry = CollectorRegistry(auto_describe=False)
        self.duration = Histogram(
            names.REQUEST_DURATION,
            "HTTP request duration in seconds (buckets around the slo.yaml latency objective).",
            ["route", "method"],
            buckets=names.latency_buckets(slo.objectives.latency_p95_ms),
            registry=self.registry,
        )
        self.requests = Counter(
            names.REQUESTS.removesuffix("_total"),
            "HTTP requests by route, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.predictions = Counter(
            names.PREDICTIONS.removesuffix("_total"),
            "Predictions (records) by outcome and label.",
            ["outcome", "label"],
            registry=self.registry,
        )
        self.rejections = Counter(
            names.GUARDRAIL_REJECTIONS.removesuffix("_total"),
            "Requests refused by a guardrail, by reason.",
            ["reason"],
            registry=self.registry,
        )
        for reason in REJECTION_REASONS:  # exported at 0 from the start, not absent
            self.rejections.labels(reason)
        self.cost = CostMeter(slo.objectives.cost.instance_hourly_price_usd, clock)
        self._drift: DriftWindow | None = None
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._prediction_children: dict[tuple[str, Any], Any] = {}
        self.registry.register(_ScrapeTimeCollector(self))

    # -- hot path helpers --
    def record_predictions(
        self, model: LoadedModel, rows: np.ndarray, predictions: list[dict[str, Any]]
    ) -> None:
        if not self.enabled:
            return
        if len(predictions) == 1:  # the common case, without building a tally
            p = predictions[0]
            self._prediction_child(p["outcome"], p.get("label_name") or p.get("label")).inc()
        else:
            tally = Tally(
                (p["outcome"], p.get("label_name") or p.get("label")) for p in predictions
            )
            for (outcome, label), count in tally.items():
                self._prediction_child(outcome, label).inc(count)
        self.cost.add(len(predictions))
        window = self.drift_window(model)
        if window is not None:
            window.observe(rows)

    def _prediction_child(self, outcome: str, label: Any) -> Any:
        child = self._prediction_children.get((outcome, label))
        if child is None:
            child = self.predictions.labels(outcome, "" if label is None else str(label))
            self._prediction_children[(outcome, label)] = child
        return child

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        # Label children cached: labels() validates and locks on every call.
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.duration.labels(route, method),
                self.requests.labels(route, method, str(status)),
            )
            self._request_children[key] = children
        children[0].observe(seconds)
        children[1].inc()

    def record_rejections(self, reasons: Iterable[str]) -> None:
        if not self.enabled:
            return
        for reason in set(reasons):
            self.rejections.labels(reason).inc()

    def span(self, name: str) -> Any:
        """A child span of the current request span, or a no-op when the request is not traced."""
        if trace.get_current_span().is_recording():
            return self.tracer.start_as_current_span(name)
        return _NO_SPAN

    def drift_window(self, model: LoadedModel | None) -> DriftWindow | None:
        """The window for this model's training reference (a new model starts a new window)."""
        if model is None or model.reference is None:
            return None
        if self._drift is None or self._drift.reference is not model.reference:
            self._drift = DriftWindow(model.reference, self.window_size)
        return self._drift

    def metrics_text(self) -> bytes:
        return generate_latest(self.registry)

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()


class TelemetryMiddleware:
    """ASGI middleware: server span, request id, duration/count metrics, one access log line."""

    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t = self.telemetry
        method: str = scope["method"]
        route = scope["path"] if scope["path"] in t.routes else "other"
        request_id = (
            next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), None)
            or os.urandom(16).hex()
        )
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                if not any(k == b"x-request-id" for k, _ in headers):
                    headers.append((b"x-request-id", request_id.encode("latin-1")))
                    message["headers"] = headers
            await send(message)

        model = t.model_getter()
        token = REQUEST_ID.set(request_id)
        version_token = MODEL_VERSION.set(model.version if model is not None else None)
        start = time.perf_counter()
        try:
            if route in QUIET_ROUTES:
                await self.app(scope, receive, send_with_status)
                return
            # Few attributes on purpose: each one costs on every request.
            with t.tracer.start_as_current_span(f"{method} {route}", kind=SpanKind.SERVER) as span:
                if span.is_recording():  # attributes only for the requests that are traced
                    span.set_attributes(
                        {
                            "http.request.method": method,
                            "http.route": route,
                            "slipway.request_id": request_id,
                            **(model_attributes(model) if model is not None else {}),
                        }
                    )
                    if route == "other":
                        span.set_attribute("url.path", scope["path"])
                try:
                    await self.app(scope, receive, send_with_status)
                finally:
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                    elapsed = time.perf_counter() - start
                    if (
                        t.log_every_request
                        or status >= 400
                        or elapsed > t.slow_seconds
                        or (span.is_recording())
                    ):
                        log.info(
                            "%s %s %s",
                            method,
                            scope["path"],
                            status,
                            extra={
                                "route": route,
                                "status": status,
                                "duration_ms": round(elapsed * 1000, 3),
                            },
                        )
        finally:
            t.observe_request(route, method, status, time.perf_counter() - start)
            MODEL_VERSION.reset(version_token)
            REQUEST_ID.reset(token)
