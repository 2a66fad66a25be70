"""`python -m slipway cookiecutter publish --ref vX.Y.Z`: commit the cookiecutter rendition of a
release onto the `cookiecutter` branch of this repository (docs/releasing.md), without touching
the working tree or main: the rendition is built into a temporary directory and committed with
git plumbing (a temporary index, `write-tree`, `commit-tree`, `update-ref`). Each commit of the
branch is one release's rendition; its parent is the previous one.

    cookiecutter https://github.com/<org>/slipway --checkout cookiecutter --no-input
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from slipway.rendition import build


def git(repo: Path, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if check and result.returncode:
        raise RuntimeError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout.strip()


def publish(repo: Path, ref: str, branch: str = "cookiecutter", src_path: str | None = None) -> str:
    """Build the rendition of `ref` and commit it as the new tip of `branch`; the commit's SHA."""
    if src_path is None:
        src_path = git(repo, "remote", "get-url", "origin", check=False) or str(repo)
    commit = git(repo, "rev-parse", "--verify", f"{ref}^{{commit}}")
    with tempfile.TemporaryDirectory(prefix="slipway-publish-") as tmp:
        out = build(Path(tmp) / "rendition", src=repo, ref=ref, src_path=src_path)
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        # -f: the rendition carries the generated repo's .gitignore, which must not hide files
        git(repo, f"--work-tree={out}", "add", "--all", "--force", ".", env=env)
        tree = git(repo, "write-tree", env=env)
    parent = git(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False)
    identity = ["-c", "user.name=slipway", "-c", "user.email=slipway@localhost"]
    if git(repo, "config", "user.email", check=False):
        identity = []
    message = (
        f"cookiecutter rendition of {ref} ({commit[:12]}), "
        "by `python -m slipway cookiecutter publish`"
    )
    sha = git(
        repo, *identity, "commit-tree", tree, *(["-p", parent] if parent else []), "-m", message
    )
    git(repo, "update-ref", f"refs/heads/{branch}", sha, *([parent] if parent else []))
    return sha
