"""`./dev demo`: render a service with the default answers and bring it up on embedded defaults.

    python -m slipway demo [--dir build/demo-ml-service] [--host 127.0.0.1] [--port 8000]

Renders with `copier copy --trust --defaults` (every task: lockfile, ops files, first commit),
then runs the generated repo's `make up` (install, train on the sample, evaluate, promote,
serve) in its place.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from slipway.copier_config import ROOT

COMMAND = "python -m slipway demo"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path(os.environ.get("SLIPWAY_DEMO_DIR", ROOT / "build" / "demo-ml-service")),
        help="where to render (replaced; default build/demo-ml-service or $SLIPWAY_DEMO_DIR)",
    )
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", default=os.environ.get("PORT", "8000"))
    args = parser.parse_args(argv)
    from copier import run_copy

    target = args.dir.resolve()
    shutil.rmtree(target, ignore_errors=True)
    print(f"slipway: rendering the template with default answers into {target}", file=sys.stderr)
    run_copy(str(ROOT), str(target), defaults=True, unsafe=True)
    make = shutil.which("make")
    if make is None:
        print("slipway: make is not installed", file=sys.stderr)
        return 1
    os.chdir(target)
    os.execv(make, [make, "up", f"HOST={args.host}", f"PORT={args.port}"])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
