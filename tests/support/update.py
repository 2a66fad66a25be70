"""Releases in a temporary clone, and `copier update` as a team runs it (update and fleet tests).

CI clones main without tags, so `template_clone` makes its own: a `git clone` of this repository
with the working tree (uncommitted changes included) committed on top, the recorded releases
(tests/update/releases.yml) tagged at their real commits, and that new commit tagged as the next
release.
"""

from __future__ import annotations

import atexit
import difflib
import fnmatch
import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from slipway import copier_config
from slipway.conflicts import conflicted_files  # noqa: F401  (re-exported for the tests)

from tests.support.commands import run
from tests.support.render import ROOT, example_answers, project_answers, render

RELEASES_FILE = ROOT / "tests" / "update" / "releases.yml"
GIT_ID = ["-c", "user.name=slipway-tests", "-c", "user.email=tests@slipway.invalid"]


def releases() -> dict[str, str]:
    """Recorded releases, oldest first: tag -> full commit SHA."""
    data: dict[str, str] = yaml.safe_load(RELEASES_FILE.read_text())
    return dict(sorted(data.items(), key=lambda item: _version(item[0])))


def _version(tag: str) -> tuple[int, ...]:
    return tuple(int(part) for part in tag.lstrip("v").split("."))


# What a generated repo is made from. A release cut at HEAD leaves none of it changed since that
# release, and an update from it would test nothing.
TEMPLATE_SOURCES = ("copier.yml", "template", "hooks", "includes", "src")


@functools.cache
def previous_release() -> str:
    """The release the update tests start from: the newest one whose template differs from the
    working tree (uncommitted and untracked files included), so a release just cut at HEAD
    is tested as its teams receive it, from the release before."""
    recorded = releases()
    if git(ROOT, "ls-files", "--others", "--exclude-standard", "--", *TEMPLATE_SOURCES).strip():
        return list(recorded)[-1]  # a new template file: the newest release differs
    for tag, sha in reversed(recorded.items()):
        diff = subprocess.run(
            ["git", "diff", "--quiet", sha, "--", *TEMPLATE_SOURCES], cwd=ROOT, check=False
        )
        if diff.returncode:
            return tag
    return next(iter(recorded))


def next_release() -> str:
    """The tag the working tree gets: the newest release with its minor version bumped."""
    major, minor, _ = _version(list(releases())[-1])
    return f"v{major}.{minor + 1}.0"


def git(cwd: Path, *args: str, check: bool = True) -> str:
    result = subprocess.run(
        ["git", *GIT_ID, *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if check and result.returncode:
        raise AssertionError(f"git {' '.join(args)} in {cwd}: {result.stderr}{result.stdout}")
    return result.stdout


def make_template_clone(dst: Path) -> Path:
    """Clone this repo, commit the working tree on top and tag every release plus the next one."""
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(dst)], check=True)
    for tag, sha in releases().items():
        if subprocess.run(
            ["git", "cat-file", "-e", f"{sha}^{{commit}}"], cwd=dst, check=False
        ).returncode:
            raise AssertionError(
                f"release {tag} ({sha}) is not in this clone's history: the update tests need "
                "the full history of main (`git fetch --unshallow`)"
            )
        git(dst, "tag", "--force", tag, sha)
    # The working tree as it is now (tracked changes, new files, deletions; .gitignore honoured).
    git(dst, f"--work-tree={ROOT}", "add", "--all")
    git(dst, "commit", "--quiet", "--allow-empty", "--no-verify", "-m", "working tree")
    git(dst, "reset", "--quiet", "--hard")
    git(dst, "tag", "--force", next_release())
    return dst


def commit_all(project: Path, message: str) -> None:
    """What the copy task does (`git init` + first commit), or a team committing its edits."""
    if not (project / ".git").exists():
        git(project, "init", "--quiet", "--initial-branch=main")
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--no-verify", "--allow-empty", "-m", message)


_RELEASE_RENDERS: dict[tuple[str, str, str], Path] = {}


def release_render(template: Path, tag: str, name: str = "default") -> Path:
    """Answer set `name` rendered at release `tag` of the template clone (tasks skipped), made
    once per session and shared: READ-ONLY (`copy_release` gives a test its own copy)."""
    key = (str(template), tag, name)
    if key not in _RELEASE_RENDERS:
        base = Path(tempfile.mkdtemp(prefix="slipway-release-"))
        atexit.register(shutil.rmtree, base, True)
        dst = base / "repo"
        _RELEASE_RENDERS[key] = render(dst, example_answers(name), src=template, vcs_ref=tag)
    return _RELEASE_RENDERS[key]


