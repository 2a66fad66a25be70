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


@dataclass(frozen=True)
class Alert:
    name: str
    severity: str  # page | ticket
    summary: str

    @property
    def runbook_anchor(self) -> str:
        return self.name.lower()


ALERTS: tuple[Alert, ...] = (
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
)
BY_NAME = {alert.name: alert for alert in ALERTS}


def _num(value: float) -> str:
    return f"{float(value):.6g}"


def _sel(job: str, **matchers: str) -> str:
    labels = [f'job="{job}"'] + [
        f'{k}{"=~" if v.endswith("..") else "="}"{v}"' for k, v in matchers.items()
    ]
    return "{" + ",".join(labels) + "}"


def slow_ratio(job: str, le: str, window: str) -> str:
    """Share of POST /predict requests slower than the latency target over `window`."""
    fast = f"sum(rate({REQUEST_DURATION}_bucket{_sel(job, route=PREDICT_ROUTE, le=le)}[{window}]))"
    total = f"sum(rate({REQUEST_DURATION}_count{_sel(job, route=PREDICT_ROUTE)}[{window}]))"
    return f"(1 - {fast} / {total})"


def error_ratio(job: str, window: str) -> str:
    errors = f"sum(rate({REQUESTS}{_sel(job, route=PREDICT_ROUTE, status='5..')}[{window}]))"
    total = f"sum(rate({REQUESTS}{_sel(job, route=PREDICT_ROUTE)}[{window}]))"
    return f"{errors} / {total}"


def cost_per_1k(job: str, window: str) -> str:
    """Fleet cost per 1,000 predictions: instance cost accrued / predictions served."""
    return (
        f"sum(rate({PREDICTION_COST_TOTAL}{_sel(job)}[{window}])) / "
        f"sum(rate({PREDICTIONS}{_sel(job)}[{window}])) * 1000"
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
    }


def expressions(slo: SLO) -> dict[str, tuple[str, str]]:
    """alert name -> (PromQL expression, `for` duration), every threshold from slo.yaml."""
    o = _objectives(slo)
    job, le = o["job"], le_label(o["target_s"])
    burn = " or ".join(
        f"({slow_ratio(job, le, long)} > {_num(rate * LATENCY_BUDGET)} "
        f"and {slow_ratio(job, le, short)} > {_num(rate * LATENCY_BUDGET)})"
        for long, short, rate in BURN_RATE_WINDOWS
    )
    rejections = (
        f"sum(rate({GUARDRAIL_REJECTIONS}{_sel(job)}[15m])) / "
        f"sum(rate({REQUESTS}{_sel(job, route=PREDICT_ROUTE)}[15m])) "
        f"> {_num(GUARDRAIL_REJECTION_RATIO)}"
    )
    if o["classification"]:
        rejections = (
            f"({rejections}) or (sum(rate({PREDICTIONS}{_sel(job, outcome='abstain')}[15m])) / "
            f"sum(rate({PREDICTIONS}{_sel(job)}[15m])) > {_num(ABSTAIN_RATIO)})"
        )
    return {
        "LatencySLOBurnRate": (burn, "2m"),
        "ErrorRateSLOBreach": (
            f"{error_ratio(job, '5m')} > {_num(o['max_error_rate'])}",
            f"{o['breach_minutes']}m",
        ),
        "FeatureDriftHigh": (
            f"max by (feature) ({FEATURE_DRIFT_PSI}{_sel(job)}) > {_num(o['psi'])}",
            "15m",
        ),
        "CostPerPredictionAboveCeiling": (
            f"{cost_per_1k(job, COST_WINDOW)} > {_num(o['ceiling'])} "
            f"and sum(rate({PREDICTIONS}{_sel(job)}[{COST_WINDOW}])) > 0",
            "30m",
        ),
        "ModelNotReady": (f"{MODEL_READY}{_sel(job)} == 0", "5m"),
        "GuardrailRejectionsHigh": (rejections, "15m"),
    }


