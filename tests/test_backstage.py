"""backstage/template.yaml: generated from copier.yml (staleness), a valid Backstage Software
Template (the vendored scaffolder schema, tests/schemas/backstage-scaffolder/), and its parameter
form accepts what Copier accepts and refuses what it can express of Copier's refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator
from jsonschema.validators import validator_for
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from slipway import backstage, copier_config
from tests.support.render import answer_sets, example_answers

SCHEMAS = Path(__file__).parent / "schemas"


def template() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(backstage.OUT.read_text(encoding="utf-8"))
    return data


def test_checked_in_template_is_fresh() -> None:
    assert backstage.OUT.read_text(encoding="utf-8") == backstage.render(), (
        "backstage/template.yaml is stale: run `python -m slipway backstage build`"
    )


def test_template_validates_against_backstage_schema() -> None:
    schemas = [
        json.loads(p.read_text(encoding="utf-8"))
        for folder in ("backstage", "backstage-scaffolder")
        for p in (SCHEMAS / folder).glob("*.schema.json")
    ]
    registry = Registry().with_resources((s["$id"], Resource(s, DRAFT7)) for s in schemas)
    root = next(s for s in schemas if s["$id"] == "TemplateV1beta3")
    validator = Draft7Validator(root, registry=registry)
    problems = [
        f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(template())
    ]
    assert not problems
    # and it is not vacuous: a Template without steps is refused
    broken = template()
    del broken["spec"]["steps"]
    assert list(validator.iter_errors(broken))


def form() -> Any:
    step = template()["spec"]["parameters"][0]
    schema = {"type": "object", **step}
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def test_parameters_mirror_copier_questions() -> None:
    step = template()["spec"]["parameters"][0]
    asked = copier_config.asked()
    assert list(step["properties"]) == list(asked)
    for name, question in asked.items():
        prop = step["properties"][name]
        assert prop["description"].startswith(question["help"])
        if "{{" not in str(question.get("default")):
            assert prop["default"] == question["default"]
    values = template()["spec"]["steps"][0]["input"]["values"]
    assert set(values) == set(asked)


@pytest.mark.parametrize("answer_set", answer_sets())
def test_form_accepts_every_answer_set(answer_set: str) -> None:
    errors = [e.message for e in form().iter_errors(example_answers(answer_set))]
    assert not errors


@pytest.mark.parametrize(
    "overrides",
    [
        {"project_name": "9 lives"},
        {"package_name": "Not-A-Module"},
        {"owner_team": "acme"},
        {"platform_team": "@x"},
        {"oncall_contact": "http://insecure.example.com"},
        {"description": "short"},
        {"latency_p95_ms": 0},
        {"max_error_rate": 1.0},
        {"mlflow_tracking_uri": "ftp://mlflow"},
        {"image_registry": "GHCR.io/Acme"},
        {"python_version": "3.10"},
        {"model_task": "regression", "quality_metric": "f1"},
    ],
)
def test_form_refuses_what_copier_refuses(overrides: dict[str, Any]) -> None:
    """Each of these is refused by copier.yml too (tests/test_cookiecutter.py checks the hook)."""
    assert list(form().iter_errors(example_answers("default", **overrides)))
