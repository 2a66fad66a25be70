"""`copier update` from the previous release (a real earlier commit of this repo) to the working tree.

Releases are tagged in a temporary clone (tests/support/update.py). These cases skip copier's
tasks where they do not matter (migrations still run: copier runs them even with --skip-tasks);
the copy task's own checks run the tasks as a team does, and so does the slow case
(tests/slow/test_update.py: the updated repo passes its own tests).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.support import update
from tests.support.render import ROOT
from tests.support.render import project_answers as answers
from tests.support.update import (
    changed_lines,
    commit_all,
    conflicted_files,
    copier_copy,
    copier_update,
    diff_r,
    git,
    list_conflicts,
    next_release,
    platform_python_files,
    previous_release,
    release_render,
)

PREVIOUS = previous_release()
NEXT = next_release()
MIGRATION_FROM = "v0.1.0"  # the quality-module move ships in v0.2.0: start before it
ANSWER_SETS = ["default", "regression-gitlab"]


@pytest.fixture(scope="session")
def template(template_clone: Path) -> Path:
    return template_clone


@pytest.fixture(scope="session")
def fresh(template: Path):
    """Fresh renders (no tasks) of a release, per answer set, shared for the session."""

    def make(tag: str, name: str = "default") -> Path:
        return release_render(template, tag, name)

    return make


def copy_release(template: Path, dst: Path, tag: str = PREVIOUS, name: str = "default") -> Path:
    """A team's repo as the copy task leaves it (rendered at `tag`, first commit), tasks skipped."""
    return update.copy_release(template, dst, tag, name)


def test_releases_are_real_commits_of_this_repo(template: Path) -> None:
    assert git(template, "rev-list", "-n1", PREVIOUS).strip() != git(template, "rev-parse", NEXT)
    assert git(template, "describe", "--tags", "--exact-match", NEXT).strip() == NEXT
    # The previous release is an ancestor of the working tree's commit, on main's history.
    git(template, "merge-base", "--is-ancestor", PREVIOUS, NEXT)


# 1 -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ANSWER_SETS)
def test_update_without_edits_equals_a_fresh_copy(
    template: Path, tmp_path: Path, name: str
) -> None:
    """With the tasks, as a team runs it: the copy task's lock is skipped on both sides."""
    env = {"SLIPWAY_SKIP_LOCK": "1"}
    old = tmp_path / "team"
    new = tmp_path / "fresh"
    answers_file = str(ROOT / "tests" / "answers" / f"{name}.yml")
    copier_copy(template, old, PREVIOUS, "--data-file", answers_file, **env)
    assert answers(old)["_commit"] == PREVIOUS
    copier_update(old, skip_tasks=False, extra_env=env)
    assert answers(old)["_commit"] == NEXT
    # The fresh copy gets the updated repo's answers: a question new in this release takes its
    # default on update (--defaults), whatever the answer set says.
    same = tmp_path / "answers.yml"
    same.write_text(yaml.safe_dump({k: v for k, v in answers(old).items() if k[0] != "_"}))
    copier_copy(template, new, NEXT, "--data-file", str(same), **env)
    assert diff_r(old, new, except_team_files=True) == ""


