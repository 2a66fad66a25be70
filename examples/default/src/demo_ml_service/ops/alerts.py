"""THE alert catalog: every alert of the service, its rule (built from slo.yaml) and its promtool
unit tests. docs/runbook.md has one `## <name>` section per entry; the ownership tests check both
directions, and `runbook_url` points at that section.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..slo import SLO
from .metrics import (
    FEATURE_DRIFT_PSI,
    GUARDRAIL_REJECTIONS,
    MODEL_READY,
    PREDICT_ROUTE,
    PREDICTION_COST_TOTAL,
    PREDICTIONS,
    REQUEST_DURATION,
    REQUESTS,
    TRAINING_DATA_AGE,
    UP,
    latency_target_seconds,
    le_label,
)

# Multi-window, multi-burn-rate latency alert (Google SRE workbook, chapter "Alerting on SLOs"):
# page when the latency error budget burns 14.4x too fast over 1h (and still over 5m), or 6x over
# 6h (and still over 30m). The budget of a p95 objective is the 5% of requests allowed above it.
LATENCY_BUDGET = 0.05
BURN_RATE_WINDOWS = (("1h", "5m", 14.4), ("6h", "30m", 6.0))
# Not in slo.yaml (its schema is the team's): platform defaults, tune here and re-render.
GUARDRAIL_REJECTION_RATIO = 0.10
ABSTAIN_RATIO = 0.20
COST_WINDOW = "1h"
# Minimum-traffic guard of every ratio alert: a ratio over fewer requests than this in its window
# is noise (one failed request out of two at 3 a.m. must not page).
MIN_REQUESTS = 100
AVAILABILITY_FOR = "5m"
FRESHNESS_FOR = "1h"
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Scope:
    """The series one set of rules looks at: one environment's pods and nothing else.

    `job` is the Service name (the Prometheus Operator's ServiceMonitor sets it so), `namespace`
    the overlay's namespace (the operator adds it to every scraped series; the local compose
    stack sets it as a static label), `environment` labels every alert for routing.
    """

    job: str
    namespace: str
    environment: str

    @property
    def matchers(self) -> dict[str, str]:
        return {"job": self.job, "namespace": self.namespace}


LOCAL_NAMESPACE = "local"


def local_scope(slo: SLO) -> Scope:
    """The local compose stack (observability/prometheus/prometheus.yml labels its target)."""
    return Scope(slo.service, LOCAL_NAMESPACE, LOCAL_NAMESPACE)


@dataclass(frozen=True)
class Alert:
    name: str
    severity: str  # page | ticket
    summary: str

    @property
    def runbook_anchor(self) -> str:
        return self.name.lower()


ALERTS: tuple[Alert, ...] = (
    Alert("ServiceUnavailable", "page", "no replica of the service answers the scrape"),
    Alert("LatencySLOBurnRate", "page", "p95 latency of POST /predict burns the SLO budget"),
    Alert("ErrorRateSLOBreach", "page", "5xx share of POST /predict is above the SLO"),
    Alert(
        "FeatureDriftHigh", "ticket", "input feature {{ $labels.feature }} drifted from training"
    ),
    Alert(
        "CostPerPredictionAboveCeiling",
        "ticket",
        "serving cost per 1,000 predictions is above the ceiling",
    ),
    Alert("ModelNotReady", "page", "model not loaded on {{ $labels.instance }}"),
    Alert("GuardrailRejectionsHigh", "ticket", "guardrails refuse or abstain on many requests"),
    Alert("TrainingDataStale", "ticket", "the served model was trained on stale data"),
)
BY_NAME = {alert.name: alert for alert in ALERTS}


def _num(value: float) -> str:
    return f"{float(value):.6g}"


def seconds(window: str) -> int:
    return int(window[:-1]) * _SECONDS[window[-1]]


def _sel(base: Mapping[str, str], **matchers: str) -> str:
    labels = [f'{k}="{v}"' for k, v in base.items()] + [
        f'{k}{"=~" if v.endswith("..") else "="}"{v}"' for k, v in matchers.items()
    ]
    return "{" + ",".join(labels) + "}"


def predict_rate(base: Mapping[str, str], window: str) -> str:
    """Requests per second to POST /predict over `window`."""
    return f"sum(rate({REQUESTS}{_sel(base, route=PREDICT_ROUTE)}[{window}]))"


def enough_traffic(rate: str, window: str) -> str:
    """`rate` (per second, over `window`) means at least MIN_REQUESTS events in the window: the
    ratio it divides is not noise."""
    return f"{rate} > {_num(MIN_REQUESTS / seconds(window))}"


def predict_count_rate(base: Mapping[str, str], window: str) -> str:
    """Requests per second to POST /predict, from the latency histogram."""
    return f"sum(rate({REQUEST_DURATION}_count{_sel(base, route=PREDICT_ROUTE)}[{window}]))"


def slow_ratio(base: Mapping[str, str], le: str, window: str) -> str:
    """Share of POST /predict requests slower than the latency target over `window`."""
    fast = f"sum(rate({REQUEST_DURATION}_bucket{_sel(base, route=PREDICT_ROUTE, le=le)}[{window}]))"
    return f"(1 - {fast} / {predict_count_rate(base, window)})"


def error_ratio(base: Mapping[str, str], window: str) -> str:
    errors = f"sum(rate({REQUESTS}{_sel(base, route=PREDICT_ROUTE, status='5..')}[{window}]))"
    return f"{errors} / {predict_rate(base, window)}"


def cost_per_1k(base: Mapping[str, str], window: str) -> str:
    """Fleet cost per 1,000 predictions: instance cost accrued / predictions served."""
    return (
        f"sum(rate({PREDICTION_COST_TOTAL}{_sel(base)}[{window}])) / "
        f"sum(rate({PREDICTIONS}{_sel(base)}[{window}])) * 1000"
    )


def _objectives(slo: SLO) -> dict[str, Any]:
    objectives = slo.objectives
    return {
        "job": slo.service,
        "target_s": latency_target_seconds(objectives.latency_p95_ms),
        "latency_ms": objectives.latency_p95_ms,
        "max_error_rate": objectives.max_error_rate,
        "ceiling": objectives.cost.ceiling_per_1k_predictions_usd,
        "price": objectives.cost.instance_hourly_price_usd,
        "psi": slo.drift.psi_alert_threshold,
        "window_size": slo.drift.window_size,
        "breach_minutes": slo.rollback.breach_window_minutes,
        "classification": slo.model_task == "classification",
        "max_age_days": objectives.data_freshness.max_age_days,
    }


def expressions(slo: SLO, scope: Scope) -> dict[str, tuple[str, str]]:
    """alert name -> (PromQL expression, `for` duration), every threshold from slo.yaml."""
    o = _objectives(slo)
    base, le = scope.matchers, le_label(o["target_s"])
    burn = " or ".join(
        f"({slow_ratio(base, le, long)} > {_num(rate * LATENCY_BUDGET)} "
        f"and {slow_ratio(base, le, short)} > {_num(rate * LATENCY_BUDGET)} "
        f"and {enough_traffic(predict_count_rate(base, long), long)})"
        for long, short, rate in BURN_RATE_WINDOWS
    )
    rejections = (
        f"sum(rate({GUARDRAIL_REJECTIONS}{_sel(base)}[15m])) / {predict_rate(base, '15m')} "
        f"> {_num(GUARDRAIL_REJECTION_RATIO)} "
        f"and {enough_traffic(predict_rate(base, '15m'), '15m')}"
    )
    if o["classification"]:
        rejections = (
            f"({rejections}) or (sum(rate({PREDICTIONS}{_sel(base, outcome='abstain')}[15m])) / "
            f"sum(rate({PREDICTIONS}{_sel(base)}[15m])) > {_num(ABSTAIN_RATIO)} "
            f"and {enough_traffic(f'sum(rate({PREDICTIONS}{_sel(base)}[15m]))', '15m')})"
        )
    return {
        "ServiceUnavailable": (f"absent({UP}{_sel(base)} == 1)", AVAILABILITY_FOR),
        "LatencySLOBurnRate": (burn, "2m"),
        "ErrorRateSLOBreach": (
            f"{error_ratio(base, '5m')} > {_num(o['max_error_rate'])} "
            f"and {enough_traffic(predict_rate(base, '5m'), '5m')}",
            f"{o['breach_minutes']}m",
        ),
        "FeatureDriftHigh": (
            f"max by (feature) ({FEATURE_DRIFT_PSI}{_sel(base)}) > {_num(o['psi'])}",
            "15m",
        ),
        "CostPerPredictionAboveCeiling": (
            f"{cost_per_1k(base, COST_WINDOW)} > {_num(o['ceiling'])} "
            f"and sum(rate({PREDICTIONS}{_sel(base)}[{COST_WINDOW}])) > 0",
            "30m",
        ),
        "ModelNotReady": (f"{MODEL_READY}{_sel(base)} == 0", "5m"),
        "GuardrailRejectionsHigh": (rejections, "15m"),
        "TrainingDataStale": (
            f"max({TRAINING_DATA_AGE}{_sel(base)}) > {_num(o['max_age_days'] * 86400)}",
            FRESHNESS_FOR,
        ),
    }


def descriptions(slo: SLO) -> dict[str, str]:
    o = _objectives(slo)
    return {
        "ServiceUnavailable": (
            f"No target of job {o['job']} has answered a scrape of /metrics for "
            f"{AVAILABILITY_FOR} (up == 1 is absent): every replica is down, or none is scheduled."
        ),
        "LatencySLOBurnRate": (
            f"More than {_num(LATENCY_BUDGET * 100)}% of POST /predict requests are slower "
            "than the "
            f"{_num(o['latency_ms'])} ms p95 objective, fast enough to burn the error budget "
            f"({', '.join(f'{_num(r)}x over {w}' for w, _, r in BURN_RATE_WINDOWS)}; "
            f"at least {MIN_REQUESTS} requests in the long window)."
        ),
        "ErrorRateSLOBreach": (
            f"The 5xx share of POST /predict has been above {_num(o['max_error_rate'])} for "
            f"{o['breach_minutes']} minutes (slo.yaml rollback.breach_window_minutes), with at "
            f"least {MIN_REQUESTS} requests per 5 minutes."
        ),
        "FeatureDriftHigh": (
            f"PSI of {{{{ $labels.feature }}}} over the last {o['window_size']} inputs is above "
            f"{_num(o['psi'])}: live inputs no longer look like the training data."
        ),
        "CostPerPredictionAboveCeiling": (
            f"Serving cost per 1,000 predictions over {COST_WINDOW} is above the ceiling of "
            f"{_num(o['ceiling'])} USD (instance price {_num(o['price'])} USD/h)."
        ),
        "ModelNotReady": (
            "slipway_model_ready is 0: /readyz answers 503 and POST /predict cannot be served "
            "by this replica."
        ),
        "GuardrailRejectionsHigh": (
            f"More than {_num(GUARDRAIL_REJECTION_RATIO * 100)}% of POST /predict requests are "
            "refused by the guardrails"
            + (
                f", or more than {_num(ABSTAIN_RATIO * 100)}% of predictions abstain"
                if o["classification"]
                else ""
            )
            + f" over 15 minutes (at least {MIN_REQUESTS} requests)."
        ),
        "TrainingDataStale": (
            f"The training snapshot of the served model is older than "
            f"{_num(o['max_age_days'])} days (slo.yaml objectives.data_freshness.max_age_days) "
            f"for {FRESHNESS_FOR}: retrain on fresh data."
        ),
    }


def runbook_url(alert: Alert, runbook_base: str) -> str:
    return f"{runbook_base}#{alert.runbook_anchor}"


def _rule_labels(alert: Alert, slo: SLO, scope: Scope) -> dict[str, str]:
    return {
        "severity": alert.severity,
        "service": slo.service,
        "environment": scope.environment,
        "namespace": scope.namespace,
    }


def build_rules(
    slo: SLO, scope: Scope | None = None, runbook_base: str = "docs/runbook.md"
) -> dict[str, Any]:
    """The rule groups: the content of observability/prometheus/alerts.yml (local scope) and the
    `spec` of each overlay's PrometheusRule."""
    scope = scope or local_scope(slo)
    exprs, texts = expressions(slo, scope), descriptions(slo)
    rules = []
    for alert in ALERTS:
        expr, duration = exprs[alert.name]
        rules.append(
            {
                "alert": alert.name,
                "expr": expr,
                "for": duration,
                "labels": _rule_labels(alert, slo, scope),
                "annotations": {
                    "summary": alert.summary,
                    "description": texts[alert.name],
                    "runbook_url": runbook_url(alert, runbook_base),
                },
            }
        )
    return {"groups": [{"name": f"{slo.service}-{scope.environment}-slo", "rules": rules}]}


