"""copier.yml as Copier reads it: every YAML document, `!include` globs resolved relative to the
template root, documents merged in order (later keys win; `_exclude`, `_jinja_extensions`,
`_secret_questions` and `_skip_if_exists` are concatenated). The one reader of copier.yml for the
platform's tools and the template's tests; `tests/test_copier_config.py` compares it with
Copier's own loader.

Standard library + PyYAML only (what Copier's Python has), so hooks can use it too.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COPIER_YML = ROOT / "copier.yml"
# Settings Copier concatenates across documents instead of letting the last one win.
LIST_SETTINGS = ("_exclude", "_jinja_extensions", "_secret_questions", "_skip_if_exists")


def _documents(path: Path) -> Iterator[dict[str, Any]]:
    root = path.parent.resolve()

    class Loader(yaml.SafeLoader):
        """A loader of its own: the `!include` constructor is not registered globally."""

    def include(loader: yaml.SafeLoader, node: yaml.Node) -> list[Any]:
        if not isinstance(node, yaml.ScalarNode):
            raise TypeError(f"{path}: !include takes a path or glob, got {node!r}")
        pattern = str(loader.construct_scalar(node))
        if PurePosixPath(pattern).is_absolute():
            raise ValueError(f"{path}: !include {pattern}: must be relative to the template")
        found: list[Any] = []
        for included in root.glob(pattern):
            if not included.resolve().is_relative_to(root):
                raise ValueError(f"{path}: !include {pattern}: {included} is outside the template")
            found += _flatten(yaml.load_all(included.read_bytes(), Loader=Loader))
        return found

    Loader.add_constructor("!include", include)
    yield from _flatten(yaml.load_all(path.read_bytes(), Loader=Loader))


def _flatten(documents: Any) -> list[dict[str, Any]]:
    """Documents and the lists `!include` returns, flattened; empty documents dropped."""
    flat: list[dict[str, Any]] = []
    for doc in documents:
        if isinstance(doc, list):
            flat += _flatten(doc)
        elif doc:
            flat.append(doc)
    return flat


def load(path: Path = COPIER_YML) -> dict[str, Any]:
    """Every setting (`_name`) and question of copier.yml, merged as Copier merges them: in the
    order of first definition (includes where they are included), the last definition's value."""
    merged: dict[str, Any] = {}
    lists: dict[str, list[Any]] = {}
    for doc in _documents(path):
        for key, value in doc.items():
            if key in LIST_SETTINGS:
                lists.setdefault(key, []).extend(value)
            merged[key] = value
    merged.update(lists)
    return merged


@lru_cache(maxsize=8)
def _cached(path: Path) -> dict[str, Any]:
    return load(path)


def settings(path: Path = COPIER_YML) -> dict[str, Any]:
    """`load()`, cached per path; do not modify the result."""
    return _cached(path.resolve())


def questions(data: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Every question, asked or computed (`when: false`), in file order; a bare value is the
    short form of `{"default": value}`, as in Copier."""
    data = settings() if data is None else data
    return {
        key: value if isinstance(value, dict) else {"default": value}
        for key, value in data.items()
        if not key.startswith("_")
    }


def asked(data: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """The questions `copier copy` asks (computed values left out)."""
    return {k: v for k, v in questions(data).items() if v.get("when") is not False}


def computed(data: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Values derived from the answers (`when: false`), available to templates and validators."""
    return {k: v for k, v in questions(data).items() if v.get("when") is False}


def computed_value(name: str, data: dict[str, Any] | None = None) -> Any:
    """The default of a computed value that does not depend on answers (a constant such as
    `team_handle_pattern` or `reserved_module_names`)."""
    value = computed(data)[name]["default"]
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        raise ValueError(f"{name} is derived from answers; it has no constant value")
    return value


def team_handle_pattern(data: dict[str, Any] | None = None) -> str:
    """The regex of a team handle (`@org/team`, GitLab subgroups `@group/sub/team`) that the
    owner_team and platform_team validators apply: includes/patterns.yml."""
    return str(computed_value("team_handle_pattern", data))
