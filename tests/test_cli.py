"""`python -m slipway`: one entry point for the platform's tooling."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
from slipway.__main__ import COMMANDS

from tests.support.render import ROOT


def slipway(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "slipway", *args],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )


def test_help_lists_every_command() -> None:
    result = slipway("-h")
    assert result.returncode == 0
    for name in COMMANDS:
        assert f"  {name} " in result.stdout, name
    assert slipway().returncode == 64 and slipway("nope").returncode == 64


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_a_main_and_help(command: str) -> None:
    module = importlib.import_module(COMMANDS[command][0])
    assert callable(module.main)
    result = slipway(command, "-h")
    assert result.returncode == 0, result.stderr
    assert f"python -m slipway {command}" in result.stdout


def test_questions_doc_check_passes_on_the_committed_page() -> None:
    result = slipway("questions-doc", "--check")
    assert result.returncode == 0, result.stdout + result.stderr