def build_prometheus_rule(
    slo: SLO, scope: Scope, runbook_base: str = "docs/runbook.md"
) -> dict[str, Any]:
    """The PrometheusRule (Prometheus Operator) of one overlay: its namespace's series only."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": slo.service, "labels": {"slipway.dev/environment": scope.environment}},
        "spec": build_rules(slo, scope, runbook_base),
    }


# ---- promtool unit tests: every alert fires on a breach and stays silent without one ----------


def _series(metric: str, labels: Mapping[str, str], values: str) -> dict[str, str]:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{metric}{{{inner}}}", "values": values}


def _ramp(per_minute: float, minutes: int) -> str:
    """A counter growing by `per_minute` every minute (promtool expanding notation)."""
    return f"0+{_num(per_minute)}x{minutes}"


def _expected(
    alert: Alert, slo: SLO, scope: Scope, runbook_base: str, **labels: str
) -> dict[str, Any]:
    def fill(text: str) -> str:
        for key, value in labels.items():
            text = text.replace(f"{{{{ $labels.{key} }}}}", value)
        return text

    return {
        "exp_labels": {**_rule_labels(alert, slo, scope), **labels},
        "exp_annotations": {
            "summary": fill(alert.summary),
            "description": fill(descriptions(slo)[alert.name]),
            "runbook_url": runbook_url(alert, runbook_base),
        },
    }


def build_rule_tests(
    slo: SLO,
    rules_file: str = "alerts.yml",
    runbook_base: str = "docs/runbook.md",
    scope: Scope | None = None,
) -> dict[str, Any]:
    """The content of observability/prometheus/alerts_test.yml (`promtool test rules`): every
    alert fires on a breach, stays silent without one, on too little traffic, and on another
    environment's breach."""
    scope = scope or local_scope(slo)
    o = _objectives(slo)
    job = o["job"]
    le = le_label(o["target_s"])
    base = {**scope.matchers, "instance": "replica-1"}
    # The same service in another namespace (staging next to prod): never this scope's alert.
    other = {**base, "namespace": f"{scope.namespace}-other", "instance": "other-1"}
    predict = {**base, "route": PREDICT_ROUTE, "method": "POST"}
    other_predict = {**other, "route": PREDICT_ROUTE, "method": "POST"}
    tests: list[dict[str, Any]] = []

    def case(
        name: str, series: list[dict[str, str]], eval_time: str, firing: list[dict[str, str]]
    ) -> None:
        alert = BY_NAME[name]
        tests.append(
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {
                        "eval_time": eval_time,
                        "alertname": name,
                        "exp_alerts": [
                            _expected(alert, slo, scope, runbook_base, **labels)
                            for labels in firing
                        ],
                    }
                ],
            }
        )

    # Availability: no target up (down, or none at all) pages; another namespace's up does not help.
    case("ServiceUnavailable", [_series(UP, base, "0x20")], "10m", [{}])
    case("ServiceUnavailable", [_series(UP, other, "1x20")], "10m", [{}])
    case(
        "ServiceUnavailable",
        [_series(UP, base, "1x20"), _series(UP, {**base, "instance": "replica-2"}, "0x20")],
        "10m",
        [],
    )

    def latency(
        fast_share: float, labels: dict[str, str], per_minute: float = 100
    ) -> list[dict[str, str]]:
        return [
            _series(
                f"{REQUEST_DURATION}_bucket",
                {**labels, "le": le},
                _ramp(per_minute * fast_share, 420),
            ),
            _series(f"{REQUEST_DURATION}_count", labels, _ramp(per_minute, 420)),
        ]

    # 90% of requests slower than the target: both window pairs burn; 1% slower: within budget;
    # 90% slower at one request every 2 minutes: too little traffic to page.
    case("LatencySLOBurnRate", latency(0.10, predict), "70m", [{}])
    case("LatencySLOBurnRate", latency(0.99, predict), "7h", [])
    case("LatencySLOBurnRate", latency(0.10, predict, per_minute=0.5), "70m", [])
    case(
        "LatencySLOBurnRate",
        latency(0.99, predict) + latency(0.10, other_predict),
        "70m",
        [],
    )

    def errors(
        share: float, labels: dict[str, str], per_minute: float = 1000
    ) -> list[dict[str, str]]:
        unscoped = {k: v for k, v in labels.items() if k not in ("route", "method")}
        return [
            _series(REQUESTS, {**labels, "status": "200"}, _ramp(per_minute * (1 - share), 60)),
            _series(REQUESTS, {**labels, "status": "500"}, _ramp(per_minute * share, 60)),
            # 5xx of other routes (/readyz before the model loads) do not count.
            _series(
                REQUESTS,
                {**unscoped, "route": "/readyz", "method": "GET", "status": "503"},
                _ramp(per_minute, 60),
            ),
        ]

    breach = f"{o['breach_minutes'] + 10}m"
    high, low = min(0.99, o["max_error_rate"] * 3), o["max_error_rate"] / 3
    case("ErrorRateSLOBreach", errors(high, predict), breach, [{}])
    case("ErrorRateSLOBreach", errors(low, predict), breach, [])
    # 1 request in 2 fails, but only 4 requests per minute: below the minimum-traffic guard.
    case("ErrorRateSLOBreach", errors(0.5, predict, per_minute=4), breach, [])
    case("ErrorRateSLOBreach", errors(low, predict) + errors(high, other_predict), breach, [])

    drift = [
        _series(FEATURE_DRIFT_PSI, {**base, "feature": "drifting"}, f"{_num(o['psi'] * 2)}x40"),
        _series(FEATURE_DRIFT_PSI, {**base, "feature": "stable"}, f"{_num(o['psi'] / 4)}x40"),
    ]
    case("FeatureDriftHigh", drift, "30m", [{"feature": "drifting"}])
    calm = [
        _series(FEATURE_DRIFT_PSI, {**base, "feature": "stable"}, f"{_num(o['psi'] * 0.9)}x40"),
        _series(FEATURE_DRIFT_PSI, {**other, "feature": "stable"}, f"{_num(o['psi'] * 2)}x40"),
    ]
    case("FeatureDriftHigh", calm, "30m", [])

    # One instance accrues price/60 USD per minute; the prediction rate decides the cost per 1k.
    cost_per_minute = o["price"] / 60.0

    def cost(cost_ratio: float) -> list[dict[str, str]]:
        predictions_per_minute = 1000.0 * cost_per_minute / (o["ceiling"] * cost_ratio)
        return [
            _series(PREDICTION_COST_TOTAL, base, _ramp(cost_per_minute, 150)),
            _series(
                PREDICTIONS,
                {**base, "outcome": "predicted", "label": "x"},
                _ramp(predictions_per_minute, 150),
            ),
        ]

    case("CostPerPredictionAboveCeiling", cost(2.0), "120m", [{}])
    case("CostPerPredictionAboveCeiling", cost(0.5), "120m", [])
    # No traffic at all: no cost per prediction to speak of, and no alert.
    idle = [
        _series(PREDICTION_COST_TOTAL, base, _ramp(cost_per_minute, 150)),
        _series(PREDICTIONS, {**base, "outcome": "predicted", "label": "x"}, "0x150"),
    ]
    case("CostPerPredictionAboveCeiling", idle, "120m", [])

    not_ready = [
        _series(MODEL_READY, base, "0x20"),
        _series(MODEL_READY, {**base, "instance": "replica-2"}, "1x20"),
        _series(MODEL_READY, other, "0x20"),
    ]
    case("ModelNotReady", not_ready, "10m", [{"instance": "replica-1", "job": job}])
    case("ModelNotReady", [_series(MODEL_READY, base, "0x2 1x20")], "10m", [])

    def rejections(share: float, per_minute: float = 100) -> list[dict[str, str]]:
        return [
            _series(REQUESTS, {**predict, "status": "200"}, _ramp(per_minute * (1 - share), 60)),
            _series(REQUESTS, {**predict, "status": "422"}, _ramp(per_minute * share, 60)),
            _series(
                GUARDRAIL_REJECTIONS,
                {**base, "reason": "out_of_range"},
                _ramp(per_minute * share, 60),
            ),
            _series(
                PREDICTIONS,
                {**base, "outcome": "predicted", "label": "x"},
                _ramp(per_minute * (1 - share), 60),
            ),
        ]

    case("GuardrailRejectionsHigh", rejections(GUARDRAIL_REJECTION_RATIO * 3), "40m", [{}])
    case("GuardrailRejectionsHigh", rejections(GUARDRAIL_REJECTION_RATIO / 3), "40m", [])
    case("GuardrailRejectionsHigh", rejections(0.5, per_minute=2), "40m", [])
    if o["classification"]:
        abstaining = [
            _series(REQUESTS, {**predict, "status": "200"}, _ramp(100, 60)),
            _series(
                PREDICTIONS,
                {**base, "outcome": "predicted", "label": "x"},
                _ramp(100 * (1 - ABSTAIN_RATIO * 2), 60),
            ),
            _series(
                PREDICTIONS,
                {**base, "outcome": "abstain", "label": ""},
                _ramp(100 * ABSTAIN_RATIO * 2, 60),
            ),
        ]
        case("GuardrailRejectionsHigh", abstaining, "40m", [{}])

    max_age = o["max_age_days"] * 86400
    stale = [_series(TRAINING_DATA_AGE, base, f"{max_age * 2:.0f}x90")]
    case("TrainingDataStale", stale, "80m", [{}])
    fresh = [
        _series(TRAINING_DATA_AGE, base, f"{max_age / 2:.0f}x90"),
        _series(TRAINING_DATA_AGE, other, f"{max_age * 2:.0f}x90"),
    ]
    case("TrainingDataStale", fresh, "80m", [])

    return {"rule_files": [rules_file], "evaluation_interval": "1m", "tests": tests}