def copy_release(template: Path, dst: Path, tag: str, name: str = "default") -> Path:
    """A team's repo as the copy task leaves it (rendered at `tag`, first commit), tasks
    skipped: a copy of the shared `release_render`."""
    shutil.copytree(release_render(template, tag, name), dst, symlinks=True)
    commit_all(dst, f"Initial commit from the slipway template ({tag})")
    return dst


def copier_copy(
    template: Path, dst: Path, vcs_ref: str, *options: str, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    """`copier copy` with its tasks, as a team runs it (CLI, defaults for unanswered questions)."""
    args = [sys.executable, "-m", "copier", "copy", "--trust", "--defaults", "--vcs-ref", vcs_ref]
    return run([*args, *options, str(template), str(dst)], dst.parent, **extra_env)


def copier_update(
    project: Path,
    *,
    vcs_ref: str | None = None,
    skip_tasks: bool = True,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`copier update` exactly as the scheduled workflow runs it (CLI, no prompts)."""
    args = [sys.executable, "-m", "copier", "update", "--defaults", "--trust"]
    args += ["--conflict", "inline"]
    if skip_tasks:
        args.append("--skip-tasks")
    if vcs_ref:
        args += ["--vcs-ref", vcs_ref]
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", **(extra_env or {})}
    result = subprocess.run(
        args, cwd=project, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if result.returncode:
        raise AssertionError(f"copier update failed:\n{result.stdout}\n{result.stderr}")
    return result


def list_conflicts(project: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """The generated repo's own conflict lister, run as a team runs it (exit 1 while a conflict
    is left). `conflicted_files` (slipway.conflicts) applies the same rule in-process."""
    return subprocess.run(
        [sys.executable, "scripts/list_conflicts.py", *options],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )


def tree(project: Path) -> dict[str, bytes]:
    """Every file of a generated repo except git's and copier's bookkeeping."""
    files = {}
    for path in sorted(project.rglob("*")):
        rel = path.relative_to(project)
        if rel.parts[0] == ".git" or path.is_dir():
            continue
        content = path.read_bytes()
        if rel.as_posix() == ".copier-answers.yml":
            content = re.sub(rb"(?m)^_(commit|src_path):.*\n", b"", content)
        files[rel.as_posix()] = content
    return files


def team_owned(rel: str) -> bool:
    """A file `copier update` never overwrites (copier.yml `_skip_if_exists`)."""
    return any(fnmatch.fnmatch(rel, p) for p in copier_config.settings()["_skip_if_exists"])


def diff_r(left: Path, right: Path, *, except_team_files: bool = False) -> str:
    """`diff -r` of two generated repos, ignoring .git and the answers' _commit/_src_path.
    `except_team_files`: an updated repo against a fresh copy; the team's files (slo.yaml,
    model.py, ...) stay as the team's release wrote them, so they are not compared."""
    a, b = tree(left), tree(right)
    if except_team_files:
        for rel in [rel for rel in a.keys() & b.keys() if team_owned(rel)]:
            del a[rel], b[rel]
    lines = [f"only in {left.name}: {p}" for p in sorted(a.keys() - b.keys())]
    lines += [f"only in {right.name}: {p}" for p in sorted(b.keys() - a.keys())]
    for path in sorted(a.keys() & b.keys()):
        if a[path] != b[path]:
            result = subprocess.run(
                ["diff", "-u", str(left / path), str(right / path)],
                capture_output=True,
                text=True,
                check=False,
            )
            lines.append(result.stdout[:3000] or f"differs: {path}")
    return "\n".join(lines)


def changed_lines(old: Path, new: Path) -> dict[str, list[int]]:
    """Per file in both releases: 0-based line numbers of `old` that the next release changes."""
    changed = {}
    for rel, content in tree(old).items():
        target = new / rel
        if not target.is_file() or rel == ".copier-answers.yml":
            continue
        a = content.decode(errors="replace").splitlines(keepends=True)
        b = target.read_text(errors="replace").splitlines(keepends=True)
        lines = []
        for op, i1, i2, _, _ in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
            if op != "equal":
                lines += list(range(i1, max(i2, i1 + 1)))
        if lines:
            changed[rel] = lines
    return changed


def platform_python_files(project: Path) -> list[str]:
    package = project_answers(project)["package_name"]
    return sorted(
        p.relative_to(project).as_posix()
        for p in (project / "src" / package).rglob("*.py")
        if p.name not in {"model.py", "_template.py", "__init__.py"}
    )
