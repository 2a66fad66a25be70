"""`Telemetry`: one per app, the only telemetry object the request path talks to.

Its own TracerProvider (not the global one) and its own CollectorRegistry (not
prometheus-client's default), so tests can build several apps in one process. Work done per
request is constant and small (a span, a few counter increments, one log line, a copy of the
feature rows into the drift window); drift PSI, the cost estimate and the model gauges are
computed when /metrics is scraped (collector.py).
"""

from __future__ import annotations

import random
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from ...artifact import LoadedModel
from ...config import Settings
from ...ops import metrics as names
from ...slo import SLO
from .collector import PublishedGauges, ScrapeTimeCollector
from .cost import CostMeter
from .drift_window import DriftWindow
from .tracing import NO_SPAN, build_tracer_provider, sample_ratio, scrubbed_span

# Guardrail rejection reasons: the guardrails' own plus request-level refusals.
REJECTION_REASONS = ("out_of_range", "not_allowed", "payload_too_large", "invalid_request")


class Telemetry:
    def __init__(
        self,
        settings: Settings,
        slo: SLO,
        *,
        span_exporter: SpanExporter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enabled = settings.telemetry_enabled
        self.window_size = slo.drift.window_size
        # Access log lines: errors, requests slower than the latency objective and traced
        # requests; every request with SERVICE_ACCESS_LOG_ALL=true.
        self.log_every_request = settings.access_log_all
        self.slow_seconds = slo.objectives.latency_p95_ms / 1000.0
        self.provider: TracerProvider | None = None
        self.tracer: trace.Tracer = trace.NoOpTracer()
        # Sampling is decided first (`should_trace`): an untraced request does no span work at
        # all. None: OTEL_TRACES_SAMPLER is set and the SDK's sampler decides every request.
        self._ratio = sample_ratio(settings) if self.enabled else 0.0
        if self.enabled:
            self.provider = build_tracer_provider(settings, span_exporter, presampled=True)
            self.tracer = self.provider.get_tracer(__name__)
        self.registry = CollectorRegistry(auto_describe=False)
        exported = names.EXPORTED
        self.duration = Histogram(
            names.REQUEST_DURATION,
            exported[names.REQUEST_DURATION].help,
            exported[names.REQUEST_DURATION].labels,
            buckets=names.latency_buckets(slo.objectives.latency_p95_ms),
            registry=self.registry,
        )
        self.requests, self.predictions, self.rejections = (
            # prometheus-client appends `_total` to a counter's name.
            Counter(
                name.removesuffix("_total"),
                exported[name].help,
                exported[name].labels,
                registry=self.registry,
            )
            for name in (names.REQUESTS, names.PREDICTIONS, names.GUARDRAIL_REJECTIONS)
        )
        for reason in REJECTION_REASONS:  # exported at 0 from the start, not absent
            self.rejections.labels(reason)
        self.cost = CostMeter(slo.objectives.cost.instance_hourly_price_usd, clock)
        self._drift: DriftWindow | None = None
        # The model of the scrape in progress (metrics_text sets it for the collector).
        self.scraped_model: LoadedModel | None = None
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._prediction_children: dict[tuple[str, Any], Any] = {}
        self.registry.register(ScrapeTimeCollector(self))
        self._published: PublishedGauges | None = None  # `serve --workers N` only

    # -- hot path helpers --
    def should_trace(self) -> bool:
        """Whether this request gets a span (the SDK may still decline when its own sampler,
        from OTEL_TRACES_SAMPLER, decides)."""
        ratio = self._ratio
        return ratio is None or ratio >= 1.0 or (ratio > 0.0 and random.random() < ratio)

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
        """A child span of the current request span, or a no-op when the request is not traced.

        An exception is recorded by its type only: messages of validation errors hold the
        request's feature values, which must not leave the service in traces.
        """
        if trace.get_current_span().is_recording():
            return scrubbed_span(self.tracer, name)
        return NO_SPAN

    def drift_window(self, model: LoadedModel | None) -> DriftWindow | None:
        """The window for this model's training reference (a new model starts a new window)."""
        if model is None or model.reference is None:
            return None
        if self._drift is None or self._drift.reference is not model.reference:
            self._drift = DriftWindow(model.reference, self.window_size)
        return self._drift

    def publish(self, model: LoadedModel | None) -> None:
        """Write this worker's scrape-time gauges to the multiprocess files (`serve --workers`;
        called from the publisher thread, serving/workers.py)."""
        if self._published is None:
            self._published = PublishedGauges()
        drift = self._drift  # read, never replaced here: the request path owns the window
        window = None
        if model is not None and drift is not None and drift.reference is model.reference:
            window = drift
        self._published.publish(model, window)

    def metrics_text(self, model: LoadedModel | None) -> bytes:
        """The Prometheus text exposition, with the scrape-time gauges of `model`."""
        self.scraped_model = model
        try:
            return generate_latest(self.registry)
        finally:
            self.scraped_model = None

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()
