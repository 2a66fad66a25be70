"""The Grafana dashboard of the service, built from slo.yaml (SLO lines are the objectives)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..slo import SLO
from .alerts import (
    BURN_TIERS,
    LOCAL_NAMESPACE,
    TRAFFIC_RECORD,
    RatioSLO,
    burn_text,
    burn_threshold,
    cost_per_1k,
    error_ratio,
    ratio_slos,
)
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
    TRAINING_DATA_AGE,
    UP,
    latency_target_seconds,
)

# Every query uses the dashboard's `datasource` variable (default: the one the provisioning in
# observability/grafana/provisioning/ creates, uid "prometheus") and its `namespace` variable
# (one environment at a time: staging and prod never merge).
DEFAULT_DATASOURCE_UID = "prometheus"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
NAMESPACE_VAR = "$namespace"


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


def _row(panel_id: int, title: str, y: int) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
        "panels": [],
    }


def _variables(job: str) -> list[dict[str, Any]]:
    return [
        {
            "name": "datasource",
            "label": "Prometheus",
            "type": "datasource",
            "query": "prometheus",
            "current": {"text": DEFAULT_DATASOURCE_UID, "value": DEFAULT_DATASOURCE_UID},
            "hide": 0,
        },
        {
            "name": "namespace",
            "label": "Namespace (environment)",
            "type": "query",
            "datasource": DATASOURCE,
            "query": {"query": f'label_values({UP}{{job="{job}"}}, namespace)', "refId": "ns"},
            "definition": f'label_values({UP}{{job="{job}"}}, namespace)',
            "refresh": 2,
            "includeAll": False,
            "multi": False,
            "current": {"text": LOCAL_NAMESPACE, "value": LOCAL_NAMESPACE},
            "sort": 1,
            "hide": 0,
        },
    ]


def _deploy_annotation(job: str) -> dict[str, Any]:
    """A marker where a model version starts serving (a new slipway_model_info series)."""
    info = f'{MODEL_INFO}{{job="{job}",namespace="{NAMESPACE_VAR}"}}'
    return {
        "name": "Deploys (model version first seen)",
        "datasource": DATASOURCE,
        "enable": True,
        "iconColor": "blue",
        "expr": f"count by (model_version) ({info}) unless "
        f"count by (model_version) ({info} offset 5m)",
        "step": "60s",
        "titleFormat": "model version {{model_version}} serving",
        "textFormat": "",
        "useValueForTime": False,
    }


def build_dashboard(slo: SLO) -> dict[str, Any]:
    job = slo.service
    objectives = slo.objectives
    target = latency_target_seconds(objectives.latency_p95_ms)
    max_error = objectives.max_error_rate
    ceiling = objectives.cost.ceiling_per_1k_predictions_usd
    psi = slo.drift.psi_alert_threshold
    max_age_days = objectives.data_freshness.max_age_days
    scope = {"job": job, "namespace": NAMESPACE_VAR}
    sel = f'job="{job}",namespace="{NAMESPACE_VAR}"'
    predict = f'{sel},route="{PREDICT_ROUTE}"'

    def quantile(q: float) -> str:
        buckets = f"{REQUEST_DURATION}_bucket{{{predict}}}"
        return f"histogram_quantile({q}, sum by (le) (rate({buckets}[5m])))"

    def stat(
        panel_id: int, title: str, expr: str, grid: tuple[int, int, int, int]
    ) -> dict[str, Any]:
        x, y, w, h = grid
        return {
            "id": panel_id,
            "type": "stat",
            "title": title,
            "datasource": DATASOURCE,
            "gridPos": {"x": x, "y": y, "w": w, "h": h},
            "targets": [_target("A", expr, "value")],
            "fieldConfig": {
                "defaults": {"unit": "none", "thresholds": _threshold_steps(None)},
                "overrides": [],
            },
            "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
        }

    days = objectives.slo_window_days

    def burn_panel(n: int, objective: RatioSLO) -> dict[str, Any]:
        """The burn rate of one ratio objective over each alert tier's long window (the recording
        rules the alerts compare), with each tier's firing line."""
        burns = [
            _target(
                chr(ord("A") + i),
                # No 5xx at all records no error ratio: 0 while there is traffic, not a gap.
                f"({objective.ratio_record(tier.long)}{{{sel}}}"
                f" or 0 * {TRAFFIC_RECORD.format(window=tier.long)}{{{sel}}})"
                f" / {objective.budget:g}",
                tier.long,
            )
            for i, tier in enumerate(BURN_TIERS)
        ]
        lines = [
            _target(
                chr(ord("A") + len(BURN_TIERS) + i),
                f"vector({burn_threshold(tier, days, objective.budget) / objective.budget:.6g})",
                f"{tier.severity} above, {tier.long}",
            )
            for i, tier in enumerate(BURN_TIERS)
        ]
        return _timeseries(
            11 + n,
            f"Burn rate: {objective.what}",
            burns + lines,
            (12 * n, 60, 12, 8),
            "none",
            description=(
                f"Bad share over the window / the budget ({objective.budget:g} of requests). "
                f"{objective.page} pages at {burn_text(slo, objective, 'page')}; "
                f"{objective.ticket} opens a ticket at {burn_text(slo, objective, 'ticket')}."
            ),
        )

    # One row per objective of slo.yaml (quality is checked by the eval gate, not live: its row
    # shows which gated version serves), each row's panels drawn against the objective's line.
    panels = [
        _row(100, "Availability: every replica up and ready", 0),
        stat(8, "Replicas ready", f"sum({MODEL_READY}{{{sel}}})", (0, 1, 8, 6)),
        stat(9, "Scrape targets up", f"sum({UP}{{{sel}}})", (8, 1, 8, 6)),
        _row(101, f"Latency: p95 of POST /predict <= {objectives.latency_p95_ms:g} ms", 7),
        _timeseries(
            1,
            "Latency of POST /predict (p50 / p95 / p99) vs the p95 objective",
            [
                _target("A", quantile(0.5), "p50"),
                _target("B", quantile(0.95), "p95"),
                _target("C", quantile(0.99), "p99"),
                _target("D", f"vector({target})", "p95 objective"),
            ],
            (0, 8, 12, 8),
            "s",
            target,
            f"slo.yaml objectives.latency_p95_ms = {objectives.latency_p95_ms:g} ms",
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
            (12, 8, 12, 8),
            "reqps",
        ),
        _row(102, f"Errors: 5xx share <= {max_error:g}", 16),
        _timeseries(
            2,
            "Error rate of POST /predict (5xx share) vs the objective",
            [
                _target("A", error_ratio(scope, "5m"), "5xx share"),
                _target("B", f"vector({max_error})", "objective"),
            ],
            (0, 17, 12, 8),
            "percentunit",
            max_error,
            f"slo.yaml objectives.max_error_rate = {max_error}",
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
            (12, 17, 12, 8),
            "reqps",
        ),
        _row(103, f"Quality: {objectives.quality.metric} gated by `make evaluate`", 25),
        {
            "id": 7,
            "type": "table",
            "title": "Model version served",
            "datasource": DATASOURCE,
            "gridPos": {"x": 0, "y": 26, "w": 24, "h": 6},
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
        _row(104, f"Cost: <= ${ceiling:g} per 1,000 predictions", 32),
        _timeseries(
            5,
            "Cost per 1,000 predictions (USD) vs the ceiling",
            [
                _target("A", cost_per_1k(scope, "1h"), "fleet, 1h"),
                _target("B", f"{PREDICTION_COST}{{{sel}}} * 1000", "{{instance}} estimate"),
                _target("C", f"vector({ceiling})", "ceiling"),
            ],
            (0, 33, 24, 8),
            "currencyUSD",
            ceiling,
            "instance hourly price / throughput; slo.yaml objectives.cost",
        ),
        _row(105, f"Drift: PSI per feature <= {psi:g}", 41),
        _timeseries(
            4,
            "Feature drift (PSI per feature) vs the alert threshold",
            [_target("A", f"{FEATURE_DRIFT_PSI}{{{sel}}}", "{{feature}}")],
            (0, 42, 24, 8),
            "none",
            psi,
            f"slo.yaml drift.psi_alert_threshold = {psi}; window of drift.window_size inputs",
        ),
        _row(106, f"Data freshness: training snapshot <= {max_age_days:g} days old", 50),
        _timeseries(
            10,
            "Age of the served model's training data (days) vs the maximum",
            [
                _target("A", f"max({TRAINING_DATA_AGE}{{{sel}}}) / 86400", "age (days)"),
                _target("B", f"vector({max_age_days:g})", "maximum"),
            ],
            (0, 51, 24, 8),
            "d",
            max_age_days,
            "slo.yaml objectives.data_freshness.max_age_days",
        ),
        _row(107, f"Error budgets: burn rate, 1 = the pace a {days:g}-day budget lasts", 59),
        *(burn_panel(n, objective) for n, objective in enumerate(ratio_slos(slo))),
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
        "templating": {"list": _variables(job)},
        "annotations": {"list": [_deploy_annotation(job)]},
        "panels": panels,
    }


def panel_expressions(dashboard: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every query of the dashboard."""
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]
