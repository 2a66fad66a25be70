"""The command line: every command documents itself, and a refusal is one line with exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from demo_ml_service.cli import COMMANDS, main


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    description = COMMANDS[command][0]
    assert " ".join(description.split()) in " ".join(capsys.readouterr().out.split())


def test_a_refused_registry_operation_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'empty.db'}")
    monkeypatch.setenv("SERVICE_ARTIFACT_ROOT", str(tmp_path / "mlartifacts"))
    assert main(["rollback"]) == 2
    # The last line (MLflow may log above it while creating the empty store).
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("error: no previous champion"), last
