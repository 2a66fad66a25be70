"""Slow: `<pkg> model-card` in an installed generated project fills the model card with the
numbers of the champion's own eval report, fetched from the registry (the shared fixture trained,
evaluated and promoted it), and refuses a report of another version. (The generated repo's own
tests/test_ownership.py runs in tests/slow/test_generated.py with the rest of its suite.)"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

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
    local = path / "reports" / "eval.json"
    report = json.loads(local.read_text(encoding="utf-8"))
    # the local report is a failed candidate's: the command must not use it
    stray = dict(report, passed=False, model={**report["model"], "version": "99"})
    local_text = local.read_text(encoding="utf-8")
    local.write_text(json.dumps(stray), encoding="utf-8")
    try:
        output = project.cli("model-card")
        card = card_path.read_text(encoding="utf-8")
        refused = subprocess.run(
            [str(path / ".venv" / "bin" / project.package), "model-card", "--report", str(local)],
            cwd=path,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        plots = sorted(Path(path / "docs").glob("model-card-*.png"))
    finally:
        card_path.write_text(initial, encoding="utf-8")  # the project is shared: leave it as found
        local.write_text(local_text, encoding="utf-8")
        for plot in Path(path / "docs").glob("model-card-*.png"):
            plot.unlink()

    assert f"champion version {report['model']['version']}" in output
    assert refused.returncode == 2
    assert "is of version 99, but the champion is version" in refused.stderr
    assert len(plots) == 1 and f"]({plots[0].name})" in card
    assert "| Model type | " in card and "| Parameters | " in card

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
