"""Render docs/slo.md from slo.yaml: the human-readable definition of done.

Only the standard library is used here (the ops package must import with PyYAML alone), and the
output is a pure function of the parsed slo.yaml, so a test can regenerate it and compare.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

HEADER = (
    "<!-- GENERATED from slo.yaml by `make ops` (ops render): edit slo.yaml, not this file. -->\n"
)

# Metrics for which a smaller value is better (the gate treats the threshold as a ceiling).
LOWER_IS_BETTER = {"rmse", "mae", "mse", "log_loss"}

_DESCRIBED = {
    ("objectives", "latency_p95_ms"),
    ("objectives", "max_error_rate"),
    ("objectives", "quality"),
    ("objectives", "cost"),
    ("drift", "psi_alert_threshold"),
    ("drift", "window_size"),
}


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


def render_slo_doc(slo: Mapping[str, Any]) -> str:
    """Markdown for docs/slo.md; every number comes from `slo` (the parsed slo.yaml)."""
    objectives = slo.get("objectives") or {}
    quality = objectives.get("quality") or {}
    cost = objectives.get("cost") or {}
    drift = slo.get("drift") or {}

    service = slo.get("service")
    title = f"# Service level objectives: {service}" if service else "# Service level objectives"
    lines = [HEADER.rstrip("\n"), title, ""]
    lines.append(
        "The definition of done of this service. `slo.yaml` is the one source: "
        "the evaluation gate, the alert rules, the dashboards, the load test "
        "and this page all read it. "
        "A change to an objective is a reviewed change to `slo.yaml`."
    )
    lines += [
        "",
        "## Objectives",
        "",
        "| objective | target | measured by | enforced by |",
        "|---|---|---|---|",
    ]

    if "latency_p95_ms" in objectives:
        lines.append(
            f"| Latency | p95 of `POST /predict` ≤ {_fmt(objectives['latency_p95_ms'])} ms "
            "| `slipway_http_request_duration_seconds` "
            "| alert `LatencySLOBurnRate`; `make loadtest` |"
        )
    if "max_error_rate" in objectives:
        rate = float(objectives["max_error_rate"])
        lines.append(
            f"| Errors | 5xx responses ≤ {rate:.4g} of requests ({rate * 100:.4g}%) "
            '| `slipway_http_requests_total{status=~"5.."}` | alert `ErrorRateSLOBreach` |'
        )
    if quality:
        metric = str(quality.get("metric", "?"))
        op = "≤" if metric in LOWER_IS_BETTER else "≥"
        regression = quality.get("max_regression_vs_champion")
        vs_champion = (
            f", and at most {_fmt(regression)} worse than the champion"
            if regression is not None
            else ""
        )
        lines.append(
            f"| Quality | {metric} {op} {_fmt(quality.get('threshold'))} "
            f"on the golden set{vs_champion} "
            "| `reports/eval.json` | `make evaluate` (exit 1 blocks promotion) |"
        )
    if cost:
        ceiling = cost.get("ceiling_per_1k_predictions_usd")
        lines.append(
            f"| Cost | ≤ ${_fmt(ceiling)} per 1,000 predictions "
            "| `slipway_prediction_cost_usd` | alert `CostPerPredictionAboveCeiling` |"
        )
    if "psi_alert_threshold" in drift:
        window = drift.get("window_size")
        over = f" over the last {_fmt(window)} predictions" if window is not None else ""
        lines.append(
            f"| Drift | PSI ≤ {_fmt(drift['psi_alert_threshold'])} per feature{over} "
            "| `slipway_feature_drift_psi` | alert `FeatureDriftHigh` |"
        )
    lines += [
        "| Availability | the model is loaded in every serving replica "
        "| `slipway_model_ready` | alert `ModelNotReady`; `/readyz` |",
    ]

    price = cost.get("instance_hourly_price_usd")
    ceiling = cost.get("ceiling_per_1k_predictions_usd")
    if price and ceiling:
        # Below this sustained throughput one instance costs more per prediction than the ceiling.
        min_rps = float(price) / 3600.0 / (float(ceiling) / 1000.0)
        lines += [
            "",
            "### Cost model",
            "",
            f"One serving instance costs ${_fmt(price)} per hour. To stay under "
            f"${_fmt(ceiling)} per 1,000 predictions, each instance must serve at least "
            f"**{min_rps:.3g} predictions per second** on average (hourly price / 3600 / "
            "(ceiling / 1000)). Idle replicas are what usually breaks this objective.",
        ]

    rest = {k: v for k, v in objectives.items() if ("objectives", k) not in _DESCRIBED}
    if rest:
        lines += _section("Other objectives", "Further keys under `objectives`.", rest)
    lines += _section(
        "Rollback rule",
        "When the champion is rolled back to the previous one "
        "(procedure: [runbook, model rollback](runbook.md#model-rollback)).",
        slo.get("rollback"),
    )
    lines += _section(
        "Guardrails",
        "Request-time checks: inputs outside the data contract are rejected or flagged "
        "(`out_of_range`), oversized requests are refused, low-confidence predictions abstain "
        "(alert `GuardrailRejectionsHigh`).",
        slo.get("guardrails"),
    )
    extra_drift = {k: v for k, v in drift.items() if ("drift", k) not in _DESCRIBED}
    lines += _section("Drift settings", "Further drift settings.", extra_drift)
    known = {"objectives", "rollback", "guardrails", "drift", "service"}
    others = {k: v for k, v in slo.items() if k not in known}
    lines += _section("Other settings", "Further keys of `slo.yaml`.", others)
    return "\n".join(lines) + "\n"
