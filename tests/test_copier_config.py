"""slipway.copier_config reads copier.yml exactly as Copier does, and the team-handle pattern is
defined once (includes/patterns.yml) for the validators and the platform's Python."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from copier._template import load_template_config
from slipway import copier_config

from tests.support.render import ROOT, example_answers, render


def test_the_merged_settings_equal_copiers_own_loader() -> None:
    ours = copier_config.load()
    theirs = load_template_config(ROOT / "copier.yml")
    assert ours == theirs
    assert list(ours) == list(theirs), "same order: the questions are asked in this order"


def test_includes_globs_and_list_settings(tmp_path: Path) -> None:
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "a.yml").write_text("a: 1\n_exclude: [x]\n---\nb: 2\n")
    (tmp_path / "inc" / "c.yml").write_text("c: {when: false, default: 3}\n")
    (tmp_path / "copier.yml").write_text(
        "_exclude: [w]\na: 0\n---\n!include inc/*.yml\n---\nd: 4\n_exclude: [y]\n"
    )
    ours = copier_config.load(tmp_path / "copier.yml")
    assert ours == load_template_config(tmp_path / "copier.yml")
    assert ours["a"] == 1 and ours["_exclude"] == ["w", "x", "y"]
    assert list(copier_config.computed(ours)) == ["c"]
    assert copier_config.questions(ours)["d"] == {"default": 4}
    (tmp_path / "copier.yml").write_text("---\n!include /etc/passwd\n")
    with pytest.raises(ValueError, match="relative"):
        copier_config.load(tmp_path / "copier.yml")


def test_the_team_handle_pattern_is_defined_once() -> None:
    pattern = copier_config.team_handle_pattern()
    text = (ROOT / "copier.yml").read_text()
    assert pattern not in text and text.count("regex_search(team_handle_pattern)") == 2
    handle = re.compile(pattern)
    for good in ("@acme/ml-team", "@acme/ml/fraud", "@insurer/data/claims-ml", "@a.b/c_d"):
        assert handle.match(good), good
    for bad in ("acme/ml", "@acme", "@acme/", "@-acme/x", "@acme/ml team", "@a/b/c/d/e/f"):
        assert not handle.match(bad), bad


@pytest.mark.parametrize("handle", ["@acme/ml/team", "@insurer/a/b/c"])
def test_the_validators_accept_what_the_pattern_accepts(tmp_path: Path, handle: str) -> None:
    answers = example_answers("regression-gitlab", owner_team=handle, platform_team=handle)
    assert re.match(copier_config.team_handle_pattern(), handle)
    render(tmp_path / "ok", answers, pretend=True)


def test_a_constant_derived_from_answers_is_refused() -> None:
    with pytest.raises(ValueError, match="derived from answers"):
        copier_config.computed_value("project_slug")
