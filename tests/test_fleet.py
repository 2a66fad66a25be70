"""`python -m slipway.fleet` over repos rendered from two different releases of the template."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.render import ROOT
from tests.support.update import (
    changed_lines,
    commit_all,
    copy_release,
    git,
    next_release,
    platform_python_files,
    previous_release,
    release_render,
    releases,
)

PREVIOUS, NEXT = previous_release(), next_release()
# Releases from PREVIOUS to NEXT: 1, or more when a release was cut at HEAD (previous_release).
BEHIND = len(releases()) - list(releases()).index(PREVIOUS)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, template_clone: Path) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("fleet")
    template = template_clone
    repos = {
        "behind": copy_release(template, base / "behind", PREVIOUS),
        "current": copy_release(template, base / "current", NEXT, "regression-gitlab"),
        "conflict": copy_release(template, base / "conflict", PREVIOUS),
        "broken": copy_release(template, base / "broken", PREVIOUS),
    }
    # A team rewrote a line that the next release changes.
    new = release_render(template, NEXT)
    conflict = repos["conflict"]
    changed = changed_lines(conflict, new)
    rel = next(r for r in platform_python_files(conflict) if r in changed and (new / r).exists())
    lines = (conflict / rel).read_text().splitlines(keepends=True)
    line = next(n for n in changed[rel] if n < len(lines) and lines[n].strip())
    lines[line] = "# team: tuned for our traffic\n"
    (conflict / rel).write_text("".join(lines))
    commit_all(conflict, "team edit")
    repos["conflict_file"] = Path(rel)
    # Answers the current validators refuse, and CODEOWNERS without its catch-all rule.
    broken = repos["broken"]
    answers = yaml.safe_load((broken / ".copier-answers.yml").read_text())
    answers["latency_p95_ms"] = 0
    (broken / ".copier-answers.yml").write_text(yaml.safe_dump(answers, sort_keys=False))
    codeowners = broken / ".github" / "CODEOWNERS"
    codeowners.write_text(
        "".join(x for x in codeowners.read_text().splitlines(True) if not x.startswith("*"))
    )
    commit_all(broken, "hand edits")
    return repos


def run_fleet(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "UV_PYTHON_DOWNLOADS": "never"}
    return subprocess.run(
        [sys.executable, "-m", "slipway.fleet", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )


@pytest.fixture(scope="module")
def report(fleet: dict[str, Path]) -> dict[str, dict]:
    names = ["behind", "current", "conflict", "broken"]
    heads = {n: git(fleet[n], "rev-parse", "HEAD") for n in names}
    result = run_fleet("--json", *(fleet[n] for n in names))
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    for name in names:  # read-only: the repos are exactly as they were
        assert git(fleet[name], "rev-parse", "HEAD") == heads[name]
        assert git(fleet[name], "status", "--porcelain") == ""
    return dict(zip(names, rows, strict=True))


def test_versions_and_releases_behind(report: dict[str, dict]) -> None:
    assert report["behind"]["template_version"] == PREVIOUS
    assert report["behind"]["latest_version"] == NEXT
    assert report["behind"]["releases_behind"] == BEHIND
    assert report["current"]["template_version"] == NEXT
    assert report["current"]["releases_behind"] == 0
    assert report["current"]["update_conflicts"] is False
    assert all(row["error"] is None for row in report.values())


def test_valid_repos_are_reported_valid(report: dict[str, dict]) -> None:
    for name in ("behind", "current", "conflict"):
        row = report[name]
        assert row["answers_valid"] and row["ownership_valid"], row


def test_a_clean_update_and_a_conflicting_one(
    report: dict[str, dict], fleet: dict[str, Path]
) -> None:
    assert report["behind"]["update_conflicts"] is False
    assert report["conflict"]["update_conflicts"] is True
    assert report["conflict"]["conflicted_files"] == [fleet["conflict_file"].as_posix()]


def test_invalid_answers_and_ownership_are_reported(report: dict[str, dict]) -> None:
    row = report["broken"]
    assert row["answers_valid"] is False
    assert any("latency_p95_ms" in p for p in row["answers_problems"])
    assert row["ownership_valid"] is False
    assert any("catch-all" in p for p in row["ownership_problems"])
    assert row["update_conflicts"] is None  # not tried with answers the template refuses


def test_table_output(fleet: dict[str, Path]) -> None:
    result = run_fleet("--no-update-check", fleet["behind"], fleet["current"], fleet["broken"])
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == [
        "repo",
        "version",
        "latest",
        "behind",
        "answers",
        "ownership",
        "update",
    ]
    behind = next(r for r in rows if r.startswith(str(fleet["behind"]) + " "))
    assert behind.split()[1:6] == [PREVIOUS, NEXT, str(BEHIND), "ok", "ok"]
    current = next(r for r in rows if r.startswith(str(fleet["current"]) + " "))
    assert current.split()[1:] == [NEXT, NEXT, "0", "ok", "ok", "up", "to", "date"]
    assert any("latency_p95_ms must be between" in r for r in rows)
