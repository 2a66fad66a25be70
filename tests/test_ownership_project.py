"""Slow: a GitLab project with a platform team (the non-default ownership path), copied with its
tasks, installed with uv; its own tests/test_ownership.py must pass, and `<pkg> model-card` must
fill the model card with the numbers of a real eval report."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from copier import run_copy

ROOT = Path(__file__).resolve().parents[1]
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"

pytestmark = pytest.mark.slow


def sh(args: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "PYTHONPATH": ""}
    env.pop("VIRTUAL_ENV", None)
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, (
        f"{' '.join(args)}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return result


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dst = tmp_path_factory.mktemp("gitlab-platform") / "fraud-scoring"
    run_copy(
        str(ROOT),
        dst,
        defaults=True,
        unsafe=True,
        vcs_ref="HEAD",
        quiet=True,
        data={
            "project_name": "Fraud Scoring",
            "ci_provider": "gitlab",
            "owner_team": "@acme/ml/fraud",
            "platform_team": "@acme/platform/sre",
            "oncall_contact": "https://pager.example.com/fraud",
            "python_version": PYTHON,
        },
    )
    uv = [sys.executable, "-m", "uv"]
    sh([*uv, "sync", "--python", sys.executable], dst)
    return dst


def test_generated_ownership_tests_pass(project: Path) -> None:
    result = sh(
        [sys.executable, "-m", "uv", "run", "pytest", "-q", "tests/test_ownership.py"], project
    )
    assert re.search(r"\d+ passed", result.stdout) and "failed" not in result.stdout


def test_model_card_command_fills_real_numbers(project: Path) -> None:
    uv_run = [sys.executable, "-m", "uv", "run", "fraud_scoring"]
    sh([*uv_run, "train"], project)
    sh([*uv_run, "evaluate"], project)
    sh([*uv_run, "model-card"], project)
    report = json.loads((project / "reports" / "eval.json").read_text(encoding="utf-8"))
    card = (project / "docs" / "model-card.md").read_text(encoding="utf-8")
    assert "Not evaluated yet" not in card
    for name, value in report["metrics"].items():
        assert f"| {name} | {value:.4f} |" in card
    assert f"version {report['model']['version']}" in card
    assert "@acme/ml/fraud" in card
