"""Migration: a platform file moved in the template; the team's edits move with it.

    move.py before|after OLD NEW        (paths relative to the project; "<package>" = package_name)
    move.py before|after --moves FILE   (one "OLD NEW" pair per line; `#` starts a comment)

Copier 9 alone would delete the team's OLD file during `copier update` (edits included: the
template no longer has it) and write a pristine NEW file: a silent loss. So:

- `before` (copier `_stage == 'before'`): keep the team's OLD as it is now (or the fact that the
  team deleted it) under .git/, where nothing of the update touches it.
- `after`: 3-way merge into NEW: base = OLD as the previous release shipped it (read from the
  template's git history at $VERSION_FROM), ours = the team's OLD, theirs = the new release's NEW.
  Clean merges are written silently; overlapping edits get copier's own inline conflict markers
  ("before updating" / "after updating"), so scripts/list_conflicts.py and the update pull request
  report them. If the team had deleted OLD, NEW is deleted too (a deleted file stays deleted).

Moves chain: updating across several releases runs each release's moves in turn (v0.1.0 ->
v0.3.0: metrics.py -> quality.py -> training/quality.py); each move hands the team's file and its
base (or the team's deletion) to the next one, so the chain merges like a single move. A file
newer than the repo's release (never shipped to it) is not a deletion: its new place is kept.

Runs with copier's Python in the project directory; copier sets $STAGE and $VERSION_FROM. The
answers are not in copier's render context at the `before` stage, so "<package>" is read from the
project's answers file.
Only files that the template ships without rendering (no .jinja suffix) have an exact base; for
a rendered file the whole file is merged against an empty base (every difference is a conflict:
reported, never lost).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

TEMPLATE_ROOT = Path(__file__).resolve().parents[2]  # {{ _copier_conf.src_path }}
SUBDIRECTORY = "template"  # copier.yml `_subdirectory`
LABELS = ["-L", "before updating", "-L", "last update", "-L", "after updating"]


def say(message: str) -> None:
    print(f"slipway migration: {message}", file=sys.stderr, flush=True)


def stash_dir(project: Path, old: str) -> Path:
    git_dir = subprocess.run(
        ["git", "rev-parse", "--git-dir"], cwd=project, capture_output=True, text=True, check=True
    ).stdout.strip()
    key = hashlib.sha256(old.encode()).hexdigest()[:16]
    return (project / git_dir / "slipway-migrations" / key).resolve()


def template_source(old: str, package: str) -> str:
    """Path of OLD in the template repository (the package directory is a Jinja name there)."""
    parts = ["{{package_name}}" if part == package else part for part in Path(old).parts]
    return "/".join([SUBDIRECTORY, *parts])


def previous_release_content(old: str, package: str) -> bytes | None:
    ref = os.environ.get("VERSION_FROM", "")
    if not ref:
        return None
    shown = subprocess.run(
        ["git", "show", f"{ref}:{template_source(old, package)}"],
        cwd=TEMPLATE_ROOT,
        capture_output=True,
        check=False,
    )
    return shown.stdout if shown.returncode == 0 else None


def before(project: Path, old: str, package: str) -> None:
    stash = stash_dir(project, old)
    stash.mkdir(parents=True, exist_ok=True)
    source = project / old
    # Whether the repo's release shipped OLD at all: absent + not shipped is not a deletion.
    shipped = previous_release_content(old, package) is not None
    state = {"old": old, "present": source.is_file(), "shipped": shipped}
    if source.is_file():
        (stash / "ours").write_bytes(source.read_bytes())
        state["mode"] = source.stat().st_mode & 0o777
    (stash / "state.json").write_text(json.dumps(state))


def merge(ours: bytes, base: bytes, theirs: bytes) -> tuple[bytes, int]:
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name, content in (("ours", ours), ("base", base), ("theirs", theirs)):
            path = Path(tmp, name)
            path.write_bytes(content)
            paths.append(str(path))
        result = subprocess.run(
            ["git", "merge-file", "-p", *LABELS, *paths], capture_output=True, check=False
        )
    if result.returncode < 0 or result.returncode > 127:
        raise SystemExit(f"git merge-file failed: {result.stderr.decode()}")
    return result.stdout, result.returncode


def hand_over(
    project: Path, new: str, state: dict[str, object], ours: bytes | None, base: bytes | None
) -> None:
    """When a later migration of this same update moves NEW again (its `before` stashed NEW,
    which did not exist yet), give it what this move had: the team's file and its base, or the
    fact that the team deleted it. Chains of moves (metrics.py -> quality.py ->
    training/quality.py) then merge and delete exactly like one move."""
    later = stash_dir(project, new)
    if not (later / "state.json").is_file():
        return
    handed = {
        **json.loads((later / "state.json").read_text()),
        "present": state["present"],
        "shipped": True,
        "mode": state.get("mode", 0o644),
    }
    (later / "state.json").write_text(json.dumps(handed))
    if ours is not None:
        (later / "ours").write_bytes(ours)
    if base is not None:
        (later / "base").write_bytes(base)


def after(project: Path, old: str, new: str, package: str) -> None:
    stash = stash_dir(project, old)
    state_file = stash / "state.json"
    if not state_file.exists():
        say(f"no record of {old} from before the update; nothing to move")
        return
    state = json.loads(state_file.read_text())
    target = project / new
    if not state["present"] and not state.get("shipped", True):
        say(f"{old} is newer than this repo's release: {new} is added as the template has it")
    elif not state["present"]:
        if target.exists():
            target.unlink()
        hand_over(project, new, state, None, None)
        say(f"{old} was deleted in this repo, so its new location {new} is not created")
    else:
        ours = (stash / "ours").read_bytes()
        handed_base = stash / "base"
        base = (
            handed_base.read_bytes()
            if handed_base.is_file()
            else previous_release_content(old, package)
        )
        hand_over(project, new, state, ours, base)
        theirs = target.read_bytes() if target.exists() else None
        if theirs is None:
            merged, conflicts = ours, 0
        elif base is not None and ours == base:
            merged, conflicts = theirs, 0
        else:
            merged, conflicts = merge(ours, base or b"", theirs)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(merged)
        target.chmod(state.get("mode", 0o644))
        if conflicts:
            say(f"moved {old} -> {new}: {conflicts} conflict(s) to resolve in {new}")
        else:
            say(f"moved {old} -> {new}" + ("" if ours == base else " with this repo's edits"))
    if (project / old).exists():
        (project / old).unlink()
    for leftover in stash.iterdir():
        leftover.unlink()
    stash.rmdir()
    if not any(stash.parent.iterdir()):
        stash.parent.rmdir()


def package_name(project: Path, answers_file: str) -> str:
    for line in (project / answers_file).read_text().splitlines():
        key, _, value = line.partition(":")
        if key == "package_name":
            return value.strip().strip("'\"")
    raise SystemExit(f"package_name not found in {answers_file}")


def read_moves(path: Path) -> list[tuple[str, str]]:
    moves = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.partition("#")[0].split()
        if not fields:
            continue
        if len(fields) != 2:
            raise SystemExit(f"{path}:{number}: expected 'OLD NEW', got {line!r}")
        moves.append((fields[0], fields[1]))
    return moves


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=["before", "after"])
    parser.add_argument("old", nargs="?", help="old path, relative to the project root")
    parser.add_argument("new", nargs="?", help="new path, relative to the project root")
    parser.add_argument("--moves", type=Path, help="a file of 'OLD NEW' lines")
    parser.add_argument("--answers-file", default=".copier-answers.yml")
    args = parser.parse_args(argv)
    if args.moves is not None:
        moves = read_moves(args.moves)
    elif args.old and args.new:
        moves = [(args.old, args.new)]
    else:
        parser.error("give OLD NEW or --moves FILE")
    project = Path.cwd()
    package = package_name(project, args.answers_file)
    for raw_old, raw_new in moves:
        old, new = (path.replace("<package>", package) for path in (raw_old, raw_new))
        if args.stage == "before":
            before(project, old, package)
        else:
            after(project, old, new, package)
    return 0


if __name__ == "__main__":
    sys.exit(main())
