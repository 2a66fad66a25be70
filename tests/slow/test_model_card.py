"""Slow: `<pkg> model-card` in an installed generated project fills the model card with the
numbers of the real eval report that `<pkg> evaluate` wrote (by the shared fixture). (The generated repo's own
tests/test_ownership.py runs in tests/slow/test_generated.py with the rest of its suite.)"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.support.generated import GeneratedProject


@pytest.mark.parametrize("answers", ["default", "regression-gitlab"])
def test_model_card_command_fills_real_numbers(
    generated_project: Callable[[str], GeneratedProject], answers: str
) -> None:
    project = generated_project(answers)
    path = project.path
    card_path = path / "docs" / "model-card.md"
    initial = card_path.read_text(encoding="utf-8")
    try:
        project.cli("model-card")
        report = json.loads((path / "reports" / "eval.json").read_text(encoding="utf-8"))
        card = card_path.read_text(encoding="utf-8")
    finally:
        card_path.write_text(initial, encoding="utf-8")  # the project is shared: leave it as found

    assert "Not evaluated yet" in initial and "Not evaluated yet" not in card
    metric = report["slo"]["metric"]
    assert f"{metric} = {report['metrics'][metric]:.4f}" in card
    for name, value in report["metrics"].items():
        assert f"| {name} | {value:.4f} |" in card
    assert (
        f"version {report['model']['version']} (evaluated as alias `{report['model']['alias']}`)"
        in card
    )
    assert report["dataset"]["sha256"] in card
    assert project.answers["owner_team"] in card
    # Team-written sections survive the command.
    for heading in ("## Intended use", "## Out-of-scope uses", "## Limitations"):
        assert initial.split(heading, 1)[1].split("\n## ", 1)[0] in card
