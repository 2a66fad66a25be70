"""Copy and update task: render the files generated from slo.yaml (alert rules and their promtool
tests, each overlay's PrometheusRule, the Grafana dashboard, docs/slo.md and the generated
blocks of docs/runbook.md) with the project's own `<package>.ops` renderer.

Runs with copier's Python in the new project's directory; the ops package needs only the standard
library and PyYAML (a copier dependency), so nothing has to be installed first. Runs before the
first commit (post_copy.py) so the generated files are part of it, and again on every
`copier update`, so they follow the team's slo.yaml and the newest generator.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path


def main() -> int:
    package = sys.argv[1]
    project = Path.cwd()
    if not (project / "src" / package / "ops" / "__main__.py").exists():
        print(f"slipway: src/{package}/ops not found; ops files not rendered", file=sys.stderr)
        return 0
    sys.path.insert(0, str(project / "src"))
    sys.argv = [f"{package}.ops", "render", "--root", str(project)]
    try:
        runpy.run_module(f"{package}.ops", run_name="__main__", alter_sys=True)
    except SystemExit as done:
        return int(done.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
