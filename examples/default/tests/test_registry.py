"""Registry round trip against a real MLflow store (sqlite), and once against `mlflow server`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest

from demo_ml_service.config import Settings
from demo_ml_service.errors import ModelNotFound, RegistryError, RegistryUnavailable
from demo_ml_service.registry import Registry
from demo_ml_service.training.evaluate import evaluate
from demo_ml_service.training.train import train

from .conftest import make_settings


def registry_of(settings: Settings) -> Registry:
    return Registry.from_settings(settings)


def test_train_registers_a_challenger_with_lineage(fresh_settings: Settings) -> None:
    result = train(fresh_settings)
    registry = registry_of(fresh_settings)
    challenger = registry.get_alias("challenger")
    assert challenger is not None and challenger.version == result.version
    assert challenger.tags["slipway.data_hash"] == result.data_hash
    assert challenger.tags["slipway.template_version"]
    run = registry.client.get_run(result.run_id)
    assert run.data.tags["slipway.data_hash"] == result.data_hash
    assert "slipway.git_commit" in run.data.tags
    assert run.data.params


def test_training_leaves_the_process_wide_mlflow_uris_alone(fresh_settings: Settings) -> None:
    """Settings reads MLFLOW_TRACKING_URI: a train() must not repoint the rest of the process."""
    before = os.environ.get("MLFLOW_TRACKING_URI"), mlflow.get_tracking_uri()
    train(fresh_settings)
    assert (os.environ.get("MLFLOW_TRACKING_URI"), mlflow.get_tracking_uri()) == before


def test_promote_needs_a_passing_eval_and_rollback_restores(fresh_settings: Settings) -> None:
    registry = registry_of(fresh_settings)
    with pytest.raises(RegistryError, match="no 'challenger'"):
        registry.promote()
    first = train(fresh_settings).version
    with pytest.raises(RegistryError, match="no eval report"):
        registry.promote()
    assert evaluate(fresh_settings)["passed"]
    registry.promote()
    with pytest.raises(RegistryError, match="no previous champion"):
        registry.rollback()

    second = train(fresh_settings).version
    assert evaluate(fresh_settings)["passed"]
    registry.promote()
    champion = registry.get_alias("champion")
    assert champion is not None and champion.version == second

    assert registry.rollback().version == first
    champion = registry.get_alias("champion")
    assert champion is not None and champion.version == first


def test_a_failed_eval_blocks_promotion(fresh_settings: Settings) -> None:
    registry = registry_of(fresh_settings)
    version = train(fresh_settings).version
    registry.record_eval(version, False, {"reason": "test"})
    with pytest.raises(RegistryError, match="failed the eval gate"):
        registry.promote()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_not_found_and_cannot_reach_are_different_errors(
    fresh_settings: Settings, trained_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = registry_of(fresh_settings)
    assert empty.get_alias("champion") is None
    assert empty.champion_history() == []
    with pytest.raises(ModelNotFound, match="no 'champion' version"):
        empty.load("champion")
    with pytest.raises(ModelNotFound, match="no 'typo' version"):
        registry_of(trained_settings).load("typo")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    down = Registry(f"http://127.0.0.1:{closed_port()}", fresh_settings.model_name)
    for call in (lambda: down.get_alias("champion"), down.champion_history, down.rollback):
        with pytest.raises(RegistryUnavailable, match="cannot reach the registry"):
            call()
    with_password = Registry(f"http://ops:s3cret@127.0.0.1:{closed_port()}", "m")
    with pytest.raises(RegistryUnavailable, match="cannot reach") as refused:
        with_password.get_alias("champion")
    assert "s3cret" not in str(refused.value) and "ops:" not in str(refused.value)
    assert issubclass(RegistryUnavailable, RegistryError)  # the CLI reports both in one line
    assert issubclass(ModelNotFound, RegistryError)


def test_load_by_alias_serves_the_registered_pipeline(trained_settings: Settings) -> None:
    loaded = registry_of(trained_settings).load("champion")
    assert loaded.alias == "champion" and loaded.reference is not None
    sample = np.zeros((1, len(loaded.reference.features)))
    assert loaded.pipeline.predict(sample).shape == (1,)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "artifacts"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        # No background job runners: this server only has to hold a registry for the test.
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )
    try:
        # Generous: the server imports its whole stack at start (tens of seconds on a busy CI box).
        deadline = time.monotonic() + 300
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    tail = (tmp_path / "server.log").read_text()[-3000:]
                    raise RuntimeError(f"mlflow server did not start:\n{tail}") from None
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.mark.slow
def test_round_trip_against_a_real_mlflow_server(mlflow_server: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, tracking_uri=mlflow_server)
    version = train(settings).version
    assert evaluate(settings)["passed"]
    registry = registry_of(settings)
    assert registry.promote().version == version
    assert registry.load("champion").version == version