def descriptions(slo: SLO) -> dict[str, str]:
    o = _objectives(slo)
    return {
        "LatencySLOBurnRate": (
            f"More than {_num(LATENCY_BUDGET * 100)}% of POST /predict requests are slower "
            "than the "
            f"{_num(o['latency_ms'])} ms p95 objective, fast enough to burn the error budget "
            f"({', '.join(f'{_num(r)}x over {w}' for w, _, r in BURN_RATE_WINDOWS)})."
        ),
        "ErrorRateSLOBreach": (
            f"The 5xx share of POST /predict has been above {_num(o['max_error_rate'])} for "
            f"{o['breach_minutes']} minutes (slo.yaml rollback.breach_window_minutes)."
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
            + " over 15 minutes."
        ),
    }


def runbook_url(alert: Alert, runbook_base: str) -> str:
    return f"{runbook_base}#{alert.runbook_anchor}"


def build_rules(slo: SLO, runbook_base: str = "docs/runbook.md") -> dict[str, Any]:
    """The content of observability/prometheus/alerts.yml."""
    job = slo.service
    exprs, texts = expressions(slo), descriptions(slo)
    rules = []
    for alert in ALERTS:
        expr, duration = exprs[alert.name]
        rules.append(
            {
                "alert": alert.name,
                "expr": expr,
                "for": duration,
                "labels": {"severity": alert.severity, "service": job},
                "annotations": {
                    "summary": alert.summary,
                    "description": texts[alert.name],
                    "runbook_url": runbook_url(alert, runbook_base),
                },
            }
        )
    return {"groups": [{"name": f"{job}-slo", "rules": rules}]}


# ---- promtool unit tests: every alert fires on a breach and stays silent without one ----------


def _series(metric: str, labels: Mapping[str, str], values: str) -> dict[str, str]:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{metric}{{{inner}}}", "values": values}


def _ramp(per_minute: float, minutes: int) -> str:
    """A counter growing by `per_minute` every minute (promtool expanding notation)."""
    return f"0+{_num(per_minute)}x{minutes}"


def _expected(alert: Alert, slo: SLO, runbook_base: str, **labels: str) -> dict[str, Any]:
    def fill(text: str) -> str:
        for key, value in labels.items():
            text = text.replace(f"{{{{ $labels.{key} }}}}", value)
        return text

    return {
        "exp_labels": {"severity": alert.severity, "service": slo.service, **labels},
        "exp_annotations": {
            "summary": fill(alert.summary),
            "description": fill(descriptions(slo)[alert.name]),
            "runbook_url": runbook_url(alert, runbook_base),
        },
    }


def _case(
    slo: SLO,
    runbook_base: str,
    name: str,
    series: list[dict[str, str]],
    eval_time: str,
    firing: list[dict[str, str]],
) -> dict[str, Any]:
    alert = BY_NAME[name]
    return {
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {
                "eval_time": eval_time,
                "alertname": name,
                "exp_alerts": [_expected(alert, slo, runbook_base, **labels) for labels in firing],
            }
        ],
    }


