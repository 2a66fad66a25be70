"""THE alert catalog: every alert of the service, its rule (built from slo.yaml) and its promtool
unit tests. docs/runbook.md has one `## <name>` section per entry; the ownership tests check both
directions, and `runbook_url` points at that section.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
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

# The budget of a p95 objective: the 5% of requests allowed above the latency target.
LATENCY_BUDGET = 0.05
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


# ---- error budgets and burn rates ---------------------------------------------------------------
# Multi-window, multi-burn-rate alerts (Google SRE workbook, chapter "Alerting on SLOs"). The two
# ratio objectives of slo.yaml each have an error budget over the SLO window
# (objectives.slo_window_days, 30 by default): errors, 1 - (1 - max_error_rate) = max_error_rate of
# the requests; latency, the 5% of requests a p95 objective allows above the target. A tier fires
# when the budget burns so fast over its long window that `budget_share` of the whole window's
# budget is gone, AND the short window (1/12 of the long one) still burns that fast: the long
# window makes a blip too small to matter, the short one makes the alert stop within minutes of
# the problem stopping. The burn rate of a tier is budget_share * SLO window / long window
# (14.4, 6 and 1 for 30 days), never below 1: a pace the budget can sustain never alerts.
@dataclass(frozen=True)
class BurnTier:
    long: str
    short: str
    budget_share: float
    severity: str  # page | ticket


BURN_TIERS = (
    BurnTier("1h", "5m", 0.02, "page"),
    BurnTier("6h", "30m", 0.05, "page"),
    BurnTier("3d", "6h", 0.10, "ticket"),
)
# A tier whose threshold would be above this share of requests (an error budget above
# 0.9/14.4 = 6.25%) compares against it instead: it could hardly ever fire otherwise (never above
# 100%), and 90% of requests failing pages whatever the budget.
MAX_BURN_THRESHOLD = 0.9
# Only against a flapping evaluation: the short window already gives the fast reset.
BURN_FOR = "2m"


@dataclass(frozen=True)
class RatioSLO:
    """One ratio objective: its budget, its recorded ratio and its page and ticket alerts."""

    key: str  # errors | slow
    budget: float
    page: str
    ticket: str
    what: str

    def ratio_record(self, window: str) -> str:
        return f"job_namespace:slipway_predict_{self.key}:ratio_rate{window}"


TRAFFIC_RECORD = "job_namespace:slipway_predict_requests:rate{window}"


def burn_rate(tier: BurnTier, slo_window_days: float) -> float:
    return max(1.0, tier.budget_share * slo_window_days * 86400 / seconds(tier.long))


def burn_threshold(tier: BurnTier, slo_window_days: float, budget: float) -> float:
    """The share of bad requests above which `tier` fires."""
    return min(burn_rate(tier, slo_window_days) * budget, max(budget, MAX_BURN_THRESHOLD))


def ratio_slos(slo: SLO) -> tuple[RatioSLO, ...]:
    target = f"{_num(slo.objectives.latency_p95_ms)} ms"
    return (
        RatioSLO(
            "slow",
            LATENCY_BUDGET,
            "LatencySLOBurnRate",
            "LatencySLOSlowBurn",
            f"POST /predict requests slower than the {target} p95 objective",
        ),
        RatioSLO(
            "errors",
            slo.objectives.max_error_rate,
            "ErrorRateSLOBreach",
            "ErrorRateSLOSlowBurn",
            "5xx answers of POST /predict",
        ),
    )


def burn_windows() -> list[str]:
    """Every window a ratio is recorded over, shortest first."""
    return sorted({w for t in BURN_TIERS for w in (t.long, t.short)}, key=seconds)


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
    Alert(
        "LatencySLOSlowBurn",
        "ticket",
        "slow POST /predict requests spend the latency budget before the SLO window ends",
    ),
    Alert("ErrorRateSLOBreach", "page", "5xx of POST /predict burn the error budget fast"),
    Alert(
        "ErrorRateSLOSlowBurn",
        "ticket",
        "5xx of POST /predict spend the error budget before the SLO window ends",
    ),
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


def error_ratio(base: Mapping[str, str], window: str) -> str:
    errors = f"sum(rate({REQUESTS}{_sel(base, route=PREDICT_ROUTE, status='5..')}[{window}]))"
    return f"{errors} / {predict_rate(base, window)}"


def cost_per_1k(base: Mapping[str, str], window: str) -> str:
    """Fleet cost per 1,000 predictions: instance cost accrued / predictions served."""
    return (
        f"sum(rate({PREDICTION_COST_TOTAL}{_sel(base)}[{window}])) / "
        f"sum(rate({PREDICTIONS}{_sel(base)}[{window}])) * 1000"
    )


def _by_scope(expr: str) -> str:
    return f"sum by (job, namespace) ({expr})"


def recording_rules(slo: SLO, scope: Scope) -> list[dict[str, str]]:
    """The ratio of each ratio objective over every burn-rate window, and the request rate over
    every long window (the minimum-traffic guard), per job and namespace: the burn-rate alerts
    compare these, and the 3-day rates are computed once per evaluation, not once per alert."""
    base, le = scope.matchers, le_label(latency_target_seconds(slo.objectives.latency_p95_ms))
    records = []
    by_key = {objective.key: objective for objective in ratio_slos(slo)}
    errors, slow = by_key["errors"], by_key["slow"]
    for window in burn_windows():
        requests = _by_scope(f"rate({REQUESTS}{_sel(base, route=PREDICT_ROUTE)}[{window}])")
        failed = _by_scope(
            f"rate({REQUESTS}{_sel(base, route=PREDICT_ROUTE, status='5..')}[{window}])"
        )
        fast = _by_scope(
            f"rate({REQUEST_DURATION}_bucket{_sel(base, route=PREDICT_ROUTE, le=le)}[{window}])"
        )
        observed = _by_scope(
            f"rate({REQUEST_DURATION}_count{_sel(base, route=PREDICT_ROUTE)}[{window}])"
        )
        records.append({"record": errors.ratio_record(window), "expr": f"{failed} / {requests}"})
        records.append({"record": slow.ratio_record(window), "expr": f"1 - {fast} / {observed}"})
        if any(tier.long == window for tier in BURN_TIERS):
            records.append({"record": TRAFFIC_RECORD.format(window=window), "expr": requests})
    return records


def burn_expression(slo: SLO, scope: Scope, objective: RatioSLO, severity: str) -> str:
    """The tiers of `severity` for `objective`: long window AND short window above the tier's
    threshold, AND at least MIN_REQUESTS requests in the long window."""
    days, sel = slo.objectives.slo_window_days, _sel(scope.matchers)
    clauses = []
    for tier in (t for t in BURN_TIERS if t.severity == severity):
        threshold = _num(burn_threshold(tier, days, objective.budget))
        traffic = TRAFFIC_RECORD.format(window=tier.long)
        clauses.append(
            f"({objective.ratio_record(tier.long)}{sel} > {threshold} "
            f"and {objective.ratio_record(tier.short)}{sel} > {threshold} "
            f"and {enough_traffic(traffic + sel, tier.long)})"
        )
    return " or ".join(clauses)


def burn_text(slo: SLO, objective: RatioSLO, severity: str) -> str:
    days = slo.objectives.slo_window_days
    tiers = [t for t in BURN_TIERS if t.severity == severity]
    return ", or ".join(
        f"{_num(burn_rate(t, days))}x over {t.long} and {t.short} (more than "
        f"{_num(burn_threshold(t, days, objective.budget) * 100)}% of requests)"
        for t in tiers
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
        "window_days": objectives.slo_window_days,
        "classification": slo.model_task == "classification",
        "max_age_days": objectives.data_freshness.max_age_days,
    }


def expressions(slo: SLO, scope: Scope) -> dict[str, tuple[str, str]]:
    """alert name -> (PromQL expression, `for` duration), every threshold from slo.yaml."""
    o = _objectives(slo)
    base = scope.matchers
    burns = {
        name: (burn_expression(slo, scope, objective, severity), BURN_FOR)
        for objective in ratio_slos(slo)
        for name, severity in ((objective.page, "page"), (objective.ticket, "ticket"))
    }
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
        **burns,
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
        **{
            name: (
                f"{objective.what} (budget: {_num(objective.budget * 100)}% of requests over "
                f"{_num(o['window_days'])} days) {verb} the budget {burn_text(slo, objective, sev)}"
                f", with at least {MIN_REQUESTS} requests in the long window: {outcome}."
            )
            for objective in ratio_slos(slo)
            for name, sev, verb, outcome in (
                (
                    objective.page,
                    "page",
                    "burn",
                    "at that pace the budget is gone in days",
                ),
                (
                    objective.ticket,
                    "ticket",
                    "spend",
                    "at that pace the budget is gone before the SLO window ends",
                ),
            )
        },
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
    # Recording rules first: a group evaluates in order, so the alerts see this evaluation's ratios.
    rules: list[dict[str, Any]] = [*recording_rules(slo, scope)]
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
# promtool evaluates every rule at every step of the file's evaluation interval, so the interval
# sets the cost: 5 minutes for the alerts of minutes and hours, 1 hour for the 3-day window.
FAST_EVALUATION = "5m"
SLOW_EVALUATION = "1h"


def _series(metric: str, labels: Mapping[str, str], values: str) -> dict[str, str]:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{metric}{{{inner}}}", "values": values}


def _ramp(per_minute: float, minutes: int) -> str:
    """A counter growing by `per_minute` every minute (promtool expanding notation)."""
    return f"0+{_num(per_minute)}x{minutes}"


def _counter(segments: list[tuple[int, int]]) -> str:
    """A counter from 0 that grows by `count` per step for `steps` steps, segment after segment
    (promtool expanding notation). Whole counts: the segments join without a float step back,
    which rate() would take for a counter reset."""
    parts, total = ["0"], 0
    for count, steps in segments:
        if steps > 0:
            parts.append(f"{total + count}+{count}x{steps - 1}")
            total += count * steps
    return " ".join(parts)


def _ratio_traffic(
    objective: RatioSLO, le: str, labels: dict[str, str], segments: list[tuple[int, float, int]]
) -> list[dict[str, str]]:
    """(requests per step, bad share, steps) after one another, as the service counts."""
    bad = [(round(n * share), k) for n, share, k in segments]
    total = [(n, k) for n, _, k in segments]
    good = [(n - b, k) for (n, k), (b, _) in zip(total, bad, strict=True)]
    if objective.key == "errors":
        unscoped = {k: v for k, v in labels.items() if k not in ("route", "method")}
        return [
            _series(REQUESTS, {**labels, "status": "200"}, _counter(good)),
            _series(REQUESTS, {**labels, "status": "500"}, _counter(bad)),
            # 5xx of other routes (/readyz before the model loads) do not count.
            _series(
                REQUESTS,
                {**unscoped, "route": "/readyz", "method": "GET", "status": "503"},
                _counter(total),
            ),
        ]
    return [
        _series(f"{REQUEST_DURATION}_bucket", {**labels, "le": le}, _counter(good)),
        _series(f"{REQUEST_DURATION}_count", labels, _counter(total)),
        _series(REQUESTS, {**labels, "status": "200"}, _counter(total)),
    ]


Checks = Callable[[str, list[dict[str, str]], list[tuple[str, list[dict[str, str]]]], str], None]


def _ratio_tests(slo: SLO, scope: Scope, checks: Checks, severity: str) -> None:
    """The burn-rate alerts of both ratio objectives. page: a fast burn pages; a slow burn (the
    ticket's job) or another namespace's burn does not; a 5-minute blip does not (the long window
    stops it); a page stops minutes after the burn stops although the hour still holds it (the
    short window stops it); too little traffic never pages. ticket: the same for the slow tier."""
    days = slo.objectives.slo_window_days
    le = le_label(latency_target_seconds(slo.objectives.latency_p95_ms))
    base = {**scope.matchers, "instance": "replica-1"}
    predict = {**base, "route": PREDICT_ROUTE, "method": "POST"}
    other_predict = {**predict, "namespace": f"{scope.namespace}-other", "instance": "other-1"}
    job = {"job": scope.job}

    for objective in ratio_slos(slo):
        budget = objective.budget
        traffic = functools.partial(_ratio_traffic, objective, le)
        page = burn_threshold(BURN_TIERS[0], days, budget)
        pages = [burn_threshold(t, days, budget) for t in BURN_TIERS if t.severity == "page"]
        ticket = burn_threshold(BURN_TIERS[-1], days, budget)

        burning = min(0.99, 1.5 * page)  # 1.5x the fast tier's threshold
        slow = min(0.99, 2 * ticket)  # twice the slow tier's threshold (30 days: 2x the budget)
        if severity == "page":
            n = 10_000  # requests per minute
            checks(
                objective.page,
                traffic(predict, [(n, burning, 20)]),
                [("20m", [job])],
                "1m",
            )
            # This namespace burns slowly (or is within budget), another one burns fast.
            own = slow if slow < min(pages) else budget / 3
            checks(
                objective.page,
                traffic(predict, [(n, own, 365)]) + traffic(other_predict, [(n, burning, 365)]),
                [("365m", [])],
                "1m",
            )
            # Every request fails, but 12 an hour (72 in 6 hours): below the guard in each window.
            checks(
                objective.page,
                traffic(predict, [(1, 1.0, 75)]),
                [("360m", [])],
                "5m",
            )
            # (The burn must hold the threshold after 45 of its 50 minutes: not for budgets
            # whose fast-tier threshold is close to 100%.)
            if 0.75 * burning > page:
                # After 6 clean hours: a 5-minute blip, far above the threshold for its 5 minutes
                # but too small a share of the hour; then, an hour later, a 50-minute burn, which
                # pages and stops paging 10 minutes after it ends, while the hour still holds it.
                blip = min(1.0, 6 * page)
                series = [(n, 0.0, 360), (n, blip, 5), (n, 0.0, 65), (n, burning, 50), (n, 0.0, 20)]
                checks(
                    objective.page,
                    traffic(predict, series),
                    [("365m", []), ("370m", []), ("380m", []), ("480m", [job]), ("490m", [])],
                    "1m",
                )
            continue
        n = 600_000  # requests per hour
        checks(
            objective.ticket,
            traffic(predict, [(n, slow, 78)]),
            [("78h", [job])],
            "1h",
        )
        checks(
            objective.ticket,
            traffic(predict, [(n, budget / 2, 78)]) + traffic(other_predict, [(n, slow, 78)]),
            [("78h", [])],
            "1h",
        )
        # One request an hour, every one failing: 72 in 3 days, below the guard.
        checks(
            objective.ticket,
            traffic(predict, [(1, 1.0, 80)]),
            [("80h", [])],
            "1h",
        )
        # A burn that put 1.5x the threshold into the last 3 days but stopped 12 hours ago: the
        # 6-hour window is clean, no ticket for a problem that is over.
        hours = math.ceil(72 * ticket * 1.5)
        if hours <= 36:
            series = [(n, 0.0, 72 - hours - 12), (n, 1.0, hours), (n, 0.0, 12)]
            checks(
                objective.ticket,
                traffic(predict, series),
                [("72h", [])],
                "1h",
            )


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
    base = {**scope.matchers, "instance": "replica-1"}
    # The same service in another namespace (staging next to prod): never this scope's alert.
    other = {**base, "namespace": f"{scope.namespace}-other", "instance": "other-1"}
    predict = {**base, "route": PREDICT_ROUTE, "method": "POST"}
    tests: list[dict[str, Any]] = []

    checks = _checks(tests, slo, scope, runbook_base)

    def case(
        name: str, series: list[dict[str, str]], eval_time: str, firing: list[dict[str, str]]
    ) -> None:
        checks(name, series, [(eval_time, firing)], "1m")

    # Availability: no target up (down, or none at all) pages; another namespace's up does not help.
    case("ServiceUnavailable", [_series(UP, base, "0x20")], "10m", [{}])
    case("ServiceUnavailable", [_series(UP, other, "1x20")], "10m", [{}])
    case(
        "ServiceUnavailable",
        [_series(UP, base, "1x20"), _series(UP, {**base, "instance": "replica-2"}, "0x20")],
        "10m",
        [],
    )

    _ratio_tests(slo, scope, checks, "page")

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

    return {"rule_files": [rules_file], "evaluation_interval": FAST_EVALUATION, "tests": tests}


def build_slow_burn_tests(
    slo: SLO,
    rules_file: str = "alerts.yml",
    runbook_base: str = "docs/runbook.md",
    scope: Scope | None = None,
) -> dict[str, Any]:
    """observability/prometheus/alerts_slow_burn_test.yml: the ticket tier's tests need days of
    series; evaluated hourly (its own file: promtool has one evaluation interval per file), they
    take seconds instead of minutes."""
    scope = scope or local_scope(slo)
    tests: list[dict[str, Any]] = []
    _ratio_tests(slo, scope, _checks(tests, slo, scope, runbook_base), "ticket")
    return {"rule_files": [rules_file], "evaluation_interval": SLOW_EVALUATION, "tests": tests}


def _checks(tests: list[dict[str, Any]], slo: SLO, scope: Scope, runbook_base: str) -> Checks:
    def checks(
        name: str,
        series: list[dict[str, str]],
        evaluations: list[tuple[str, list[dict[str, str]]]],
        interval: str,
    ) -> None:
        """One test: `series`, and the alerts `name` fires at each (eval_time, firing labels)."""
        alert = BY_NAME[name]
        tests.append(
            {
                "interval": interval,
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
                    for eval_time, firing in evaluations
                ],
            }
        )

    return checks
