"""Slow: `copier update` from the previous release as the scheduled workflow runs it, then the
updated repo's own tests."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.support.commands import run
from tests.support.update import conflicted_files, copier_copy, copier_update, previous_release


def test_the_updated_repo_passes_its_own_tests(template_clone: Path, tmp_path: Path) -> None:
    """As the scheduled workflow does it: update, re-lock, then the repo's own tests (they include
    tests/test_no_update_conflicts.py)."""
    project = tmp_path / "team"
    copier_copy(template_clone, project, previous_release())
    assert (project / "uv.lock").exists()
    copier_update(project, skip_tasks=False)
    assert conflicted_files(project) == []
    run([sys.executable, "-m", "uv", "lock"], project, timeout=900)
    run(["make", "setup"], project, timeout=1200)
    run(["make", "test"], project, timeout=1800)
