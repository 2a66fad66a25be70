"""Ownership and operations files of rendered projects: CODEOWNERS for both providers with and
without a platform team, the Backstage catalog entry (validated against Backstage's own JSON
schemas, vendored in tests/schemas/backstage by `python -m slipway backstage-schemas`), the
runbook against the alert catalog, the model card skeleton and the SLO page generator.

Fast: the session's shared renders of every answer set (tests/answers/: GitHub and GitLab, each
with and without a platform team); nothing is installed.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7
from slipway import codeowners, copier_config

from tests.support.render import (
    ROOT,
    RenderCache,
    answer_sets,
    example_answers,
    python_in,
    render,
)
from tests.support.render import project_answers as answers

SCHEMAS = ROOT / "tests" / "schemas" / "backstage"

# Backstage's naming rules (catalog-model KubernetesValidatorFunctions / FieldFormatEntityPolicy),
# which it checks on top of the JSON schema.
NAME = re.compile(r"^[a-zA-Z0-9]+(?:[-_.][a-zA-Z0-9]+)*$")
TAG = re.compile(r"^[a-z0-9:+#]+(?:-[a-z0-9:+#]+)*$")
DNS_PREFIX = re.compile(r"^[a-z0-9]+(?:[-.][a-z0-9]+)*$")
ALERT_HEADING = re.compile(r"[A-Z][a-z0-9]+(?:[A-Z0-9][A-Za-z0-9]*)+")


@pytest.fixture(params=answer_sets())
def project(request: pytest.FixtureRequest, renders: RenderCache) -> Path:
    """The shared render of each answer set (with the copy task that generates alerts, dashboard
    and docs/slo.md)."""
    return renders(request.param)


def test_the_answer_sets_cover_both_providers_with_and_without_a_platform_team() -> None:
    combos = {
        (a["ci_provider"], bool(a["platform_team"])) for a in map(example_answers, answer_sets())
    }
    assert combos == {(p, t) for p in ("github", "gitlab") for t in (True, False)}


def package(project: Path) -> str:
    return str(answers(project)["package_name"])


def run_in(project: Path, code: str) -> Any:
    """Run `code` against the rendered package in a fresh interpreter; returns its JSON output."""
    return json.loads(python_in(project, "-c", code).stdout)


# ---- CODEOWNERS -----------------------------------------------------------------------------


def files_of(project: Path) -> list[str]:
    return [
        p.relative_to(project).as_posix()
        for p in project.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(project).parts
    ]


def test_codeowners_for_the_chosen_provider(project: Path) -> None:
    data = answers(project)
    provider = data["ci_provider"]
    path = project / (".github" if provider == "github" else ".gitlab") / "CODEOWNERS"
    other = project / (".gitlab" if provider == "github" else ".github") / "CODEOWNERS"
    assert path.is_file() and not other.exists()

    rules = codeowners.parse(path.read_text(encoding="utf-8"), provider)
    assert codeowners.unmatched(rules, files_of(project), provider) == []
    team = re.compile(copier_config.team_handle_pattern())
    for rule in rules:
        assert rule.owners, f"line {rule.line}: {rule.pattern} has no owner"
        for owner in rule.owners:
            assert team.match(owner), owner
            assert owner in {data["owner_team"], data["platform_team"]}, owner

    assert rules[0].pattern == "*" and rules[0].owners == (data["owner_team"],)
    delivery = [
        r for r in rules if r.pattern.strip("/") in {"deploy", "observability", "Dockerfile"}
    ]
    assert len(delivery) == 3
    for rule in delivery:
        if data["platform_team"]:
            assert data["platform_team"] in rule.owners
            if provider == "github":  # co-owners on one line: either may approve
                assert data["owner_team"] in rule.owners
        else:
            assert rule.owners == (data["owner_team"],)
        if provider == "gitlab":
            assert rule.section == "Platform"
    # Who must approve a change to the deployment: the platform team, when there is one.
    expected = data["platform_team"] or data["owner_team"]
    assert expected in codeowners.owners_of(rules, "deploy/k8s/base/deployment.yaml", provider)


# ---- Backstage catalog entry ----------------------------------------------------------------


@pytest.fixture(scope="module")
def component_validator() -> Draft7Validator:
    schemas = [json.loads(p.read_text(encoding="utf-8")) for p in SCHEMAS.glob("*.schema.json")]
    registry = Registry().with_resources((s["$id"], Resource(s, DRAFT7)) for s in schemas)
    root = next(s for s in schemas if s["$id"] == "ComponentV1alpha1")
    return Draft7Validator(root, registry=registry)


def backstage_problems(entity: dict[str, Any], validator: Draft7Validator) -> list[str]:
    problems = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(entity)]
    meta = entity.get("metadata", {})
    if not (NAME.match(str(meta.get("name", ""))) and len(meta.get("name", "")) <= 63):
        problems.append(f"metadata.name {meta.get('name')!r}")
    for key in [*meta.get("annotations", {}), *meta.get("labels", {})]:
        prefix, _, name = key.rpartition("/")
        if not (NAME.match(name) and len(name) <= 63) or (prefix and not DNS_PREFIX.match(prefix)):
            problems.append(f"key {key!r}")
    for value in meta.get("labels", {}).values():
        if not NAME.match(str(value)):
            problems.append(f"label value {value!r}")
    for tag in meta.get("tags", []):
        if not (TAG.match(tag) and len(tag) <= 63):
            problems.append(f"tag {tag!r}")
    return problems


def test_catalog_info_is_a_valid_backstage_component(
    project: Path, component_validator: Draft7Validator
) -> None:
    data = answers(project)
    entity = yaml.safe_load((project / "catalog-info.yaml").read_text(encoding="utf-8"))
    assert backstage_problems(entity, component_validator) == []
    meta, spec = entity["metadata"], entity["spec"]
    assert meta["name"] == data["project_name"].lower().replace(" ", "-")
    assert spec["owner"] == "group:" + data["owner_team"].rsplit("/", 1)[1]
    assert spec["lifecycle"] and meta["labels"]["tier"]
    annotations = meta["annotations"]
    assert annotations["slipway.dev/template-version"] == str(data["_commit"])
    assert annotations["slipway.dev/oncall"] == data["oncall_contact"]
    assert ("slipway.dev/platform-team" in annotations) == bool(data["platform_team"])
    links = {link["title"]: link["url"] for link in meta["links"]}
    host = "https://github.com/" if data["ci_provider"] == "github" else "https://gitlab.com/"
    assert links["Repository"].startswith(host)
    for title in ("Runbook", "SLO", "Model card", "Dashboard (Grafana JSON)"):
        assert links[title].startswith(links["Repository"] + "/"), title
    for title in ("Runbook", "SLO", "Model card", "Dashboard (Grafana JSON)"):
        target = re.sub(r"^.*/blob/main/", "", links[title])
        assert (project / target).is_file(), f"catalog link {title} -> missing {target}"


def test_backstage_schema_rejects_broken_entities(component_validator: Draft7Validator) -> None:
    """The vendored schema really validates: known-bad entities are refused."""
    good = {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {
            "name": "svc",
            "links": [{"url": "https://x.example"}],
            "labels": {"tier": "3"},
        },
        "spec": {"type": "service", "lifecycle": "experimental", "owner": "group:team"},
    }
    assert backstage_problems(good, component_validator) == []
    no_owner = json.loads(json.dumps(good))
    del no_owner["spec"]["owner"]
    numeric_label = json.loads(json.dumps(good))
    numeric_label["metadata"]["labels"]["tier"] = 3
    bad_name = json.loads(json.dumps(good))
    bad_name["metadata"]["name"] = "my service"
    link_without_url = json.loads(json.dumps(good))
    link_without_url["metadata"]["links"] = [{"title": "Runbook"}]
    for broken in (no_owner, numeric_label, bad_name, link_without_url):
        assert backstage_problems(broken, component_validator), broken


def test_template_version_annotation_without_a_git_template(
    tmp_path: Path, component_validator: Draft7Validator
) -> None:
    """A template copied from a plain folder has no `_commit`: the annotation says so."""
    src = tmp_path / "template-src"
    shutil.copytree(
        ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", "site", "__pycache__")
    )
    project = render(tmp_path / "out", example_answers(project_name="No Git"), src=src)
    assert "_commit" not in answers(project)
    entity = yaml.safe_load((project / "catalog-info.yaml").read_text(encoding="utf-8"))
    assert entity["metadata"]["annotations"]["slipway.dev/template-version"] == "unversioned"
    assert backstage_problems(entity, component_validator) == []


# ---- runbook, alerts, model card, SLO page --------------------------------------------------


def slugify(heading: str) -> str:
    return re.sub(r"\s+", "-", re.sub(r"[^\w\s-]", "", heading.strip().lower()))


def test_runbook_has_one_section_per_alert(project: Path) -> None:
    pkg = package(project)
    text = (project / "docs" / "runbook.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+?)\s*$", text, flags=re.MULTILINE)
    sections = {h for h in headings if ALERT_HEADING.fullmatch(h)}
    severities = run_in(
        project,
        f"import json; from {pkg}.ops.alerts import ALERTS; "
        "print(json.dumps({a.name: a.severity for a in ALERTS}))",
    )
    catalog = sorted(severities)
    assert sorted(sections) == catalog
    written = dict(re.findall(r"^## (\w+)\s+Severity: \*\*(\w+)\*\*", text, flags=re.MULTILINE))
    assert written == severities, "runbook severities differ from the alert catalog"
    anchors = {slugify(h) for h in headings}
    for name in catalog:
        assert name.lower() in anchors
    for target in re.findall(r"\]\(#([^)]+)\)", text):
        assert target in anchors, f"runbook links to missing #{target}"
    assert f"{pkg} rollback" in text and "rollout undo" in text


def test_alert_rules_link_to_the_runbook_sections(project: Path) -> None:
    """The rendered rules' runbook_url is the catalog's Runbook link plus the section anchor."""
    rules = yaml.safe_load((project / "observability/prometheus/alerts.yml").read_text())
    entity = yaml.safe_load((project / "catalog-info.yaml").read_text(encoding="utf-8"))
    runbook = next(x["url"] for x in entity["metadata"]["links"] if x["title"] == "Runbook")
    text = (project / "docs" / "runbook.md").read_text(encoding="utf-8")
    anchors = {slugify(h) for h in re.findall(r"^## (.+?)\s*$", text, flags=re.MULTILINE)}
    names = []
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "record" in rule:  # the burn-rate alerts' recording rules: no runbook of their own
                continue
            names.append(rule["alert"])
            assert rule["annotations"]["runbook_url"] == f"{runbook}#{rule['alert'].lower()}"
            assert rule["alert"].lower() in anchors
    assert sorted(names) == sorted(
        {
            h
            for h in re.findall(r"^## (\w+)$", text, flags=re.MULTILINE)
            if ALERT_HEADING.fullmatch(h)
        }
    )


def test_slo_page_is_rendered_at_copy_time(project: Path) -> None:
    page = (project / "docs" / "slo.md").read_text(encoding="utf-8")
    expected = run_in(
        project,
        f"import json; from pathlib import Path; from {package(project)}.ops.slo_doc import render_slo_doc; "
        f"from {package(project)}.slo import load_slo; "
        "print(json.dumps(render_slo_doc(load_slo(Path('slo.yaml')))))",
    )
    assert page == expected


def test_runbook_escalates_to_the_oncall_contact(project: Path) -> None:
    contact = answers(project)["oncall_contact"]
    text = (project / "docs" / "runbook.md").read_text(encoding="utf-8")
    expected = f"<{contact}>" if contact.startswith("https://") else f"(mailto:{contact})"
    escalation = text.split("## Escalation", 1)[1]
    assert expected in escalation
    assert answers(project)["owner_team"] in escalation


def test_model_card_skeleton_has_every_generated_block(project: Path) -> None:
    pkg = package(project)
    blocks = run_in(
        project,
        f"import json; from {pkg}.tools.model_card import BLOCKS; print(json.dumps(BLOCKS))",
    )
    card = (project / "docs" / "model-card.md").read_text(encoding="utf-8")
    for name in blocks:
        assert (
            f"<!-- model-card:begin {name} -->" in card
            and f"<!-- model-card:end {name} -->" in card
        )
    assert f"uv run {pkg} model-card" in card
    for heading in ("## Intended use", "## Out-of-scope uses", "## Limitations", "## Owner"):
        assert heading in card


def test_slo_page_carries_the_answered_objectives(project: Path) -> None:
    pkg = package(project)
    data = answers(project)
    page = run_in(
        project,
        f"import json; from pathlib import Path; from {pkg}.ops.slo_doc import render_slo_doc; "
        f"from {pkg}.slo import load_slo; "
        "print(json.dumps(render_slo_doc(load_slo(Path('slo.yaml')))))",
    )
    assert f"≤ {data['latency_p95_ms']} ms" in page
    assert f"({data['max_error_rate'] * 100:g}%)" in page
    assert f"{data['quality_metric']} " in page and f"{data['quality_threshold']:g}" in page
    assert f"${data['cost_ceiling_per_1k']:g} per 1,000 predictions" in page
    for alert in (
        "LatencySLOBurnRate",
        "LatencySLOSlowBurn",
        "ErrorRateSLOBreach",
        "ErrorRateSLOSlowBurn",
        "CostPerPredictionAboveCeiling",
    ):
        assert alert in page