# 2 -----------------------------------------------------------------------------------------------
def test_team_edits_and_unrelated_platform_edits_survive(
    template: Path, fresh, tmp_path: Path
) -> None:
    project = copy_release(template, tmp_path / "team")
    new = fresh(NEXT)
    package = answers(project)["package_name"]
    # Team-owned files: whatever the team wrote stays, even where the template changed them.
    team_edits = {
        "slo.yaml": "# the team's own objectives\n",
        f"src/{package}/model.py": "\n# team: our own pipeline tweaks\n",
        "tests/test_model.py": "\n\ndef test_team_specific() -> None:\n    assert True\n",
        "data/golden.csv": "",
    }
    for rel, extra in team_edits.items():
        path = project / rel
        path.write_text(path.read_text() + extra)
    golden = project / "data" / "golden.csv"
    golden.write_text("".join(golden.read_text().splitlines(keepends=True)[:-5]))  # fewer rows
    team_after = {rel: (project / rel).read_bytes() for rel in team_edits}
    # Platform-owned files: a comment line far (>= 8 lines) from everything the release changes,
    # in a file the release changes and in one it does not.
    changed = changed_lines(project, new)
    edited = {}
    for rel in platform_python_files(project):
        lines = (project / rel).read_text().splitlines(keepends=True)
        near = set()
        for n in changed.get(rel, []):
            near.update(range(n - 8, n + 9))
        spots = [i for i in range(12, len(lines)) if i not in near and lines[i - 1].strip() == ""]
        kind = "changed" if rel in changed else "unchanged"
        if spots and kind not in edited.values() and (new / rel).exists():
            note = f"# team note in a platform file ({kind} by the release)\n"
            lines.insert(spots[len(spots) // 2], note)
            (project / rel).write_text("".join(lines))
            edited[rel] = kind
    assert set(edited.values()) == {"changed", "unchanged"}, edited
    commit_all(project, "team edits")

    copier_update(project)

    assert conflicted_files(project) == []
    for rel, content in team_after.items():
        assert (project / rel).read_bytes() == content, f"{rel}: the team's version was replaced"
    for rel, kind in edited.items():
        text = (project / rel).read_text()
        note = f"# team note in a platform file ({kind} by the release)\n"
        assert note in text, f"{rel}: the team's line was lost"
        assert text.replace(note, "", 1) == (new / rel).read_text(), (
            f"{rel}: the release's changes were not applied around the team's line"
        )


# 3 -----------------------------------------------------------------------------------------------
def test_edit_next_to_a_changed_line_is_a_reported_conflict(
    template: Path, fresh, tmp_path: Path
) -> None:
    project = copy_release(template, tmp_path / "team")
    new = fresh(NEXT)
    changed = changed_lines(project, new)
    rel = next(
        (r for r in platform_python_files(project) if r in changed and (new / r).exists()), None
    )
    assert rel, "the next release changes no platform module: nothing to conflict with"
    path = project / rel
    lines = path.read_text().splitlines(keepends=True)
    target = next(n for n in changed[rel] if n < len(lines) and lines[n].strip())
    team_line = "# team: tuned this for our traffic\n"
    lines[target] = team_line  # the team rewrote exactly the line the release rewrites
    path.write_text("".join(lines))
    commit_all(project, "team edit on a line the template changes")

    copier_update(project)

    assert team_line in path.read_text(), "the team's edit was silently dropped"
    assert rel in conflicted_files(project)
    listed = list_conflicts(project)
    assert listed.returncode == 1, listed.stdout + listed.stderr
    assert rel in listed.stdout
    markdown = list_conflicts(project, "--markdown")
    assert f"`{rel}`" in markdown.stdout and markdown.returncode == 1
    # Resolved (the team keeps the release's version): the lister is clean again.
    shutil.copy(new / rel, path)
    for rej in project.rglob("*.rej"):
        rej.unlink()
    clean = list_conflicts(project)
    assert clean.returncode == 0, clean.stdout


# 4 -----------------------------------------------------------------------------------------------
def test_deleted_platform_files_stay_deleted(template: Path, fresh, tmp_path: Path) -> None:
    project = copy_release(template, tmp_path / "team")
    new = fresh(NEXT)
    changed = changed_lines(project, new)
    candidates = [r for r in platform_python_files(project) if (new / r).exists()]
    deleted = [
        next(r for r in candidates if r in changed),
        next(r for r in candidates if r not in changed),
        "docs/delivery.md" if (project / "docs/delivery.md").exists() else "Dockerfile",
    ]
    for rel in deleted:
        (project / rel).unlink()
    commit_all(project, "we do not need these")

    copier_update(project)

    for rel in deleted:
        assert not (project / rel).exists(), f"{rel} came back"
    assert conflicted_files(project) == []


def test_deleted_team_files_come_back(template: Path, tmp_path: Path) -> None:
    """Copier's rule for `_skip_if_exists` files (documented in docs/updating.md): they are
    required, so a deleted one is written again; an existing one is never touched."""
    project = copy_release(template, tmp_path / "team")
    (project / "tests" / "test_model.py").unlink()
    commit_all(project, "deleted a team file")

    copier_update(project)

    assert (project / "tests" / "test_model.py").exists()


# 5 -----------------------------------------------------------------------------------------------
def quality_paths(project: Path) -> tuple[Path, Path]:
    package_dir = project / "src" / answers(project)["package_name"]
    # v0.2.0 moved metrics.py to quality.py, v0.3.0 moved that to training/quality.py: an
    # update from v0.1.0 runs both moves in a row.
    return package_dir / "metrics.py", package_dir / "training" / "quality.py"


def test_the_quality_module_migration_moves_the_file(template: Path, fresh, tmp_path: Path) -> None:
    """v0.2.0 renamed src/<pkg>/metrics.py to quality.py (v0.3.0: training/quality.py): no edits
    -> exactly a fresh copy."""
    project = copy_release(template, tmp_path / "team", tag=MIGRATION_FROM)
    old, new_path = quality_paths(project)
    assert old.exists() and not new_path.exists()

    result = copier_update(project)

    assert not old.exists()
    assert new_path.exists()
    assert "slipway migration: moved" in result.stderr
    assert diff_r(project, fresh(NEXT), except_team_files=True) == ""
    assert not (project / ".git" / "slipway-migrations").exists()


def test_the_migration_keeps_the_team_edits_of_the_moved_module(
    template: Path, fresh, tmp_path: Path
) -> None:
    project = copy_release(template, tmp_path / "team", tag=MIGRATION_FROM)
    old, new_path = quality_paths(project)
    team_function = (
        '\n\ndef lift(a: float, b: float) -> float:\n    """Team metric."""\n    return a / b\n'
    )
    old.write_text(old.read_text() + team_function)
    commit_all(project, "team metric")

    copier_update(project)

    assert not old.exists()
    text = new_path.read_text()
    assert team_function in text, "the team's edit did not move with the file"
    fresh_text = (fresh(NEXT) / new_path.relative_to(project)).read_text()
    assert text.replace(team_function, "") == fresh_text
    assert conflicted_files(project) == []


def test_the_migration_respects_a_deleted_module(template: Path, tmp_path: Path) -> None:
    project = copy_release(template, tmp_path / "team", tag=MIGRATION_FROM)
    old, new_path = quality_paths(project)
    old.unlink()
    commit_all(project, "we score elsewhere")

    copier_update(project)

    assert not old.exists() and not new_path.exists()


# 6 -----------------------------------------------------------------------------------------------
def test_copy_only_tasks_do_not_run_again(template: Path, tmp_path: Path) -> None:
    project = tmp_path / "team"
    copy = copier_copy(template, project, PREVIOUS, SLIPWAY_SKIP_LOCK="1")
    # The detector works: at copy time the copy task ran and said so.
    assert "post_copy.py" in copy.stderr and "not writing uv.lock" in copy.stderr
    first = git(project, "rev-parse", "HEAD").strip()
    assert git(project, "rev-list", "--count", "HEAD").strip() == "1"

    update = copier_update(project, skip_tasks=False, extra_env={"SLIPWAY_SKIP_LOCK": "1"})

    # Update-time tasks did run (the ops renderer prints what it wrote; copier itself runs
    # update tasks quietly), the copy task did not: it would have said so, as at copy time.
    assert "wrote " in update.stdout, update.stdout + update.stderr
    assert "slipway:" not in update.stderr, update.stderr
    assert "not writing uv.lock" not in update.stderr
    assert git(project, "rev-parse", "HEAD").strip() == first, "the update made a commit"
    assert not (project / "uv.lock").exists()
