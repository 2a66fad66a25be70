"""A rendered use-case repo installed in its own .venv, trained, evaluated and promoted: what
the slow tests run the generated project's own commands against."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.support.commands import run
from tests.support.render import example_answers, render


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


def make_generated_project(dst: Path, name: str = "default") -> GeneratedProject:
    """Render answer set `name` with every task (lockfile, git), `make setup`, train, evaluate
    and promote: minutes."""
    answers = example_answers(name)
    path = render(dst, answers, skip_tasks=False)
    assert (path / "uv.lock").exists(), "the copy task did not write uv.lock"
    run(["make", "setup"], path, timeout=1200)
    project = GeneratedProject(path, str(answers["package_name"]), answers)
    project.cli("train")
    project.cli("evaluate")
    project.cli("promote")
    return project
