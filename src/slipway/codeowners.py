"""CODEOWNERS parsing and matching for GitHub and GitLab, by the one rule every generated repo
ships: template/scripts/codeowners.py, loaded from its file here (as conflicts.py loads
list_conflicts.py), so the fleet view, the template's tests and the generated repos' own tests
cannot drift apart.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

CODEOWNERS_MODULE = Path(__file__).resolve().parents[2] / "template" / "scripts" / "codeowners.py"


def _load():  # type: ignore[no-untyped-def]
    name = "slipway_template_codeowners"
    spec = importlib.util.spec_from_file_location(name, CODEOWNERS_MODULE)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {CODEOWNERS_MODULE}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


_module = _load()
PROVIDERS = _module.PROVIDERS
CodeownersError = _module.CodeownersError
Rule = _module.Rule
parse = _module.parse
pattern_regex = _module.pattern_regex
matches = _module.matches
owners_of = _module.owners_of
unmatched = _module.unmatched
