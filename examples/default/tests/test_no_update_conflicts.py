"""`copier update` left nothing to resolve: no conflict markers, no *.rej (docs/updating.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_no_unresolved_template_update_conflicts() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "list_conflicts.py"), str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"resolve these first:\n{result.stdout}{result.stderr}"
