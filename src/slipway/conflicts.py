"""What a `copier update` left to resolve (inline conflict blocks, *.rej files), by the one rule
every generated repo ships: template/scripts/list_conflicts.py, loaded from its file here so the
fleet view and the template's tests cannot drift from what teams run.

Standard library only (list_conflicts.py is, too).
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
LIST_CONFLICTS = ROOT / "template" / "scripts" / "list_conflicts.py"


@lru_cache(maxsize=1)
def lister() -> ModuleType:
    """template/scripts/list_conflicts.py as a module (`find`, `conflict_lines`, `main`)."""
    spec = importlib.util.spec_from_file_location("slipway_list_conflicts", LIST_CONFLICTS)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {LIST_CONFLICTS}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def find(root: Path) -> list[tuple[str, str]]:
    """(path, what to do) for every file of the repo at `root` that needs a person."""
    found: list[tuple[str, str]] = lister().find(Path(root).resolve())
    return found


def conflicted_files(root: Path) -> list[str]:
    """The repository-relative paths of `find(root)`, sorted."""
    return sorted(path for path, _ in find(root))
