"""Slow: `copier update` from the previous release as the scheduled workflow runs it, then the
updated repo's own tests."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.support.commands import run
from tests.support.render import example_answers
from tests.support.update import (
    commit_all,
    conflicted_files,
    copier_copy,
    copier_update,
    previous_release,
)

TEAM_EDIT = '\n\ndef training_budget_seconds() -> int:\n    """Team: CI budget."""\n    return 600\n'


def test_the_updated_repo_passes_its_own_tests(template_clone: Path, tmp_path: Path) -> None:
    """As the scheduled workflow does it: update, re-lock, then the repo's own lint, type checks
    and tests (they include tests/test_no_update_conflicts.py and, since v0.3.0, the
    architecture test). The team had edited a module that the update moves."""
    project = tmp_path / "team"
    copier_copy(template_clone, project, previous_release())
    assert (project / "uv.lock").exists()
    package = project / "src" / example_answers()["package_name"]
    old_train = package / "train.py" if (package / "train.py").exists() else None
    if old_train is not None:  # v0.2.0 and older: the module moves to training/train.py
        old_train.write_text(old_train.read_text() + TEAM_EDIT)
        commit_all(project, "team edit")
    copier_update(project, skip_tasks=False)
    assert conflicted_files(project) == []
    if old_train is not None:
        assert TEAM_EDIT in (package / "training" / "train.py").read_text()
    run([sys.executable, "-m", "uv", "lock"], project, timeout=900)
    run(["make", "setup"], project, timeout=1200)
    run(["make", "check-all", "team-check"], project, timeout=1800)  # every generated test
