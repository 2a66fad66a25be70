"""The model card (docs/model-card.md): team-written prose plus blocks filled from the eval report.

`<pkg> model-card` reads reports/eval.json (written by `<pkg> evaluate`), slo.yaml,
data/contract.yaml and .copier-answers.yml, and replaces only the blocks between
`<!-- model-card:begin NAME -->` and `<!-- model-card:end NAME -->`; everything else in the card
(intended use, limitations, ...) belongs to the team and is kept as written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .._template import TEMPLATE_VERSION

BLOCKS = ("details", "data", "evaluation")
_BLOCK = re.compile(
    r"(<!-- model-card:begin (?P<name>[a-z]+) -->\n)(?P<body>.*?)"
    r"(<!-- model-card:end (?P=name) -->)",
    re.S,
)

SKELETON = """# Model card: {project_name}

{description}

## Model details

<!-- model-card:begin details -->
<!-- model-card:end details -->

## Intended use

_Team: who uses the predictions, for which decision, and who reviews them._

## Out-of-scope uses

_Team: decisions this model must not be used for, populations it was not built for._

## Training data and its contract

<!-- model-card:begin data -->
<!-- model-card:end data -->

## Evaluation

<!-- model-card:begin evaluation -->
<!-- model-card:end evaluation -->

## Limitations

_Team: known failure modes, data gaps, what the golden set does not cover._

## Owner

