"""Fixtures shared by the template's test suite. Helpers live in tests/helpers.py."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers import example_answers, render, run  # noqa: E402


@dataclass(frozen=True)
class GeneratedProject:
    """A rendered use-case repo, installed in its own fresh .venv, with a promoted champion."""

    path: Path
    package: str
    answers: dict[str, object]

    @property
    def python(self) -> Path:
        return self.path / ".venv" / "bin" / "python"

    def cli(self, *args: str, timeout: float = 600) -> str:
        return run([str(self.path / ".venv" / "bin" / self.package), *args], self.path, timeout).stdout


@pytest.fixture(scope="session")
def generated_project(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[str], GeneratedProject]:
    """Factory: `generated_project("default")` renders (with tasks: lockfile, git), installs,
    trains, evaluates and promotes once per session and answer set; later calls reuse it.
    Tests must not change the registry of a shared project (copy it first if they must)."""
    cache: dict[str, GeneratedProject] = {}

    def make(name: str = "default") -> GeneratedProject:
        if name not in cache:
            answers = example_answers(name)
            path = render(tmp_path_factory.mktemp(f"gen-{name}") / "repo", answers, skip_tasks=False)
            assert (path / "uv.lock").exists(), "the copy task did not write uv.lock"
            run(["make", "setup"], path, timeout=1200)
            project = GeneratedProject(path, str(answers["package_name"]), answers)
            project.cli("train")
            project.cli("evaluate")
            project.cli("promote")
            cache[name] = project
        return cache[name]

    return make
