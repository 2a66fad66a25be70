"""The model card (docs/model-card.md): team-written prose plus blocks filled from the eval report.

`<pkg> model-card` asks the registry for the CHAMPION, fetches that version's own eval report
(`eval/eval.json` and its plot, logged to the version's run by `<pkg> evaluate`), reads the model
type and parameters from the champion itself, and refuses a report that is not the champion's
(`--report FILE` of another version: refused, or with `--allow-non-champion` written under a
loud warning). With slo.yaml, data/contract.yaml and .copier-answers.yml it replaces only the
blocks between `<!-- model-card:begin NAME -->` and `<!-- model-card:end NAME -->`; everything
else in the card (intended use, limitations, ...) belongs to the team and is kept as written.
The plot is copied next to the card (docs/model-card-<plot>.png, committed with it) and linked.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .._template import TEMPLATE_VERSION
from ..errors import RegistryError


class NotChampionReport(RegistryError):
    """The eval report describes another version than the champion."""


@dataclass(frozen=True)
class ChampionFacts:
    """What the registry says about the champion, beyond its eval report."""

    version: str
    model_type: str = "unknown"
    parameters: dict[str, str] = field(default_factory=dict)
    data_snapshot: str = ""
    warning: str = ""


def not_the_champions(report: Mapping[str, Any], champion_version: str | None) -> str:
    """Why `report` is not the champion's own eval report ("" when it is)."""
    if champion_version is None:
        return "there is no champion yet: promote a gated version first"
    reported = str((report.get("model") or {}).get("version"))
    if reported != str(champion_version):
        return (
            f"the eval report is of version {reported}, but the champion is version "
            f"{champion_version}: the card must describe the model in service"
        )
    return ""


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


def _details(
    report: Mapping[str, Any], answers: Mapping[str, Any], facts: ChampionFacts | None
) -> list[str]:
    model = report["model"]
    data_hash = model.get("training_data_hash") or "unknown"
    lines = []
    if facts is not None and facts.warning:
        lines += [f"> **WARNING: NOT THE CHAMPION'S REPORT.** {facts.warning}.", ""]
    lines += [
        "| | |",
        "|---|---|",
        f"| Registered model | `{model['name']}` version {model['version']} "
        f"(evaluated as alias `{model['alias']}`) |",
    ]
    if facts is not None:
        params = ", ".join(f"`{k}={v}`" for k, v in sorted(facts.parameters.items()))
        lines += [
            f"| Champion | version {facts.version} |",
            f"| Model type | {facts.model_type} |",
            f"| Parameters | {params or 'none recorded'} |",
            f"| Training data snapshot | {facts.data_snapshot} |",
        ]
    gate = report["checks"] if isinstance(report.get("checks"), list) else []
    outcome = "; ".join(f"{c['name']} {'pass' if c['passed'] else 'FAIL'}" for c in gate)
    lines += [
        f"| Task | {report['task']} |",
        f"| Training data sha256 | `{data_hash}` |",
        f"| Evaluated at | {report['generated_at']} |",
        f"| Eval gate | {'passed' if report['passed'] else 'FAILED'} ({outcome}) |",
        f"| Template version | `{answers.get('_commit', TEMPLATE_VERSION)}` |",
        f"| Owner | `{answers.get('owner_team', 'unknown')}` |",
    ]
    return lines


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
            f"![{report['plot']}]({plot_link(report['plot'])}) (golden set; the same file is "
            "logged to the version's MLflow run under `eval/`)",
        ]
    return lines


def plot_link(plot: str) -> str:
    """Where the card's copy of the eval plot lives, relative to the card (committed with it)."""
    return f"model-card-{Path(plot).name}"


