"""Render docs/slo.md from slo.yaml: the human-readable definition of done.

The output is a pure function of the typed slo.yaml (`slo.SLO`), so a test can regenerate it and
compare.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..slo import SLO
from .alerts import (
    ALERTS,
    BURN_TIERS,
    LOCAL_NAMESPACE,
    MIN_REQUESTS,
    Scope,
    burn_rate,
    burn_threshold,
    descriptions,
    ratio_slos,
)

HEADER = (
    "<!-- GENERATED from slo.yaml by `make ops` (ops render): edit slo.yaml, not this file. -->\n"
)


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ", ".join(_fmt(v) for v in value) if value else "(none)"
    if value is None:
        return "(unset)"
    return str(value)


def _flatten(prefix: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, Mapping):
        rows: list[tuple[str, Any]] = []
        for key in sorted(value, key=str):
            rows.extend(_flatten(f"{prefix}.{key}" if prefix else str(key), value[key]))
        return rows
    return [(prefix, value)]


def _table(rows: list[tuple[str, Any]]) -> list[str]:
    out = ["| setting | value |", "|---|---|"]
    out += [f"| `{key}` | {_fmt(val)} |" for key, val in rows]
    return out


def _section(title: str, intro: str, data: Any) -> list[str]:
    if not isinstance(data, Mapping):
        return []
    rows = _flatten("", data)
    if not rows:
        return []
    return ["", f"## {title}", "", intro, "", *_table(rows)]


def render_slo_doc(slo: SLO) -> str:
    """Markdown for docs/slo.md; every number comes from `slo` (the parsed slo.yaml)."""
    objectives = slo.objectives
    quality = objectives.quality
    cost = objectives.cost
    drift = slo.drift

    lines = [HEADER.rstrip("\n"), f"# Service level objectives: {slo.service}", ""]
    lines.append(
        "The definition of done of this service. `slo.yaml` is the one source: "
        "the evaluation gate, the alert rules, the dashboards, the load test "
        "and this page all read it. "
        "A change to an objective is a reviewed change to `slo.yaml`."
    )
    rate = objectives.max_error_rate
    op = "≥" if quality.higher_is_better else "≤"
    lines += [
        "",
        "## Objectives",
        "",
        "| objective | target | measured by | enforced by |",
        "|---|---|---|---|",
        f"| Latency | p95 of `POST /predict` ≤ {_fmt(objectives.latency_p95_ms)} ms "
        "| `slipway_http_request_duration_seconds` "
        "| alerts `LatencySLOBurnRate` (page), `LatencySLOSlowBurn` (ticket); `make loadtest` |",
        f"| Errors | 5xx responses ≤ {rate:.4g} of requests ({rate * 100:.4g}%) "
        '| `slipway_http_requests_total{status=~"5.."}` '
        "| alerts `ErrorRateSLOBreach` (page), `ErrorRateSLOSlowBurn` (ticket) |",
        f"| Quality | {quality.metric} {op} {_fmt(quality.threshold)} on the golden set, and at "
        f"most {_fmt(quality.max_regression_vs_champion)} worse than the champion "
        "| `reports/eval.json` | `make evaluate` (exit 1 blocks promotion) |",
        f"| Cost | ≤ ${_fmt(cost.ceiling_per_1k_predictions_usd)} per 1,000 predictions "
        "| `slipway_prediction_cost_usd` | alert `CostPerPredictionAboveCeiling` |",
        f"| Drift | PSI ≤ {_fmt(drift.psi_alert_threshold)} per feature over the last "
        f"{_fmt(drift.window_size)} predictions "
        "| `slipway_feature_drift_psi` | alert `FeatureDriftHigh` |",
        "| Availability | the model is loaded in every serving replica "
        "| `slipway_model_ready` | alert `ModelNotReady`; `/readyz` |",
    ]
    lines += [
        "",
        "## Error budgets and burn-rate alerts",
        "",
        f"Latency and errors are ratio objectives: over the SLO window of "
        f"{objectives.slo_window_days} days (`objectives.slo_window_days`), at most the budget's "
        "share of `POST /predict` requests may be slower than the target or answered with a 5xx. "
        "Each tier fires when the budget burns at its rate over the long window **and** over the "
        "short one (the long window ignores blips, the short one stops the alert soon after the "
        f"burn stops), with at least {MIN_REQUESTS} requests in the long window. The burn rate is "
        "the share of the window's budget a tier allows to spend in its long window, times the "
        "SLO window over the long window (never below 1).",
        "",
        *burn_table(slo),
    ]
    price, ceiling = cost.instance_hourly_price_usd, cost.ceiling_per_1k_predictions_usd
    # Below this sustained throughput one instance costs more per prediction than the ceiling.
    min_rps = price / 3600.0 / (ceiling / 1000.0)
    lines += [
        "",
        "### Cost model",
        "",
        f"One serving instance costs ${_fmt(price)} per hour. To stay under "
        f"${_fmt(ceiling)} per 1,000 predictions, each instance must serve at least "
        f"**{min_rps:.3g} predictions per second** on average (hourly price / 3600 / "
        "(ceiling / 1000)). Idle replicas are what usually breaks this objective.",
    ]
    lines += _section(
        "Rollback rule",
        "When the champion is rolled back to the previous one "
        "(procedure: [runbook, model rollback](runbook.md#model-rollback)).",
        slo.rollback.model_dump(),
    )
    lines += _section(
        "Guardrails",
        "Request-time checks: inputs outside the data contract are rejected or flagged "
        "(`out_of_range`), oversized requests are refused, low-confidence predictions abstain "
        "(alert `GuardrailRejectionsHigh`).",
        slo.guardrails.model_dump(),
    )
    return "\n".join(lines) + "\n"


def burn_table(slo: SLO) -> list[str]:
    """One row per ratio objective and burn-rate tier: windows, rate, threshold, alert."""
    days = slo.objectives.slo_window_days
    lines = [
        "| objective | budget | alert | long window | short window | burn rate | fires above "
        "| budget spent when it fires |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for objective in ratio_slos(slo):
        for tier in BURN_TIERS:
            alert = objective.page if tier.severity == "page" else objective.ticket
            rate = burn_rate(tier, days)
            share = rate * _seconds(tier.long) / (days * 86400)
            lines.append(
                f"| {'latency' if objective.key == 'slow' else 'errors'} "
                f"| {objective.budget * 100:.4g}% of requests "
                f"| `{alert}` ({tier.severity}) | {tier.long} | {tier.short} | {rate:.4g}x "
                f"| {burn_threshold(tier, days, objective.budget) * 100:.4g}% of requests "
                f"| {share * 100:.3g}% |"
            )
    return lines


def _seconds(window: str) -> int:
    return int(window[:-1]) * {"m": 60, "h": 3600, "d": 86400}[window[-1]]


# ---- docs/runbook.md: the numbers of each alert section come from slo.yaml -------------------
# The runbook is written by hand, except the blocks between these markers, which `make ops`
# rewrites (and `make ops-check` compares): an edited slo.yaml can never leave a stale number.
BLOCK_BEGIN = (
    "<!-- BEGIN GENERATED {name}: from {source} by `make ops`; edit {source}, not this -->"
)
# Where a block's content comes from (slo.yaml unless named here).
BLOCK_SOURCES = {"environments": "deploy/k8s/overlays"}
BLOCK_END = "<!-- END GENERATED {name} -->"

_IMPACT = {
    "ServiceUnavailable": "Nothing serves: callers get connection errors or 503 from the edge.",
    "LatencySLOBurnRate": "Callers see slow answers or time out.",
    "LatencySLOSlowBurn": "Callers see slow answers now and then; the objective will be missed.",
    "ErrorRateSLOBreach": "Callers get errors.",
    "ErrorRateSLOSlowBurn": "Callers get errors now and then; the objective will be missed.",
    "FeatureDriftHigh": "Quality may degrade silently.",
    "CostPerPredictionAboveCeiling": "Nothing is broken for callers; the service costs too much.",
    "ModelNotReady": "The pod is taken out of the Service; `POST /predict` answers 503 there.",
    "GuardrailRejectionsHigh": "Callers get 4xx answers instead of predictions.",
    "TrainingDataStale": "The model no longer learns from recent data; quality lags the world.",
}


def _runbook_objectives(slo: SLO) -> str:
    o, cost = slo.objectives, slo.objectives.cost
    rows = [
        ("p95 latency of `POST /predict`", f"≤ {_fmt(o.latency_p95_ms)} ms"),
        (
            "5xx share of `POST /predict`",
            f"≤ {o.max_error_rate:.4g} ({o.max_error_rate * 100:.4g}%)",
        ),
        ("cost per 1,000 predictions", f"≤ ${_fmt(cost.ceiling_per_1k_predictions_usd)}"),
        ("instance price", f"${_fmt(cost.instance_hourly_price_usd)} per hour"),
        (
            "feature drift (PSI)",
            f"≤ {_fmt(slo.drift.psi_alert_threshold)} over the last {slo.drift.window_size} inputs",
        ),
        ("training data age", f"≤ {_fmt(o.data_freshness.max_age_days)} days"),
        ("SLO window (error budgets)", f"{o.slo_window_days} days"),
        ("rollback after a breach of", f"{slo.rollback.breach_window_minutes} minutes"),
        ("ratio alerts need at least", f"{MIN_REQUESTS} requests in their window"),
    ]
    lines = ["| objective (slo.yaml) | in force |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


def _environments(scopes: Sequence[Scope]) -> str:
    lines = ["| environment | namespace (`NS`) |", "|---|---|"]
    lines.append(f"| local compose stack | `{LOCAL_NAMESPACE}` |")
    lines += [f"| {s.environment} | `{s.namespace}` |" for s in scopes]
    return "\n".join(lines)


def runbook_blocks(slo: SLO, scopes: Sequence[Scope] = ()) -> dict[str, str]:
    """block name -> its generated Markdown: the objectives and burn-rate tables, the namespace of
    each environment (from the overlays) and each alert's symptom."""
    texts = descriptions(slo)
    blocks = {
        "objectives": _runbook_objectives(slo),
        "burn_rates": "\n".join(burn_table(slo)),
        "environments": _environments(scopes),
    }
    for alert in ALERTS:
        text = texts[alert.name].replace("{{ $labels.feature }}", "one input feature")
        blocks[alert.name] = f"**Symptom.** {text} {_IMPACT.get(alert.name, '')}".rstrip()
    return blocks


def fill_runbook(text: str, slo: SLO, scopes: Sequence[Scope] = ()) -> str:
    """`text` with every generated block rewritten; a block missing from `text` is skipped."""
    for name, body in runbook_blocks(slo, scopes).items():
        source = BLOCK_SOURCES.get(name, "slo.yaml")
        begin, end = BLOCK_BEGIN.format(name=name, source=source), BLOCK_END.format(name=name)
        head, found, rest = text.partition(begin)
        if not found or end not in rest:
            continue
        text = f"{head}{begin}\n{body}\n{end}{rest.split(end, 1)[1]}"
    return text
