"""Rendering the template in tests: the answer sets of tests/answers/, `copier copy`, and the
session's cache of renders (one per answer set, shared read-only by every fast test)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from slipway.example import copy_without_lock

ROOT = Path(__file__).resolve().parents[2]
ANSWERS_DIR = ROOT / "tests" / "answers"


def answer_sets() -> list[str]:
    """Names of the canonical answer sets: the files tests/answers/<name>.yml."""
    return sorted(p.stem for p in ANSWERS_DIR.glob("*.yml"))


def example_answers(name: str = "default", **overrides: Any) -> dict[str, Any]:
    """One of the canonical answer sets in tests/answers/, with overrides."""
    data: dict[str, Any] = yaml.safe_load((ANSWERS_DIR / f"{name}.yml").read_text())
    return {**data, **overrides}


def render(
    dst: Path,
    data: dict[str, Any] | None = None,
    *,
    src: Path | str = ROOT,
    skip_tasks: bool = True,
    vcs_ref: str | None = None,
    **kwargs: Any,
) -> Path:
    """`copier copy` of the template (the working tree, uncommitted changes included)."""
    from copier import run_copy

    run_copy(
        str(src),
        str(dst),
        data=data if data is not None else example_answers(),
        defaults=True,
        unsafe=True,
        quiet=True,
        skip_tasks=skip_tasks,
        vcs_ref=vcs_ref,
        **kwargs,
    )
    return dst


def render_as_copied(dst: Path, data: dict[str, Any], **kwargs: Any) -> Path:
    """`copier copy` with its tasks, as a team gets the repo (ops files rendered, first commit),
    except the lockfile (it needs the package index and takes minutes)."""
    return copy_without_lock(ROOT, dst, data, **kwargs)


def project_answers(project: Path) -> dict[str, Any]:
    """The rendered repo's .copier-answers.yml."""
    data: dict[str, Any] = yaml.safe_load((project / ".copier-answers.yml").read_text())
    return data


def package_dir(project: Path) -> Path:
    return project / "src" / str(project_answers(project)["package_name"])


def python_in(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """This interpreter on the rendered package (PYTHONPATH=src), in the project directory,
    writing no __pycache__ (renders are shared). Needs only what the test environment has."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(project / "src"), "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=check,
    )


def fingerprint(tree: Path) -> dict[str, str]:
    """sha256 of every file outside .git, by relative path."""
    return {
        path.relative_to(tree).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(tree.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(tree).parts
    }


class RenderCache:
    """One render per answer set (tests/answers/<name>.yml) for the whole session, made on first
    use with `render_as_copied`. Shared and READ-ONLY: a test that changes files copies the
    render first (`shutil.copytree(renders(name), tmp_path / "repo")`). `changed()` lists the
    renders some test modified anyway (checked at the end of the session)."""

    def __init__(self, base: Path) -> None:
        self._base = base
        self._paths: dict[str, Path] = {}
        self._prints: dict[str, dict[str, str]] = {}

    def __call__(self, name: str = "default") -> Path:
        if name not in self._paths:
            dst = render_as_copied(self._base / name / "repo", example_answers(name))
            self._paths[name], self._prints[name] = dst, fingerprint(dst)
        return self._paths[name]

    def changed(self) -> dict[str, list[str]]:
        """Answer set -> files that differ from how the render was made."""
        found = {}
        for name, path in self._paths.items():
            now, then = fingerprint(path), self._prints[name]
            diff = sorted(k for k in now.keys() | then.keys() if now.get(k) != then.get(k))
            if diff:
                found[name] = diff
        return found
