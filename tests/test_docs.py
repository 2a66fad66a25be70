"""The template's own docs: the mkdocs site builds strictly, the questions reference is generated
from copier.yml, and the ownership map agrees with copier.yml's `_skip_if_exists`."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def copier_settings() -> dict[str, Any]:
    """copier.yml's documents merged, with `!include` files resolved like Copier does."""

    class Loader(yaml.SafeLoader):
        pass

    def include(loader: yaml.SafeLoader, node: yaml.Node) -> list[Any]:
        pattern = loader.construct_scalar(node)  # type: ignore[arg-type]
        docs: list[Any] = []
        for path in sorted(ROOT.glob(pattern)):
            docs += list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=Loader))
        return docs

    Loader.add_constructor("!include", include)
    merged: dict[str, Any] = {}

    def merge(doc: Any) -> None:
        if isinstance(doc, list):
            for item in doc:
                merge(item)
        elif isinstance(doc, dict):
            merged.update(doc)

    for doc in yaml.load_all((ROOT / "copier.yml").read_text(encoding="utf-8"), Loader=Loader):
        merge(doc)
    return merged


def test_questions_reference_is_generated_from_copier_yml() -> None:
    gen = load_script("gen_questions_doc")
    committed = (ROOT / "docs" / "questions.md").read_text(encoding="utf-8")
    assert committed == gen.render(), (
        "docs/questions.md is stale: run `python scripts/gen_questions_doc.py`"
    )


def test_questions_reference_lists_every_question() -> None:
    settings = copier_settings()
    questions = [
        k
        for k, v in settings.items()
        if not k.startswith("_") and not (isinstance(v, dict) and v.get("when") is False)
    ]
    page = (ROOT / "docs" / "questions.md").read_text(encoding="utf-8")
    for name in questions:
        assert f"| [`{name}`]" in page, name
        assert f"\n## {name.replace('_', '-')}\n" in page, name


def test_questions_reference_detects_drift(tmp_path: Path) -> None:
    gen = load_script("gen_questions_doc")
    questions = gen.load_questions()
    questions["owner_team"] = {**questions["owner_team"], "help": "changed help text"}
    assert gen.render(questions) != gen.render()
    assert "changed help text" in gen.render(questions)


def test_ownership_map_team_rows_match_skip_if_exists() -> None:
    page = (ROOT / "docs" / "ownership.md").read_text(encoding="utf-8")
    team = set(re.findall(r"^\| `([^`]+)` \| team \|", page, flags=re.MULTILINE))
    skip = set(copier_settings()["_skip_if_exists"])
    assert team == skip, (
        f"docs/ownership.md team rows {sorted(team)} != copier.yml _skip_if_exists {sorted(skip)}"
    )


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    built = {
        p.relative_to(tmp_path / "site").as_posix() for p in (tmp_path / "site").rglob("*.html")
    }
    for page in (ROOT / "docs").glob("*.md"):
        expected = "index.html" if page.stem == "index" else f"{page.stem}/index.html"
        assert expected in built, page.name
