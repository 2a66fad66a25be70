"""The command line: every command documents itself, and a refusal is one line with exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from demo_ml_service.cli import COMMANDS, main
from demo_ml_service.config import Settings


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


def test_an_export_that_fails_leaves_the_served_folder_untouched(
    trained_settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained_settings.tracking_uri)
    monkeypatch.setenv("SERVICE_ARTIFACT_ROOT", str(trained_settings.artifact_root))
    out = tmp_path / "model"
    assert main(["export", "--alias", "champion", "--out", str(out)]) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert before
    assert main(["export", "--alias", "champion-typo", "--out", str(out)]) == 2
    assert "no 'champion-typo' version" in capsys.readouterr().err
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging folder left
