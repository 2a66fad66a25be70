"""examples/default/: the repository a team gets with the default answers, checked in so that a
review shows what every template change does to a real generated repo.

    python -m slipway example            # re-render examples/default from the working tree
    python -m slipway example --check    # exit 1 and list the differences when it is stale
    python -m slipway example --ref HEAD # from a commit instead (`git archive`)

What it is: `copier copy` of the template with tests/answers/default.yml and its tasks (the ops
files rendered from slo.yaml), except the two that do not belong in a checked-in example: the
lockfile (SLIPWAY_SKIP_LOCK=1: resolving needs the package index and would change with every
upstream release) and the first commit (no .git). The template is copied without its git
history first, so the example is unversioned: no `_commit` in .copier-answers.yml, template
version "unversioned" in catalog-info.yaml and `_template.py`, `_src_path: ../..` (the template
that made it). tests/test_example.py fails when the checked-in copy differs from a fresh render.
"""

from __future__ import annotations

import argparse
import difflib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import yaml

from slipway.copier_config import ROOT

EXAMPLE = ROOT / "examples" / "default"
ANSWERS = ROOT / "tests" / "answers" / "default.yml"
COMMAND = "python -m slipway example"
# What `copier copy` reads from the template repository.
TEMPLATE_PARTS = ("copier.yml", "includes", "template", "datasets", "hooks")
SRC_PATH = "../.."


def snapshot(dst: Path, ref: str | None = None) -> Path:
    """The template's parts, without git: from the working tree, or from commit `ref`."""
    dst.mkdir(parents=True)
    if ref is None:
        for part in TEMPLATE_PARTS:
            source = ROOT / part
            if source.is_dir():
                shutil.copytree(
                    source, dst / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
                )
            else:
                shutil.copy2(source, dst / part)
        return dst
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref, *TEMPLATE_PARTS],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dst, filter="tar")
    return dst


def copy_without_lock(src: Path | str, dst: Path, data: dict[str, Any], **options: Any) -> Path:
    """`copier copy` with the template's tasks, as a team gets the repo (ops files rendered,
    first commit), except the lockfile: SLIPWAY_SKIP_LOCK=1 for the copy task."""
    from copier import run_copy
    from plumbum import local  # copier runs its tasks with plumbum's copy of the environment

    with local.env(SLIPWAY_SKIP_LOCK="1"):
        run_copy(str(src), str(dst), data=data, defaults=True, unsafe=True, quiet=True, **options)
    return dst


def render(dst: Path, ref: str | None = None) -> Path:
    """A fresh render of the example into `dst` (which must not exist)."""
    answers = yaml.safe_load(ANSWERS.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="slipway-example-") as tmp:
        src = snapshot(Path(tmp) / "slipway", ref)
        copy_without_lock(src, dst, answers)
        shutil.rmtree(dst / ".git", ignore_errors=True)
        answers_file = dst / ".copier-answers.yml"
        text = answers_file.read_text(encoding="utf-8")
        text = re.sub(r"(?m)^_src_path: .*$", f"_src_path: {SRC_PATH}", text)
        answers_file.write_text(text, encoding="utf-8")
        leaked = [p for p in files(dst) if str(src).encode() in (dst / p).read_bytes()]
        if leaked:
            raise RuntimeError(f"the temporary template path leaked into {leaked}")
    return dst


def files(tree: Path) -> dict[str, Path]:
    """Repository-relative path -> file, for every file of a tree that git would track: in a
    checkout, `git ls-files` (so a `make setup` run inside examples/default, whose .venv and
    reports the example's own .gitignore ignores, is not a difference); elsewhere every file."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "."],
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )
    if listed.returncode == 0:
        names = [n for n in listed.stdout.split("\0") if n and (tree / n).is_file()]
        return {n: tree / n for n in sorted(names)}
    return {
        p.relative_to(tree).as_posix(): p
        for p in sorted(tree.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def differences(expected: Path, actual: Path) -> list[str]:
    """What differs between two trees: missing and extra files, contents (a unified diff,
    shortened), the executable bit."""
    want, have = files(expected), files(actual)
    out = [f"missing: {p}" for p in sorted(want.keys() - have.keys())]
    out += [f"not rendered any more: {p}" for p in sorted(have.keys() - want.keys())]
    for rel in sorted(want.keys() & have.keys()):
        a, b = want[rel].read_bytes(), have[rel].read_bytes()
        if a != b:
            diff = difflib.unified_diff(
                b.decode(errors="replace").splitlines(),
                a.decode(errors="replace").splitlines(),
                f"examples/default/{rel}",
                f"fresh render/{rel}",
                lineterm="",
                n=1,
            )
            out.append("\n".join(list(diff)[:40]))
        elif os.access(want[rel], os.X_OK) != os.access(have[rel], os.X_OK):
            out.append(f"executable bit differs: {rel}")
    return out


def check(example: Path = EXAMPLE, ref: str | None = None) -> list[str]:
    """The differences between `example` and a fresh render ([] when it is up to date)."""
    with tempfile.TemporaryDirectory(prefix="slipway-example-check-") as tmp:
        return differences(render(Path(tmp) / "default", ref), example)


def write(example: Path = EXAMPLE, ref: str | None = None) -> None:
    with tempfile.TemporaryDirectory(prefix="slipway-example-new-") as tmp:
        fresh = render(Path(tmp) / "default", ref)
        if example.exists():
            shutil.rmtree(example)
        example.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(fresh, example, symlinks=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if examples/default is stale")
    parser.add_argument("--ref", help="render from this commit instead of the working tree")
    args = parser.parse_args(argv)
    if args.check:
        found = check(ref=args.ref)
        if found:
            print("\n".join(found))
            print(f"examples/default is stale: run `{COMMAND}`", file=sys.stderr)
            return 1
        print("examples/default is up to date")
        return 0
    write(ref=args.ref)
    print(f"wrote {EXAMPLE.relative_to(ROOT)} ({len(files(EXAMPLE))} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
