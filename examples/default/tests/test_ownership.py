"""Ownership and operations are checked like code: alerts <-> runbook, CODEOWNERS, the catalog
entry, the SLO page and the model card."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from demo_ml_service.artifact import LoadedModel
from demo_ml_service.config import PROJECT_ROOT, Settings
from demo_ml_service.ops.slo_doc import render_slo_doc
from demo_ml_service.slo import load_slo
from demo_ml_service.tools.model_card import write_model_card

RUNBOOK = PROJECT_ROOT / "docs" / "runbook.md"
ALERT_RULES = PROJECT_ROOT / "observability" / "prometheus" / "alerts.yml"
CODEOWNERS = PROJECT_ROOT / ".github" / "CODEOWNERS"
PROVIDER = "github"
CATALOG = PROJECT_ROOT / "catalog-info.yaml"
ANSWERS = PROJECT_ROOT / ".copier-answers.yml"

# Paths that are never committed: a CODEOWNERS pattern must match something else.
UNTRACKED = {
    ".git",
    ".venv",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
    "mlartifacts",
    "mlruns",
    "reports",
    "model",
}
# The template's team-handle rule (copier.yml's owner_team / platform_team validators).
TEAM_HANDLE = re.compile(
    r"^@[A-Za-z0-9](?:[A-Za-z0-9._-]{0,38})(?:/[A-Za-z0-9](?:[A-Za-z0-9._-]{0,99})){1,4}$"
)
USER_HANDLE = re.compile(r"^@[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")


def answers() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(ANSWERS.read_text(encoding="utf-8"))
    return loaded


def slugify(heading: str) -> str:
    """The anchor GitHub, GitLab and mkdocs give a heading made of letters, digits and spaces."""
    return re.sub(r"\s+", "-", re.sub(r"[^\w\s-]", "", heading.strip().lower()))


def runbook_headings() -> dict[str, str]:
    """anchor -> heading of every level-2 section of the runbook."""
    text = RUNBOOK.read_text(encoding="utf-8")
    return {slugify(h): h for h in re.findall(r"^## (.+?)\s*$", text, flags=re.M)}


def alert_sections() -> set[str]:
    """Runbook sections that describe an alert: a heading that is one CamelCase word."""
    return {
        h
        for h in runbook_headings().values()
        if re.fullmatch(r"[A-Z][a-z0-9]+(?:[A-Z0-9][A-Za-z0-9]*)+", h)
    }


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERT_RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


# ---- alerts <-> runbook -------------------------------------------------------------------


def test_every_alert_rule_links_to_its_runbook_section() -> None:
    anchors = runbook_headings()
    rules = alert_rules()
    assert rules, f"{ALERT_RULES} defines no alert"
    for rule in rules:
        url = rule.get("annotations", {}).get("runbook_url", "")
        match = re.search(r"docs/runbook\.md#([a-z0-9-]+)$", url)
        assert match, (
            f"alert {rule['alert']}: runbook_url {url!r} does not point at docs/runbook.md#<anchor>"
        )
        assert match.group(1) == rule["alert"].lower(), (
            f"alert {rule['alert']}: anchor {match.group(1)!r}"
        )
        assert match.group(1) in anchors, (
            f"alert {rule['alert']}: no section '## {rule['alert']}' in the runbook"
        )


def test_every_runbook_alert_section_has_a_rule() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    dangling = alert_sections() - names
    assert not dangling, f"runbook sections without an alert rule: {sorted(dangling)}"


def test_alert_catalog_matches_rules_and_runbook() -> None:
    from demo_ml_service.ops.alerts import ALERTS

    catalog = {alert.name for alert in ALERTS}
    sections = dict(
        re.findall(r"^## (\w+)\s+Severity: \*\*(\w+)\*\*", RUNBOOK.read_text(), flags=re.M)
    )
    for alert in ALERTS:
        assert sections.get(alert.name) == alert.severity, f"runbook severity of {alert.name}"
    assert catalog == {rule["alert"] for rule in alert_rules()}, (
        "alerts.yml is stale: run `make ops`"
    )
    assert catalog == alert_sections(), "docs/runbook.md and the alert catalog disagree"


def test_runbook_sections_are_actionable() -> None:
    text = RUNBOOK.read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.M)
    for section in sections:
        title = section.splitlines()[0].strip()
        if title not in alert_sections():
            continue
        for part in ("**Symptom.**", "**Likely causes.**", "**Diagnosis.**", "**Mitigation.**"):
            assert part in section, f"runbook section {title} lacks {part}"
        assert "```" in section, f"runbook section {title} has no command to run"
    assert "demo_ml_service rollback" in text
    assert "kubectl" in text and "rollout undo" in text
    assert answers()["oncall_contact"] in text


def test_runbook_internal_links_resolve() -> None:
    text = RUNBOOK.read_text(encoding="utf-8")
    anchors = runbook_headings()
    for target in re.findall(r"\]\(#([^)]+)\)", text):
        assert target in anchors or target == "", f"runbook links to missing #{target}"


def test_runbook_queries_select_the_job_and_the_namespace() -> None:
    """Every PromQL query the runbook gives on-call (`q '...'`) selects this service's job AND
    `namespace="$NS"` in each selector, like the alerts: staging and production share the job
    name, and a query without the namespace adds their series together."""
    service = load_slo(PROJECT_ROOT / "slo.yaml").service
    text = RUNBOOK.read_text(encoding="utf-8")
    queries = re.findall(r"^q '(.+?)'", text, flags=re.M)
    assert queries, "the runbook gives no PromQL query"
    for query in queries:
        selectors = re.findall(r"\{[^}]*\}", query)
        assert selectors, f"runbook query without a selector: {query}"
        for selector in selectors:
            assert selector.startswith("{" + f'job="{service}",namespace="$NS"'), (
                f"runbook query {query!r}: selector {selector} lacks the job and namespace"
            )


# ---- CODEOWNERS ---------------------------------------------------------------------------


def repo_files() -> list[str]:
    files = []
    for path in PROJECT_ROOT.rglob("*"):
        parts = path.relative_to(PROJECT_ROOT).parts
        if (
            path.is_file()
            and not UNTRACKED.intersection(parts)
            and not parts[-1].endswith(".egg-info")
        ):
            files.append("/".join(parts))
    return files


def load_codeowners_rules() -> Any:
    """scripts/codeowners.py: the platform's CODEOWNERS parser, the same one the template uses."""
    spec = importlib.util.spec_from_file_location(
        "codeowners", PROJECT_ROOT / "scripts" / "codeowners.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["codeowners"] = module
    spec.loader.exec_module(module)
    return module


CODEOWNERS_RULES = load_codeowners_rules()


def parse_codeowners(text: str) -> list[tuple[int, str, list[str]]]:
    """(line number, pattern, owners) of every rule; fails on a syntax error."""
    try:
        rules = CODEOWNERS_RULES.parse(text, PROVIDER)
    except CODEOWNERS_RULES.CodeownersError as error:
        pytest.fail(f"CODEOWNERS: {error}")
    return [(rule.line, rule.pattern, list(rule.owners)) for rule in rules]


def test_codeowners_syntax_and_owners() -> None:
    rules = parse_codeowners(CODEOWNERS.read_text(encoding="utf-8"))
    assert rules and rules[0][1] == "*", "the first rule must give every file an owner"
    for number, _pattern, owners in rules:
        for owner in owners:
            ok = TEAM_HANDLE.match(owner) or USER_HANDLE.match(owner) or EMAIL.match(owner)
            assert ok, f"CODEOWNERS:{number}: malformed owner {owner!r}"
            if PROVIDER == "github" and owner.startswith("@"):
                assert owner.count("/") <= 1, (
                    f"CODEOWNERS:{number}: GitHub has no nested teams ({owner})"
                )


def test_codeowners_patterns_match_files() -> None:
    rules = CODEOWNERS_RULES.parse(CODEOWNERS.read_text(encoding="utf-8"), PROVIDER)
    unmatched = CODEOWNERS_RULES.unmatched(rules, repo_files(), PROVIDER)
    assert unmatched == [], [f"CODEOWNERS:{r.line}: {r.pattern} matches no file" for r in unmatched]


def test_codeowners_names_the_answered_teams() -> None:
    data = answers()
    rules = parse_codeowners(CODEOWNERS.read_text(encoding="utf-8"))
    assert data["owner_team"] in rules[0][2]
    platform_rules = [
        r for r in rules if r[1].strip("/") in {"deploy", "observability", "Dockerfile"}
    ]
    assert len(platform_rules) == 3
    if data.get("platform_team"):
        assert all(data["platform_team"] in owners for _, _, owners in platform_rules)


# ---- service catalog ----------------------------------------------------------------------

# Backstage's own naming rules (catalog-model KubernetesValidatorFunctions).
NAME = re.compile(r"^[a-zA-Z0-9]+(?:[-_.][a-zA-Z0-9]+)*$")
TAG = re.compile(r"^[a-z0-9:+#]+(?:-[a-z0-9:+#]+)*$")
PREFIX = re.compile(r"^[a-z0-9]+(?:[-.][a-z0-9]+)*$")


def test_catalog_entry_is_a_valid_backstage_component() -> None:
    entity = yaml.safe_load(CATALOG.read_text(encoding="utf-8"))
    assert entity["apiVersion"] == "backstage.io/v1alpha1"
    assert entity["kind"] == "Component"
    meta, spec = entity["metadata"], entity["spec"]
    assert NAME.match(meta["name"]) and len(meta["name"]) <= 63
    for key in [*meta.get("annotations", {}), *meta.get("labels", {})]:
        prefix, _, name = key.rpartition("/")
        assert NAME.match(name) and len(name) <= 63, key
        assert not prefix or (PREFIX.match(prefix) and len(prefix) <= 253), key
    for value in meta.get("labels", {}).values():
        assert isinstance(value, str) and NAME.match(value), value
    for value in meta.get("annotations", {}).values():
        assert isinstance(value, str), value
    for tag in meta.get("tags", []):
        assert TAG.match(tag) and len(tag) <= 63, tag
    for link in meta.get("links", []):
        assert re.match(r"^(https://|mailto:)", link["url"]), link
    assert spec["type"] == "service" and spec["lifecycle"] and spec["owner"].startswith("group:")
    assert NAME.match(spec["owner"].removeprefix("group:"))


def test_catalog_links_point_at_files_of_this_repo() -> None:
    entity = yaml.safe_load(CATALOG.read_text(encoding="utf-8"))
    titles = {link["title"] for link in entity["metadata"]["links"]}
    assert {"Runbook", "SLO", "Dashboard (Grafana JSON)", "Repository", "On-call"} <= titles
    for link in entity["metadata"]["links"]:
        match = re.search(r"/blob/main/(.+)$", link["url"])
        if match:
            assert (PROJECT_ROOT / match.group(1)).is_file(), (
                f"catalog link to missing {match.group(1)}"
            )
    version = entity["metadata"]["annotations"]["slipway.dev/template-version"]
    assert version == str(answers().get("_commit", "unversioned"))


# ---- SLO page and model card --------------------------------------------------------------


def test_slo_page_is_generated_from_slo_yaml() -> None:
    slo = load_slo(PROJECT_ROOT / "slo.yaml")
    page = (PROJECT_ROOT / "docs" / "slo.md").read_text(encoding="utf-8")
    assert page == render_slo_doc(slo), "docs/slo.md is stale: run `make ops`"


def test_slo_page_reflects_a_changed_objective() -> None:
    slo = load_slo(PROJECT_ROOT / "slo.yaml")
    objectives = slo.objectives.model_copy(update={"latency_p95_ms": 4321})
    assert "≤ 4321 ms" in render_slo_doc(slo.model_copy(update={"objectives": objectives}))


def test_model_card_is_filled_from_a_real_eval_report(
    trained_settings: Settings, tmp_path: Path
) -> None:
    report_path = trained_settings.reports_dir / "eval.json"
    report = json.loads(report_path.read_text(encoding="utf-8"))
    card = tmp_path / "model-card.md"
    initial = (PROJECT_ROOT / "docs" / "model-card.md").read_text(encoding="utf-8")
    card.write_text(initial.replace("## Limitations\n", "## Limitations\n\nTEAM NOTE kept.\n"))

    write_model_card(
        report_path, card, trained_settings.slo_path, trained_settings.contract_path, ANSWERS
    )
    text = card.read_text(encoding="utf-8")

    assert "Not evaluated yet" not in text
    metric = report["slo"]["metric"]
    assert f"{metric} = {report['metrics'][metric]:.4f}" in text
    for name, value in report["metrics"].items():
        assert f"| {name} | {value:.4f} |" in text
    assert f"version {report['model']['version']}" in text
    assert report["dataset"]["sha256"] in text
    assert "TEAM NOTE kept." in text and "## Intended use" in text
    # Idempotent: a second run with the same report changes nothing.
    write_model_card(
        report_path, card, trained_settings.slo_path, trained_settings.contract_path, ANSWERS
    )
    assert card.read_text(encoding="utf-8") == text


def test_model_card_command_needs_an_eval_report(tmp_path: Path) -> None:
    from demo_ml_service.tools.model_card import main

    settings = Settings(reports_dir=tmp_path / "none")
    with pytest.raises(FileNotFoundError, match="evaluate"):
        main(settings, out=tmp_path / "card.md", report=tmp_path / "none" / "eval.json")


def test_model_card_is_built_from_the_champions_own_report(
    trained_settings: Settings, champion: LoadedModel, tmp_path: Path
) -> None:
    """No local report: the card is filled from the champion's eval report in the registry,
    states its type and parameters, and links a copy of the plot committed next to it."""
    from demo_ml_service.tools.model_card import main

    card = tmp_path / "model-card.md"
    card.write_text((PROJECT_ROOT / "docs" / "model-card.md").read_text(encoding="utf-8"))
    assert main(trained_settings, out=card) == 0
    text = card.read_text(encoding="utf-8")
    assert f"| Champion | version {champion.version} |" in text
    assert type(champion.pipeline.steps[-1][1]).__name__ in text
    assert "| Parameters | " in text and "n_train_rows=" in text
    assert "Eval gate | passed (quality_floor pass" in text
    assert "WARNING" not in text
    plots = list(tmp_path.glob("model-card-*.png"))
    assert len(plots) == 1 and f"]({plots[0].name})" in text
    assert plots[0].read_bytes().startswith(b"\x89PNG")


def test_model_card_refuses_a_report_that_is_not_the_champions(
    trained_settings: Settings, champion: LoadedModel, tmp_path: Path
) -> None:
    from demo_ml_service.tools.model_card import NotChampionReport, main

    report = json.loads((trained_settings.reports_dir / "eval.json").read_text(encoding="utf-8"))
    report["model"]["version"] = str(int(champion.version) + 41)  # a failed candidate, say
    report["passed"] = False
    other = tmp_path / "eval.json"
    other.write_text(json.dumps(report), encoding="utf-8")
    card = tmp_path / "model-card.md"
    with pytest.raises(NotChampionReport, match=f"champion is version {champion.version}"):
        main(trained_settings, out=card, report=other)
    assert not card.exists()
    assert main(trained_settings, out=card, report=other, allow_non_champion=True) == 0
    assert "WARNING: NOT THE CHAMPION'S REPORT" in card.read_text(encoding="utf-8")
