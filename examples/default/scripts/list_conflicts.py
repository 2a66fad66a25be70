#!/usr/bin/env python3
"""List what a `copier update` left to resolve: inline conflict markers and *.rej files.

    python scripts/list_conflicts.py              # exit 1 and list them, exit 0 when clean
    python scripts/list_conflicts.py --markdown   # the same list for a pull/merge request body

Checks the files git knows about (tracked + untracked, not ignored), so .venv/ and build output
are skipped; outside a git repository every file is checked. Standard library only.

The one conflict rule of slipway: the template's fleet view and tests load this file
(src/slipway/conflicts.py), so keep `find(root)` and `conflict_lines(path)` stable.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

# A conflict block opens and closes with 7 markers and a label (git merge-file / copier inline).
START = re.compile(rb"^<{7}(?: |$)")
END = re.compile(rb"^>{7}(?: |$)")
SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__"}


def candidate_files(root: Path) -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        check=False,
    )
    if listed.returncode == 0:
        names = {n for n in listed.stdout.decode().split("\0") if n}
        # *.rej files may be gitignored by the team: list them anyway.
        ignored = subprocess.run(
            ["git", "ls-files", "-z", "--others", "--ignored", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            check=False,
        )
        names |= {n for n in ignored.stdout.decode().split("\0") if n.endswith(".rej")}
        return [root / n for n in sorted(names) if (root / n).is_file()]
    return sorted(
        p for p in root.rglob("*") if p.is_file() and not SKIP_DIRS & set(p.relative_to(root).parts)
    )


def conflict_lines(path: Path) -> list[int]:
    """1-based line numbers where a conflict block starts (only blocks that also close)."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError:
        return []
    starts, open_at = [], None
    for number, line in enumerate(lines, start=1):
        if START.match(line):
            open_at = number
        elif END.match(line) and open_at is not None:
            starts.append(open_at)
            open_at = None
    return starts


def find(root: Path) -> list[tuple[str, str]]:
    """(path, what) for every file that needs a person."""
    found = []
    for path in candidate_files(root):
        rel = path.relative_to(root).as_posix()
        if path.name.endswith(".rej"):
            found.append((rel, "rejected hunks: apply them by hand, then delete this file"))
            continue
        starts = conflict_lines(path)
        if starts:
            where = ", ".join(str(n) for n in starts)
            found.append((rel, f"{len(starts)} conflict block(s) at line {where}"))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default=".", type=Path)
    parser.add_argument("--markdown", action="store_true", help="print a Markdown list")
    args = parser.parse_args(argv)
    found = find(args.root.resolve())
    if args.markdown:
        if not found:
            print("No conflicts: the update applied cleanly.")
        else:
            print(f"**{len(found)} file(s) need a decision** before merging:\n")
            print("\n".join(f"- [ ] `{path}`: {what}" for path, what in found))
            print(
                "\nResolve each block between `<<<<<<< before updating` (this repo) and "
                "`>>>>>>> after updating` (the new template), keeping what you need; "
                "see docs/updating.md."
            )
    else:
        for path, what in found:
            print(f"{path}: {what}")
        if found:
            print(f"{len(found)} file(s) with unresolved update conflicts", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
