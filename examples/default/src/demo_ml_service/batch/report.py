"""What a batch run reports: a JSON summary and its Markdown (also appended to the CI job summary
when `GITHUB_STEP_SUMMARY` is set), and the same figures pushed to a Prometheus Pushgateway
when one is configured (`--pushgateway URL` or `SERVICE_BATCH_PUSHGATEWAY_URL`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..ops.metrics import PREFIX

BATCH_ROWS = f"{PREFIX}_batch_rows"
BATCH_DURATION = f"{PREFIX}_batch_duration_seconds"
BATCH_COST = f"{PREFIX}_batch_cost_usd"
BATCH_LAST_SUCCESS = f"{PREFIX}_batch_last_success_timestamp_seconds"
PUSHGATEWAY_VARIABLE = "SERVICE_BATCH_PUSHGATEWAY_URL"
PUSH_JOB = "batch-score"


def markdown(summary: dict[str, Any], drift: dict[str, Any] | None) -> str:
    model = summary["model"]
    lines = [
        f"# Batch scoring: {model['name']} version {model['version']} ({summary['engine']})",
        "",
        f"Input `{summary['input']}` ({summary['input_digest']}) -> `{summary['output']}`.",
        "",
        "| rows | scored | predicted | flagged | abstain | refused | seconds | USD | USD/1k |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {summary['rows']} | {summary['scored']} | {summary['predicted']} | "
        f"{summary['flagged']} | {summary['abstain']} | {summary['refused']} | "
        f"{summary['duration_seconds']:g} | {summary['cost_usd']:.6f} | "
        f"{summary['cost_per_1k_usd']:.6f} |",
        "",
        f"Cost ceiling {summary['cost_ceiling_per_1k_usd']:g} USD per 1k predictions "
        f"(slo.yaml): {'within' if summary['within_cost_ceiling'] else 'ABOVE'}.",
    ]
    if drift is not None:
        drifted = drift["drifted"]
        lines += [
            "",
            f"Drift of the scored inputs ({drift['rows']} sampled rows) vs the training "
            f"reference: {', '.join(drifted) if drifted else 'no feature'} above PSI "
            f"{drift['threshold']:g}.",
        ]
    return "\n".join(lines) + "\n"


def write_summary(
    summary: dict[str, Any], drift: dict[str, Any] | None, out_dir: Path
) -> list[Path]:
    """out_dir/summary.{json,md}, and the Markdown appended to the CI job summary if any."""
    out_dir.mkdir(parents=True, exist_ok=True)
    document = {**summary, "drift": drift}
    json_path, md_path = out_dir / "summary.json", out_dir / "summary.md"
    json_path.write_text(json.dumps(document, indent=2, sort_keys=True), encoding="utf-8")
    text = markdown(summary, drift)
    md_path.write_text(text, encoding="utf-8")
    written = [json_path, md_path]
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as handle:
            handle.write(text)
        written.append(Path(step_summary))
    return written


def push(summary: dict[str, Any], url: str, timeout: float = 10.0) -> None:
    """Push the run's figures to a Pushgateway (job `batch-score`, grouped by model name)."""
    from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

    registry = CollectorRegistry()
    labels = ("model_name", "model_version", "engine")
    values = (summary["model"]["name"], summary["model"]["version"], summary["engine"])
    rows = Gauge(
        BATCH_ROWS,
        "Rows of the last batch run, by outcome",
        (*labels, "outcome"),
        registry=registry,
    )
    for outcome in ("predicted", "flagged", "abstain", "refused"):
        rows.labels(*values, outcome).set(summary[outcome])
    Gauge(BATCH_DURATION, "Duration of the last batch run", labels, registry=registry).labels(
        *values
    ).set(summary["duration_seconds"])
    Gauge(BATCH_COST, "Estimated cost of the last batch run", labels, registry=registry).labels(
        *values
    ).set(summary["cost_usd"])
    Gauge(BATCH_LAST_SUCCESS, "When the last batch run finished", labels, registry=registry).labels(
        *values
    ).set_to_current_time()
    push_to_gateway(
        url,
        job=PUSH_JOB,
        registry=registry,
        grouping_key={"model_name": summary["model"]["name"]},
        timeout=timeout,
    )
