"""Metric names and the latency histogram's buckets, shared by the service and the generated rules.

The names are a contract (docs/architecture.md of the template): the dashboard and the alerts
use exactly these, and the service exports exactly these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PREFIX = "slipway"
REQUEST_DURATION = f"{PREFIX}_http_request_duration_seconds"
REQUESTS = f"{PREFIX}_http_requests_total"
PREDICTIONS = f"{PREFIX}_predictions_total"
GUARDRAIL_REJECTIONS = f"{PREFIX}_guardrail_rejections_total"
MODEL_INFO = f"{PREFIX}_model_info"
MODEL_READY = f"{PREFIX}_model_ready"
FEATURE_DRIFT_PSI = f"{PREFIX}_feature_drift_psi"
PREDICTION_COST = f"{PREFIX}_prediction_cost_usd"
PREDICTION_COST_TOTAL = f"{PREFIX}_prediction_cost_usd_total"
# Age of the served model's training snapshot (a gauge without labels; the data freshness alert).
TRAINING_DATA_AGE = f"{PREFIX}_training_data_age_seconds"
# Prometheus' own series per scrape target: 1 when the last scrape succeeded.
UP = "up"


@dataclass(frozen=True)
class MetricSpec:
    kind: str  # counter, gauge or histogram (histograms also expose _bucket, _count, _sum)
    labels: tuple[str, ...]
    help: str  # the HELP line of the exposition, written by every exporter of the metric


EXPORTED: dict[str, MetricSpec] = {
    REQUEST_DURATION: MetricSpec(
        "histogram",
        ("route", "method"),
        "HTTP request duration in seconds (buckets around the slo.yaml latency objective).",
    ),
    REQUESTS: MetricSpec(
        "counter", ("route", "method", "status"), "HTTP requests by route, method and status."
    ),
    PREDICTIONS: MetricSpec(
        "counter", ("outcome", "label"), "Predictions (records) by outcome and label."
    ),
    GUARDRAIL_REJECTIONS: MetricSpec(
        "counter", ("reason",), "Requests refused by a guardrail, by reason."
    ),
    MODEL_INFO: MetricSpec(
        "gauge",
        ("model_name", "model_version", "model_alias", "template_version"),
        "The model this replica serves (value 1).",
    ),
    MODEL_READY: MetricSpec("gauge", (), "1 when the model is loaded (/readyz 200)."),
    FEATURE_DRIFT_PSI: MetricSpec(
        "gauge",
        ("feature",),
        "Population stability index of each feature: recent inputs vs training data.",
    ),
    PREDICTION_COST: MetricSpec(
        "gauge", (), "Estimated USD cost of one prediction: instance price / recent throughput."
    ),
    PREDICTION_COST_TOTAL: MetricSpec("counter", (), "Instance cost accrued since start (USD)."),
    TRAINING_DATA_AGE: MetricSpec(
        "gauge", (), "Seconds since the served model's training snapshot was ingested."
    ),
}

PREDICT_ROUTE = "/predict"

# Bucket bounds as multiples of the latency target: dense around the target so that p95 and the
# share of requests slower than the target are exact at the SLO line.
_BUCKET_FACTORS = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)


def latency_target_seconds(latency_p95_ms: float) -> float:
    return float(f"{latency_p95_ms / 1000.0:.6g}")


def latency_buckets(latency_p95_ms: float) -> tuple[float, ...]:
    """Histogram bucket upper bounds (seconds); the SLO target itself is one of them."""
    target = latency_p95_ms / 1000.0
    return tuple(sorted({float(f"{target * factor:.6g}") for factor in _BUCKET_FACTORS}))


def le_label(bound: float) -> str:
    """The `le` label value prometheus-client writes for a bucket bound (its floatToGoString)."""
    value = float(bound)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(value)
    dot = text.find(".")
    if value > 0 and dot > 6:
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+0{dot - 1}"
    return text