Owned by `{owner_team}`; on-call: {oncall_contact}. Operations: [runbook](runbook.md),
objectives: [SLO page](slo.md).
"""


# Appended when a team removed the markers: the command never drops team-written text.
APPENDIX = "".join(
    f"\n## Generated: {name}\n\n<!-- model-card:begin {name} -->\n<!-- model-card:end {name} -->\n"
    for name in BLOCKS
)


def _num(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int | float):
        return f"{value:.4f}" if isinstance(value, float) else str(value)
    return str(value)


def _details(report: Mapping[str, Any], answers: Mapping[str, Any]) -> list[str]:
    model = report["model"]
    data_hash = model.get("training_data_hash") or "unknown"
    return [
        "| | |",
        "|---|---|",
        f"| Registered model | `{model['name']}` version {model['version']} "
        f"(evaluated as alias `{model['alias']}`) |",
        f"| Task | {report['task']} |",
        f"| Training data sha256 | `{data_hash}` |",
        *_snapshot_rows(model.get("training_data") or {}),
        f"| Evaluated at | {report['generated_at']} |",
        f"| Eval gate | {'passed' if report['passed'] else 'FAILED'} |",
        f"| Template version | `{answers.get('_commit', TEMPLATE_VERSION)}` |",
        f"| Owner | `{answers.get('owner_team', 'unknown')}` |",
    ]


def _snapshot_rows(data: Mapping[str, Any]) -> list[str]:
    """The training snapshot (`ingest`): where it came from, how big, when it was read."""
    if not data:
        return []
    query = f", query `{data['query']}`" if data.get("query") else ""
    return [
        f"| Training data | `{data.get('source')}`{query}, {data.get('rows')} rows, "
        f"ingested {data.get('created_at')} |"
    ]


def _data(report: Mapping[str, Any], contract: Mapping[str, Any]) -> list[str]:
    features = contract.get("features") or []
    dataset = report["dataset"]
    lines = [
        f"Every training and evaluation file, and every request, is checked against "
        f"`data/contract.yaml`: {len(features)} features, target `{contract.get('target')}` "
        f"({contract.get('target_dtype', 'float')}).",
    ]
    classes = contract.get("classes") or {}
    if classes:
        names = ", ".join(f"{key} = {value}" for key, value in classes.items())
        lines[0] += f" Classes: {names}."
    lines += [
        "",
        f"Golden (evaluation) set: `{dataset['path']}`, {dataset['rows']} rows, "
        f"sha256 `{dataset['sha256']}`; never used for training.",
        "",
        "| feature | type | range or allowed values | nullable |",
        "|---|---|---|---|",
    ]
    for spec in features:
        if spec.get("allowed") is not None:
            domain = ", ".join(str(v) for v in spec["allowed"])
        else:
            low, high = spec.get("min"), spec.get("max")
            domain = f"[{'' if low is None else low}, {'' if high is None else high}]"
        nullable = "yes" if spec.get("nullable") else "no"
        lines.append(f"| `{spec['name']}` | {spec.get('dtype', 'float')} | {domain} | {nullable} |")
    return lines


def _evaluation(report: Mapping[str, Any], slo: Mapping[str, Any]) -> list[str]:
    gate = report["slo"]
    comparison = "≥" if gate.get("higher_is_better", True) else "≤"
    metric = gate["metric"]
    value = report["metrics"].get(metric)
    champion = report.get("champion") or {}
    champion_metrics = champion.get("metrics") or {}
    header = (
        f"| metric | value | champion v{champion['version']} |"
        if champion
        else "| metric | value |"
    )
    lines = [
        f"Eval gate **{'passed' if report['passed'] else 'FAILED'}** on the golden set: "
        f"{metric} = {_num(value)}, required {comparison} {gate['threshold']} "
        f"(`slo.yaml`).",
        "",
        header,
        "|---|---|---|" if champion else "|---|---|",
    ]
    for name, metric_value in report["metrics"].items():
        row = f"| {name} | {_num(metric_value)} |"
        if champion:
            row += f" {_num(champion_metrics.get(name))} |"
        lines.append(row)
    lines += ["", "| check | result | detail |", "|---|---|---|"]
    for check in report["checks"]:
        result = "pass" if check["passed"] else "FAIL"
        lines.append(f"| {check['name']} | {result} | {check['detail']} |")
    objectives = slo.get("objectives") or {}
    cost = objectives.get("cost") or {}
    lines += [
        "",
        "Serving objectives (see [SLO page](slo.md)): p95 latency ≤ "
        f"{objectives.get('latency_p95_ms')} ms, error rate ≤ {objectives.get('max_error_rate')}, "
        f"cost ≤ ${cost.get('ceiling_per_1k_predictions_usd')} per 1,000 predictions.",
    ]
    if report.get("plot"):
        lines += [
            "",
            f"Plot: `reports/{report['plot']}` (also logged to the MLflow run under `eval/`).",
        ]
    return lines


def render_model_card(
    report: Mapping[str, Any],
    slo: Mapping[str, Any],
    contract: Mapping[str, Any],
    answers: Mapping[str, Any],
    existing: str | None = None,
) -> str:
    """The card with its generated blocks filled; team-written text of `existing` is kept."""
    if existing is None:
        text = SKELETON.format(
            project_name=answers.get("project_name", report["model"]["name"]),
            description=answers.get("description", ""),
            owner_team=answers.get("owner_team", "unknown"),
            oncall_contact=answers.get("oncall_contact", "unknown"),
        )
    elif _BLOCK.search(existing):
        text = existing
    else:
        text = existing.rstrip("\n") + "\n" + APPENDIX
    bodies = {
        "details": _details(report, answers),
        "data": _data(report, contract),
        "evaluation": _evaluation(report, slo),
    }

    def fill(match: re.Match[str]) -> str:
        body = bodies.get(match.group("name"))
        if body is None:
            return match.group(0)
        return match.group(1) + "\n".join(body) + "\n" + match.group(4)

    return _BLOCK.sub(fill, text)


def _yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded if isinstance(loaded, dict) else {}


def write_model_card(
    report_path: Path,
    out_path: Path,
    slo_path: Path,
    contract_path: Path,
    answers_path: Path,
) -> Path:
    if not report_path.exists():
        raise FileNotFoundError(f"{report_path} not found: run `evaluate` first")
    report = json.loads(report_path.read_text(encoding="utf-8"))
    existing = out_path.read_text(encoding="utf-8") if out_path.exists() else None
    card = render_model_card(
        report, _yaml(slo_path), _yaml(contract_path), _yaml(answers_path), existing
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(card, encoding="utf-8")
    return out_path


def main(settings: Any = None, out: Path | None = None) -> int:
    """`<pkg> model-card`: fill docs/model-card.md from reports/eval.json."""
    from ..config import PROJECT_ROOT, Settings

    settings = settings or Settings()
    path = write_model_card(
        report_path=settings.reports_dir / "eval.json",
        out_path=out or PROJECT_ROOT / "docs" / "model-card.md",
        slo_path=settings.slo_path,
        contract_path=settings.contract_path,
        answers_path=PROJECT_ROOT / ".copier-answers.yml",
    )
    print(f"model card written to {path}")
    return 0
