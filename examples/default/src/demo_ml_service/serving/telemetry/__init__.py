"""Telemetry of the service: OpenTelemetry traces, Prometheus metrics and JSON logs.

One module per job behind one facade (`Telemetry`):

    tracing.py       resource, TracerProvider and exporters, sampling
    logs.py          JSON log lines with trace / request / model ids
    drift_window.py  live PSI over the last N inputs
    cost.py          cost accrued and cost per prediction
    collector.py     the gauges computed at scrape time
    facade.py        Telemetry: what the request path calls
    middleware.py    the ASGI middleware: server span, request metrics, access log
"""

from .cost import CostMeter
from .drift_window import DriftWindow
from .facade import REJECTION_REASONS, Telemetry
from .logs import JsonFormatter, configure_logging
from .middleware import TelemetryMiddleware
from .tracing import build_resource, build_tracer_provider

__all__ = [
    "REJECTION_REASONS",
    "CostMeter",
    "DriftWindow",
    "JsonFormatter",
    "Telemetry",
    "TelemetryMiddleware",
    "build_resource",
    "build_tracer_provider",
    "configure_logging",
]
