"""The template's own docs: the mkdocs site builds strictly, the questions reference is generated
from copier.yml, and the ownership map agrees with copier.yml's `_skip_if_exists`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from slipway import copier_config, questions_doc

from tests.support.render import ROOT


def test_questions_reference_is_generated_from_copier_yml() -> None:
    committed = (ROOT / "docs" / "questions.md").read_text(encoding="utf-8")
    assert committed == questions_doc.render(), (
        f"docs/questions.md is stale: run `{questions_doc.COMMAND}`"
    )


def test_questions_reference_lists_every_question() -> None:
    questions = list(copier_config.asked())
    page = (ROOT / "docs" / "questions.md").read_text(encoding="utf-8")
    for name in questions:
        assert f"| [`{name}`]" in page, name
        assert f"\n## {name.replace('_', '-')}\n" in page, name


def test_questions_reference_detects_drift(tmp_path: Path) -> None:
    questions = questions_doc.load_questions()
    questions["owner_team"] = {**questions["owner_team"], "help": "changed help text"}
    assert questions_doc.render(questions) != questions_doc.render()
    assert "changed help text" in questions_doc.render(questions)


def test_ownership_map_team_rows_match_skip_if_exists() -> None:
    page = (ROOT / "docs" / "ownership.md").read_text(encoding="utf-8")
    team = set(re.findall(r"^\| `([^`]+)` \| team \|", page, flags=re.MULTILINE))
    skip = set(copier_config.settings()["_skip_if_exists"])
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


def test_every_recorded_release_has_its_changelog_section_and_releasing_row() -> None:
    """Teams read the CHANGELOG before `copier update`: a release recorded for the update tests
    (tests/update/releases.yml) without its section, or with another commit, misleads them."""
    from tests.support.update import releases

    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    table = (ROOT / "docs" / "releasing.md").read_text(encoding="utf-8")
    for tag, sha in releases().items():
        assert re.search(rf"^## {re.escape(tag)} \(commit {sha[:7]}\)$", changelog, re.M), tag
        assert f"| {tag} | `{sha}` |" in table, tag
