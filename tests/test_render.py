"""Fast render tests: every answer set, parseable output, validators, no secrets."""

from __future__ import annotations

import json
import re
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from slipway import copier_config

from tests.support.render import RenderCache, answer_sets, example_answers, render


QUESTIONS = copier_config.questions()

# A Jinja statement (`{% if`, `{%- for`) never belongs in output; `{{` only when it opens an
# expression over a template variable (Go templates such as docker's `{{index .RepoDigests 0}}`
# and Python's `b"[0-9]{%d}" % n` are legitimate output).
JINJA_LEFTOVER = re.compile(
    r"\{%[-+]?\s|\{\{-?\s*(?:_copier\w*|" + "|".join(map(re.escape, QUESTIONS)) + r")\b"
)


def files(project: Path) -> list[Path]:
    return [p for p in project.rglob("*") if p.is_file() and ".git" not in p.parts]


@pytest.fixture(params=answer_sets())
def rendered(request: pytest.FixtureRequest, renders: RenderCache) -> tuple[Path, dict[str, Any]]:
    return renders(request.param), example_answers(request.param)


def choice_values(spec: dict[str, Any]) -> set[str]:
    """The values of a multiple-choice question (a list, a label -> value map, or `label: value`
    lines of a templated string)."""
    choices = spec["choices"]
    if isinstance(choices, list):
        return {str(c) for c in choices}
    if isinstance(choices, dict):
        return {str(v) for v in choices.values()}
    return set(re.findall(r"^\s*[^{%\n][^\n]*:\s*(\S+)\s*$", choices, flags=re.MULTILINE))


def test_the_answer_sets_cover_every_choice() -> None:
    """Every choice of every multiple-choice question appears in some file of tests/answers/."""
    sets = [example_answers(name) for name in answer_sets()]
    for name, spec in QUESTIONS.items():
        if "choices" in spec:
            values = choice_values(spec)
            assert len(values) >= 2, (name, values)
            missing = values - {str(a[name]) for a in sets}
            assert not missing, f"no answer set in tests/answers/ picks {name} = {sorted(missing)}"


def test_expected_files(rendered: tuple[Path, dict[str, Any]]) -> None:
    project, answers = rendered
    pkg = project / "src" / answers["package_name"]
    for relative in [
        "pyproject.toml", "Makefile", "README.md", "slo.yaml", ".copier-answers.yml", ".gitignore",
        "data/train.csv", "data/golden.csv", "data/contract.yaml", "Dockerfile",
    ]:
        assert (project / relative).is_file(), relative
    for module in ["training/train.py", "registry.py", "training/evaluate.py", "cli.py", "model.py",
                   "serving/guardrails.py", "data/contract.py", "serving/app.py",
                   "artifact/profile.py", "tools/drift_report.py"]:
        assert (pkg / module).is_file(), module
    github = answers["ci_provider"] == "github"
    assert (project / ".github" / "workflows" / "ci.yml").exists() is github
    assert (project / ".gitlab-ci.yml").exists() is not github
    assert not list(project.rglob("*.jinja"))


def test_output_parses_and_has_no_template_leftovers(rendered: tuple[Path, dict[str, Any]]) -> None:
    project, _ = rendered
    for path in files(project):
        text = path.read_text(encoding="utf-8")
        if path.suffix in {".yml", ".yaml"}:
            list(yaml.safe_load_all(text))
        elif path.suffix == ".toml":
            tomllib.loads(text)
        elif path.suffix == ".json":
            json.loads(text)
        leftover = JINJA_LEFTOVER.search(text)
        assert leftover is None, f"{path.relative_to(project)} keeps template syntax: {leftover.group()!r}"


def test_answers_match_and_hold_no_secret(rendered: tuple[Path, dict[str, Any]]) -> None:
    project, answers = rendered
    stored = yaml.safe_load((project / ".copier-answers.yml").read_text())
    for key, value in answers.items():
        assert stored[key] == value, key
    assert not [k for k in stored if re.search(r"token|password|secret|key", k, re.I)]
    for computed in copier_config.computed():
        assert computed not in stored, f"the computed value {computed} leaked into the answers"


def test_the_data_contract_and_slo_follow_the_task(rendered: tuple[Path, dict[str, Any]]) -> None:
    project, answers = rendered
    slo = yaml.safe_load((project / "slo.yaml").read_text())
    assert slo["objectives"]["quality"] == {
        "metric": answers["quality_metric"],
        "threshold": answers["quality_threshold"],
        "max_regression_vs_champion": slo["objectives"]["quality"]["max_regression_vs_champion"],
    }
    assert slo["objectives"]["latency_p95_ms"] == answers["latency_p95_ms"]
    contract = yaml.safe_load((project / "data" / "contract.yaml").read_text())
    header = (project / "data" / "train.csv").read_text().splitlines()[0].split(",")
    assert header == [f["name"] for f in contract["features"]] + [contract["target"]]
    assert ("min_confidence" in slo["guardrails"]) is (answers["model_task"] == "classification")


BAD_ANSWERS = [
    ("project_name", "1st try", "must start with a letter"),
    ("package_name", "Bad-Name", "lowercase Python identifier"),
    ("package_name", "class", "Python keyword"),
    ("package_name", "json", "would shadow"),
    ("package_name", "mlflow", "would shadow"),
    ("description", "short", "10 to 300 characters"),
    ("owner_team", "acme-ml", 'team handle "@org/team"'),
    ("platform_team", "platform", "must be blank or a team handle"),
    ("oncall_contact", "call bob", "e-mail address or an https:// URL"),
    ("quality_threshold", 1.5, "must be in (0, 1]"),
    ("latency_p95_ms", 0, "between 1 and 60000"),
    ("max_error_rate", 1.5, "strictly between 0 and 1"),
    ("cost_ceiling_per_1k", 0, "positive amount"),
    ("instance_hourly_price", -1, "positive amount"),
    ("mlflow_tracking_uri", "https://user:pw@mlflow.example.com", "without credentials"),
    ("mlflow_tracking_uri", "ftp://mlflow", "without credentials"),
    ("image_registry", "GHCR.io/Acme:latest", "lowercase, without a tag"),
    ("owner_team", "@acme/ml/fraud", "without subgroups"),
]


@pytest.mark.parametrize(("question", "value", "message"), BAD_ANSWERS, ids=lambda v: str(v)[:20])
def test_validators_refuse_bad_answers_and_write_nothing(
    tmp_path: Path, question: str, value: Any, message: str
) -> None:
    dst = tmp_path / "never"
    with pytest.raises(ValueError, match=re.escape(message)):
        render(dst, example_answers(**{question: value}))
    assert not dst.exists()


def test_every_question_has_help_and_a_default() -> None:
    questions = copier_config.asked()
    assert len(questions) >= 15
    for name, spec in questions.items():
        assert spec.get("help"), f"{name} has no help"
        assert "default" in spec, f"{name} has no default"
        assert spec.get("validator") or spec.get("choices"), f"{name} is neither validated nor a choice"


def test_render_is_fast(tmp_path: Path) -> None:
    start = time.perf_counter()
    render(tmp_path / "timed")
    elapsed = time.perf_counter() - start
    print(f"copier copy --defaults (no tasks): {elapsed:.2f}s")
    assert elapsed < 30, "a plain render should take seconds, not tens of seconds"
