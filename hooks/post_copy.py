"""Copy-only task: write the lockfile, then `git init` and make the first commit.

Run by copier `_tasks` with the new project as the working directory, and only when
`_copier_operation == 'copy'` (never during `copier update`). A step that needs the network
(the lockfile) fails with a clear message and leaves a usable repo: the first `make setup`
resolves and writes the lockfile instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

LOCK_TIMEOUT_S = 600


def say(message: str) -> None:
    print(f"slipway: {message}", file=sys.stderr, flush=True)


def uv_command() -> list[str] | None:
    found = shutil.which("uv")
    if found:
        return [found]
    probe = subprocess.run([sys.executable, "-m", "uv", "--version"], capture_output=True)
    return [sys.executable, "-m", "uv"] if probe.returncode == 0 else None


def write_lockfile(project: Path) -> bool:
    if os.environ.get("SLIPWAY_SKIP_LOCK") == "1":
        say("SLIPWAY_SKIP_LOCK=1: not writing uv.lock now; `make setup` will")
        return False
    uv = uv_command()
    if uv is None:
        say("uv is not installed, so uv.lock was not written; `make setup` installs uv and writes it")
        return False
    say("resolving dependencies into uv.lock (needs access to your package index)…")
    try:
        result = subprocess.run(
            [*uv, "lock"], cwd=project, capture_output=True, text=True, timeout=LOCK_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        say(f"`uv lock` took over {LOCK_TIMEOUT_S}s and was stopped; run `uv lock` when the index is reachable")
        return False
    if result.returncode != 0:
        last = "\n    ".join(result.stderr.strip().splitlines()[-5:])
        say(
            "`uv lock` failed, so uv.lock was not written (offline, index unreachable, or no "
            "matching Python?). The repo is usable: run `make setup` once fixed. uv said:"
            f"\n    {last}"
        )
        return False
    return True


def git(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=project, capture_output=True, text=True)


def first_commit(project: Path, version: str) -> None:
    if shutil.which("git") is None:
        say("git is not installed: skipped `git init` and the first commit")
        return
    inside = git(project, "rev-parse", "--is-inside-work-tree")
    if inside.returncode == 0 and inside.stdout.strip() == "true":
        say("already inside a git repository: not initialising one and not committing")
        return
    if git(project, "init", "--quiet", "--initial-branch=main").returncode != 0:
        git(project, "init", "--quiet")
    git(project, "add", "--all")
    identity: list[str] = []
    if not git(project, "config", "user.email").stdout.strip():
        identity = ["-c", "user.name=slipway", "-c", "user.email=slipway@localhost"]
    result = git(project, *identity, "commit", "--quiet", "--no-verify", "-m",
                 f"Initial commit from the slipway template ({version})")
    if result.returncode != 0:
        say(f"`git commit` failed; commit the new files yourself:\n{result.stderr.strip()}")


def main() -> int:
    project = Path.cwd()
    version = os.environ.get("SLIPWAY_TEMPLATE_VERSION", "")
    if not version:
        answers = project / ".copier-answers.yml"
        version = next(
            (line.split(":", 1)[1].strip().strip("'\"") for line in answers.read_text().splitlines() if line.startswith("_commit:")),
            "unversioned",
        ) if answers.exists() else "unversioned"
    write_lockfile(project)
    first_commit(project, version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