def build_rule_tests(
    slo: SLO, rules_file: str = "alerts.yml", runbook_base: str = "docs/runbook.md"
) -> dict[str, Any]:
    """The content of observability/prometheus/alerts_test.yml (`promtool test rules`)."""
    o = _objectives(slo)
    job = o["job"]
    le = le_label(o["target_s"])
    base = {"job": job, "instance": "replica-1"}
    predict = {**base, "route": PREDICT_ROUTE, "method": "POST"}
    tests: list[dict[str, Any]] = []

    def latency(fast_share: float) -> list[dict[str, str]]:
        return [
            _series(
                f"{REQUEST_DURATION}_bucket", {**predict, "le": le}, _ramp(100 * fast_share, 420)
            ),
            _series(f"{REQUEST_DURATION}_count", predict, _ramp(100, 420)),
        ]

    # 90% of requests slower than the target: both window pairs burn; 1% slower: within budget.
    tests.append(_case(slo, runbook_base, "LatencySLOBurnRate", latency(0.10), "70m", [{}]))
    tests.append(_case(slo, runbook_base, "LatencySLOBurnRate", latency(0.99), "7h", []))

    def errors(share: float) -> list[dict[str, str]]:
        return [
            _series(REQUESTS, {**predict, "status": "200"}, _ramp(1000 * (1 - share), 60)),
            _series(REQUESTS, {**predict, "status": "500"}, _ramp(1000 * share, 60)),
            # 5xx of other routes (/readyz before the model loads) do not count.
            _series(
                REQUESTS,
                {**base, "route": "/readyz", "method": "GET", "status": "503"},
                _ramp(1000, 60),
            ),
        ]

    breach = f"{o['breach_minutes'] + 10}m"
    tests.append(
        _case(
            slo,
            runbook_base,
            "ErrorRateSLOBreach",
            errors(min(0.99, o["max_error_rate"] * 3)),
            breach,
            [{}],
        )
    )
    tests.append(
        _case(slo, runbook_base, "ErrorRateSLOBreach", errors(o["max_error_rate"] / 3), breach, [])
    )

    drift = [
        _series(FEATURE_DRIFT_PSI, {**base, "feature": "drifting"}, f"{_num(o['psi'] * 2)}x40"),
        _series(FEATURE_DRIFT_PSI, {**base, "feature": "stable"}, f"{_num(o['psi'] / 4)}x40"),
    ]
    tests.append(
        _case(slo, runbook_base, "FeatureDriftHigh", drift, "30m", [{"feature": "drifting"}])
    )
    calm = [_series(FEATURE_DRIFT_PSI, {**base, "feature": "stable"}, f"{_num(o['psi'] * 0.9)}x40")]
    tests.append(_case(slo, runbook_base, "FeatureDriftHigh", calm, "30m", []))

    # One instance accrues price/60 USD per minute; the prediction rate decides the cost per 1k.
    cost_per_minute = o["price"] / 60.0

    def cost(cost_ratio: float) -> list[dict[str, str]]:
        predictions_per_minute = 1000.0 * cost_per_minute / (o["ceiling"] * cost_ratio)
        series = [_series(PREDICTION_COST_TOTAL, base, _ramp(cost_per_minute, 150))]
        if predictions_per_minute:
            series.append(
                _series(
                    PREDICTIONS,
                    {**base, "outcome": "predicted", "label": "x"},
                    _ramp(predictions_per_minute, 150),
                )
            )
        return series

    tests.append(_case(slo, runbook_base, "CostPerPredictionAboveCeiling", cost(2.0), "120m", [{}]))
    tests.append(_case(slo, runbook_base, "CostPerPredictionAboveCeiling", cost(0.5), "120m", []))
    # No traffic at all: no cost per prediction to speak of, and no alert.
    idle = [
        _series(PREDICTION_COST_TOTAL, base, _ramp(cost_per_minute, 150)),
        _series(PREDICTIONS, {**base, "outcome": "predicted", "label": "x"}, "0x150"),
    ]
    tests.append(_case(slo, runbook_base, "CostPerPredictionAboveCeiling", idle, "120m", []))

    not_ready = [
        _series(MODEL_READY, base, "0x20"),
        _series(MODEL_READY, {**base, "instance": "replica-2"}, "1x20"),
    ]
    tests.append(
        _case(
            slo,
            runbook_base,
            "ModelNotReady",
            not_ready,
            "10m",
            [{"instance": "replica-1", "job": job}],
        )
    )
    ready = [_series(MODEL_READY, base, "0x2 1x20")]
    tests.append(_case(slo, runbook_base, "ModelNotReady", ready, "10m", []))

    def rejections(share: float) -> list[dict[str, str]]:
        return [
            _series(REQUESTS, {**predict, "status": "200"}, _ramp(100 * (1 - share), 60)),
            _series(REQUESTS, {**predict, "status": "422"}, _ramp(100 * share, 60)),
            _series(
                GUARDRAIL_REJECTIONS, {**base, "reason": "out_of_range"}, _ramp(100 * share, 60)
            ),
            _series(
                PREDICTIONS,
                {**base, "outcome": "predicted", "label": "x"},
                _ramp(100 * (1 - share), 60),
            ),
        ]

    tests.append(
        _case(
            slo,
            runbook_base,
            "GuardrailRejectionsHigh",
            rejections(GUARDRAIL_REJECTION_RATIO * 3),
            "40m",
            [{}],
        )
    )
    tests.append(
        _case(
            slo,
            runbook_base,
            "GuardrailRejectionsHigh",
            rejections(GUARDRAIL_REJECTION_RATIO / 3),
            "40m",
            [],
        )
    )
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
        tests.append(_case(slo, runbook_base, "GuardrailRejectionsHigh", abstaining, "40m", [{}]))

    return {"rule_files": [rules_file], "evaluation_interval": "1m", "tests": tests}
