"""`python -m <package>.ops render|check [--root DIR]`: generate or verify the ops files."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .render import render, stale

PACKAGE = __package__.rpartition(".")[0] if __package__ else "ops"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {PACKAGE}.ops", description=__doc__)
    parser.add_argument("action", choices=["render", "check"])
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repo root (default: cwd)")
    args = parser.parse_args(argv)
    if args.action == "render":
        for path in render(args.root, PACKAGE):
            print(f"wrote {path}")
        return 0
    outdated = stale(args.root, PACKAGE)
    for path in outdated:
        print(f"stale: {path} (run `make ops`)", file=sys.stderr)
    return 1 if outdated else 0


if __name__ == "__main__":
    sys.exit(main())
