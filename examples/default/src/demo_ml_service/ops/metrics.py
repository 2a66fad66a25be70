"""Metric names and the latency histogram's buckets, shared by the service and the generated rules.

The names are a contract (docs/architecture.md of the template): the dashboard and the alerts
use exactly these, and the service exports exactly these.
"""

from __future__ import annotations

import math

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

# metric -> (type, label names). Histograms also expose _bucket, _count and _sum series.
EXPORTED: dict[str, tuple[str, tuple[str, ...]]] = {
    REQUEST_DURATION: ("histogram", ("route", "method")),
    REQUESTS: ("counter", ("route", "method", "status")),
    PREDICTIONS: ("counter", ("outcome", "label")),
    GUARDRAIL_REJECTIONS: ("counter", ("reason",)),
    MODEL_INFO: ("gauge", ("model_name", "model_version", "model_alias", "template_version")),
    MODEL_READY: ("gauge", ()),
    FEATURE_DRIFT_PSI: ("gauge", ("feature",)),
    PREDICTION_COST: ("gauge", ()),
    PREDICTION_COST_TOTAL: ("counter", ()),
    TRAINING_DATA_AGE: ("gauge", ()),
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
