"""The Grafana dashboard of the service, built from slo.yaml (SLO lines are the objectives)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..slo import SLO
from .alerts import cost_per_1k, error_ratio
from .metrics import (
    FEATURE_DRIFT_PSI,
    GUARDRAIL_REJECTIONS,
    MODEL_INFO,
    MODEL_READY,
    PREDICT_ROUTE,
    PREDICTION_COST,
    PREDICTIONS,
    REQUEST_DURATION,
    REQUESTS,
    latency_target_seconds,
)

# The datasource the provisioning in observability/grafana/provisioning/ creates.
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}


def _target(ref: str, expr: str, legend: str) -> dict[str, Any]:
    return {
        "refId": ref,
        "datasource": DATASOURCE,
        "expr": expr,
        "legendFormat": legend,
        "range": True,
    }


def _threshold_steps(line: float | None, color: str = "red") -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    if line is not None:
        steps.append({"color": color, "value": line})
    return {"mode": "absolute", "steps": steps}


def _timeseries(
    panel_id: int,
    title: str,
    targets: list[dict[str, Any]],
    grid: tuple[int, int, int, int],
    unit: str,
    line: float | None = None,
    description: str = "",
) -> dict[str, Any]:
    x, y, w, h = grid
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": targets,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "thresholds": _threshold_steps(line),
                # The objective drawn as a dashed line across the panel.
                "custom": {"thresholdsStyle": {"mode": "dashed" if line is not None else "off"}},
            },
            "overrides": [],
        },
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom"},
            "tooltip": {"mode": "multi"},
        },
    }


def build_dashboard(slo: SLO) -> dict[str, Any]:
    job = slo.service
    objectives = slo.objectives
    target = latency_target_seconds(objectives.latency_p95_ms)
    max_error = objectives.max_error_rate
    ceiling = objectives.cost.ceiling_per_1k_predictions_usd
    psi = slo.drift.psi_alert_threshold
    sel = f'job="{job}"'
    predict = f'{sel},route="{PREDICT_ROUTE}"'

    def quantile(q: float) -> str:
        buckets = f"{REQUEST_DURATION}_bucket{{{predict}}}"
        return f"histogram_quantile({q}, sum by (le) (rate({buckets}[5m])))"

    panels = [
        _timeseries(
            1,
            "Latency of POST /predict (p50 / p95 / p99) vs the p95 objective",
            [
                _target("A", quantile(0.5), "p50"),
                _target("B", quantile(0.95), "p95"),
                _target("C", quantile(0.99), "p99"),
                _target("D", f"vector({target})", "p95 objective"),
            ],
            (0, 0, 12, 8),
            "s",
            target,
            f"slo.yaml objectives.latency_p95_ms = {objectives.latency_p95_ms:g} ms",
        ),
        _timeseries(
            2,
            "Error rate of POST /predict (5xx share) vs the objective",
            [
                _target("A", error_ratio(job, "5m"), "5xx share"),
                _target("B", f"vector({max_error})", "objective"),
            ],
            (12, 0, 12, 8),
            "percentunit",
            max_error,
            f"slo.yaml objectives.max_error_rate = {max_error}",
        ),
        _timeseries(
            3,
            "Throughput",
            [
                _target("A", f"sum by (route) (rate({REQUESTS}{{{sel}}}[5m]))", "{{route}} req/s"),
                _target(
                    "B",
                    f"sum by (outcome) (rate({PREDICTIONS}{{{sel}}}[5m]))",
                    "{{outcome}} predictions/s",
                ),
            ],
            (0, 8, 12, 8),
            "reqps",
        ),
        _timeseries(
            4,
            "Feature drift (PSI per feature) vs the alert threshold",
            [_target("A", f"{FEATURE_DRIFT_PSI}{{{sel}}}", "{{feature}}")],
            (12, 8, 12, 8),
            "none",
            psi,
            f"slo.yaml drift.psi_alert_threshold = {psi}; window of drift.window_size inputs",
        ),
        _timeseries(
            5,
            "Cost per 1,000 predictions (USD) vs the ceiling",
            [
                _target("A", cost_per_1k(job, "1h"), "fleet, 1h"),
                _target("B", f"{PREDICTION_COST}{{{sel}}} * 1000", "{{instance}} estimate"),
                _target("C", f"vector({ceiling})", "ceiling"),
            ],
            (0, 16, 12, 8),
            "currencyUSD",
            ceiling,
            "instance hourly price / throughput; slo.yaml objectives.cost",
        ),
        _timeseries(
            6,
            "Guardrail rejections by reason",
            [
                _target(
                    "A",
                    f"sum by (reason) (rate({GUARDRAIL_REJECTIONS}{{{sel}}}[5m]))",
                    "{{reason}}",
                )
            ],
            (12, 16, 12, 8),
            "reqps",
        ),
        {
            "id": 7,
            "type": "table",
            "title": "Model version served",
            "datasource": DATASOURCE,
            "gridPos": {"x": 0, "y": 24, "w": 16, "h": 6},
            "targets": [
                {
                    **_target("A", f"{MODEL_INFO}{{{sel}}}", "{{model_version}}"),
                    "format": "table",
                    "instant": True,
                    "range": False,
                }
            ],
            "transformations": [
                {
                    "id": "organize",
                    "options": {"excludeByName": {"Time": True, "Value": True, "__name__": True}},
                }
            ],
        },
        {
            "id": 8,
            "type": "stat",
            "title": "Replicas ready",
            "datasource": DATASOURCE,
            "gridPos": {"x": 16, "y": 24, "w": 8, "h": 6},
            "targets": [_target("A", f"sum({MODEL_READY}{{{sel}}})", "ready")],
            "fieldConfig": {
                "defaults": {"unit": "none", "thresholds": _threshold_steps(None)},
                "overrides": [],
            },
            "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
        },
    ]
    return {
        "uid": f"{job}-service"[:40],
        "title": f"{job}: service",
        "description": "GENERATED from slo.yaml by `make ops`: edit slo.yaml, not this file.",
        "tags": ["slipway", "ml", job],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": []},
        "annotations": {"list": []},
        "panels": panels,
    }


def panel_expressions(dashboard: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every query of the dashboard."""
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]