def render_model_card(
    report: Mapping[str, Any],
    slo: Mapping[str, Any],
    contract: Mapping[str, Any],
    answers: Mapping[str, Any],
    existing: str | None = None,
    facts: ChampionFacts | None = None,
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
        "details": _details(report, answers, facts),
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
    facts: ChampionFacts | None = None,
) -> Path:
    if not report_path.exists():
        raise FileNotFoundError(f"{report_path} not found: run `evaluate` first")
    report = json.loads(report_path.read_text(encoding="utf-8"))
    existing = out_path.read_text(encoding="utf-8") if out_path.exists() else None
    card = render_model_card(
        report, _yaml(slo_path), _yaml(contract_path), _yaml(answers_path), existing, facts
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    plot = report.get("plot")
    if plot and (report_path.parent / plot).exists():
        shutil.copyfile(report_path.parent / plot, out_path.parent / plot_link(plot))
    out_path.write_text(card, encoding="utf-8")
    return out_path


def champion_facts(registry: Any, version: Any, warning: str = "") -> ChampionFacts:
    """Model type, parameters and data snapshot of the champion, from the registry itself."""
    from ..data.snapshots import describe_snapshot
    from ..lifecycle import CHAMPION

    model = registry.load(CHAMPION)
    steps = getattr(model.pipeline, "steps", None) or [("model", model.pipeline)]
    model_type = " → ".join(f"{name}: `{type(step).__name__}`" for name, step in steps)
    parameters: dict[str, str] = {}
    if version.run_id:
        run = registry.client.get_run(version.run_id)
        parameters = {k: str(v) for k, v in (run.data.params or {}).items()}
    snapshot = describe_snapshot(model.training_data)  # recorded by `train` from `ingest`
    return ChampionFacts(str(version.version), model_type, parameters, snapshot, warning)


def fetch_eval_report(registry: Any, version: Any, folder: Path) -> Path:
    """The version's own eval report (and plot), downloaded from its run's `eval/` artifacts."""
    if not version.run_id:
        raise RegistryError(f"version {version.version} has no run: no eval report to fetch")
    try:
        registry.client.download_artifacts(version.run_id, "eval", str(folder))
    except Exception as error:  # MLflow raises several types for a missing artifact
        raise RegistryError(
            f"version {version.version} has no eval report in the registry ({error}): "
            "run `evaluate --alias champion`"
        ) from error
    report = folder / "eval" / "eval.json"
    if not report.exists():
        raise RegistryError(f"version {version.version} has no eval/eval.json in the registry")
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--report",
        type=Path,
        default=None,
        help="an eval.json to use instead of the champion's own (refused unless it is the "
        "champion's)",
    )
    parser.add_argument(
        "--allow-non-champion",
        action="store_true",
        help="write the card from a report of another version, under a loud warning",
    )


def main(
    settings: Any = None,
    out: Path | None = None,
    report: Path | None = None,
    allow_non_champion: bool = False,
) -> int:
    """`<pkg> model-card`: fill docs/model-card.md from the champion's own eval report."""
    from ..config import PROJECT_ROOT, Settings
    from ..lifecycle import CHAMPION
    from ..registry import Registry

    settings = settings or Settings()
    if report is not None and not report.exists():
        raise FileNotFoundError(f"{report} not found: run `evaluate` first")
    registry = Registry.from_settings(settings)
    champion = registry.get_alias(CHAMPION)
    with tempfile.TemporaryDirectory(prefix="model-card-") as tmp:
        if champion is None:
            raise RegistryError(not_the_champions({}, None))
        report_path = report or fetch_eval_report(registry, champion, Path(tmp))
        problem = not_the_champions(json.loads(report_path.read_text("utf-8")), champion.version)
        if problem and not allow_non_champion:
            raise NotChampionReport(
                f"{problem}; refusing to write the model card (--allow-non-champion to write it "
                "under a warning)"
            )
        if problem:
            print(f"WARNING: {problem}", file=sys.stderr)
        path = write_model_card(
            report_path=report_path,
            out_path=out or PROJECT_ROOT / "docs" / "model-card.md",
            slo_path=settings.slo_path,
            contract_path=settings.contract_path,
            answers_path=PROJECT_ROOT / ".copier-answers.yml",
            facts=champion_facts(registry, champion, problem),
        )
    print(f"model card of champion version {champion.version} written to {path}")
    return 0
