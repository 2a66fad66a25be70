"""`copier update` from v0.2.0 through the v0.3.0 layout change: the package split into
training/, serving/, tools/ and artifact/ (hooks/migrations/v0.3.0.moves), and the extension
points a team adds to instead of editing platform files (team.mk, the team CI file, the
overlays' team components)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.support.commands import run
from tests.support.render import ROOT, example_answers
from tests.support.tools import Tools
from tests.support.update import (
    commit_all,
    conflicted_files,
    copier_update,
    copy_release,
    diff_r,
    next_release,
    release_render,
)

LAYOUT_FROM = "v0.2.0"  # the last release before the v0.3.0 moves
NEXT = next_release()
MOVES = [
    tuple(line.split("#")[0].split())
    for line in (ROOT / "hooks" / "migrations" / "v0.3.0.moves").read_text().splitlines()
    if line.split("#")[0].strip()
]


def team_repo(template: Path, dst: Path, name: str = "default") -> Path:
    """A team's repo as copied from v0.2.0 (first commit made), copy tasks skipped."""
    return copy_release(template, dst, LAYOUT_FROM, name)


def moved(project: Path, path: str) -> Path:
    package = example_answers()["package_name"]
    return project / path.replace("<package>", package)


def test_the_moves_file_names_real_modules(template_clone: Path, tmp_path: Path) -> None:
    project = team_repo(template_clone, tmp_path / "team")
    fresh = release_render(template_clone, NEXT)
    assert MOVES, "no moves read"
    for old, new in MOVES:
        assert moved(project, old).is_file(), f"{old} is not in {LAYOUT_FROM}"
        assert not moved(fresh, old).exists(), f"{old} is still shipped"
        assert moved(fresh, new).is_file(), f"{new} is not shipped"


def test_an_unedited_repo_updates_to_exactly_a_fresh_copy(
    template_clone: Path, tmp_path: Path
) -> None:
    project = team_repo(template_clone, tmp_path / "team")

    result = copier_update(project)

    for old, new in MOVES:
        assert not moved(project, old).exists(), old
        assert moved(project, new).is_file(), new
    assert result.stderr.count("slipway migration: moved") == len(MOVES), result.stderr
    assert diff_r(project, release_render(template_clone, NEXT), except_team_files=True) == ""
    assert conflicted_files(project) == []


def test_team_edits_move_with_their_modules(template_clone: Path, tmp_path: Path) -> None:
    project = team_repo(template_clone, tmp_path / "team")
    package = moved(project, "src/<package>")
    train_edit = (
        '\n\ndef training_budget_seconds() -> int:\n    """Team: CI budget."""\n    return 600\n'
    )
    guard_edit = "\n\n# Team: reviewed the guardrails for the fraud use case (2026-11).\n"
    telemetry_edit = "\n\n# Team: our collector drops spans older than 1 h.\n"
    for name, edit in (
        ("train.py", train_edit),
        ("guardrails.py", guard_edit),
        ("telemetry.py", telemetry_edit),
    ):
        path = package / name
        path.write_text(path.read_text() + edit)
    commit_all(project, "team edits")

    copier_update(project)

    assert train_edit in (package / "training" / "train.py").read_text()
    assert guard_edit in (package / "serving" / "guardrails.py").read_text()
    # telemetry.py was split: the edit lands in facade.py, merged or inside conflict markers for
    # the update pull request, never dropped.
    assert telemetry_edit.strip() in (package / "serving" / "telemetry" / "facade.py").read_text()
    conflicts = conflicted_files(project)
    assert not {"training/train.py", "serving/guardrails.py"} & {
        c.rpartition(f"{package.name}/")[2] for c in conflicts
    }, conflicts


TEAM_TARGET = """
.PHONY: fraud-report
fraud-report: ## the fraud team's weekly report
\t@echo "fraud report for $(PACKAGE)"
"""

TEAM_PATCH = {
    "apiVersion": "kustomize.config.k8s.io/v1alpha1",
    "kind": "Component",
    "patches": [
        {
            "target": {"kind": "Deployment"},
            "patch": "- op: add\n  path: /metadata/labels/team-cost-center\n  value: fraud-42\n",
        }
    ],
}


@pytest.mark.parametrize("name", ["default", "regression-gitlab"])
def test_team_additions_through_extension_points_never_conflict(
    template_clone: Path, tmp_path: Path, tools: Tools, name: str
) -> None:
    """The team adds a make target, a CI job and a prod patch in the extension files while still
    on v0.2.0 (which does not read them yet), then updates: no conflict, nothing overwritten,
    and the platform files now pick them up."""
    project = team_repo(template_clone, tmp_path / "team", name)
    github = example_answers(name)["ci_provider"] == "github"
    ci_file = project / (".github/workflows/team.yml" if github else ".gitlab/team.gitlab-ci.yml")
    ci_job = (
        "name: team\non:\n  workflow_call:\npermissions: {}\njobs:\n  fraud:\n"
        "    runs-on: ubuntu-24.04\n    permissions:\n      contents: read\n"
        "    steps:\n      - run: echo fraud\n"
        if github
        else "fraud-report:\n  stage: check\n  script:\n    - echo fraud\n"
    )
    additions = {
        project / "team.mk": TEAM_TARGET,
        ci_file: ci_job,
        project / "deploy/k8s/overlays/prod/team/kustomization.yaml": yaml.safe_dump(TEAM_PATCH),
    }
    for path, text in additions.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    commit_all(project, "team target, CI job and prod patch")

    # With the tasks, as a team runs it: they write the overlays' PrometheusRules (make ops).
    copier_update(project, skip_tasks=False, extra_env={"SLIPWAY_SKIP_LOCK": "1"})

    assert conflicted_files(project) == []
    for path, text in additions.items():
        assert path.read_text() == text, f"{path} was changed by the update"
    # The platform files include them now.
    made = run(["make", "-s", "fraud-report"], project)
    assert "fraud report for" in made.stdout
    assert "fraud-report" in run(["make", "-s", "help"], project).stdout
    if github:
        ci = yaml.safe_load((project / ".github/workflows/ci.yml").read_text())
        assert ci["jobs"]["team"]["uses"] == "$/.github/workflows/team.yml"
    else:
        ci = yaml.safe_load((project / ".gitlab-ci.yml").read_text())
        assert {"local": ".gitlab/team.gitlab-ci.yml"} in ci["include"]
    built = tools.run("kubectl", "kustomize", project / "deploy/k8s/overlays/prod", check=True)
    deployments = [
        doc for doc in yaml.safe_load_all(built.stdout) if doc and doc["kind"] == "Deployment"
    ]
    assert deployments and all(
        d["metadata"]["labels"].get("team-cost-center") == "fraud-42" for d in deployments
    )
    staging = tools.run("kubectl", "kustomize", project / "deploy/k8s/overlays/staging", check=True)
    assert "fraud-42" not in staging.stdout
