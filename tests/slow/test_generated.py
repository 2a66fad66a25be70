"""Slow: a generated repo, installed in a fresh venv, passes its own checks and serves its champion."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.commands import run, tool_env
from tests.support.generated import GeneratedProject
from tests.support.servers import free_port, stop, wait_for
from tests.support.servers import http as http_text


def golden_record(project: Path) -> dict[str, float]:
    with (project / "data" / "golden.csv").open() as handle:
        row = next(csv.DictReader(handle))
    row.pop("target")
    return {k: float(v) for k, v in row.items()}


def http(
    method: str, url: str, body: dict[str, object] | None = None
) -> tuple[int, dict[str, object]]:
    status, text = http_text(method, url, body)
    return status, json.loads(text or "{}")


@pytest.mark.parametrize("answers", ["default", "regression-gitlab"])
def test_generated_repo_passes_its_own_checks(
    generated_project: Callable[[str], GeneratedProject], answers: str
) -> None:
    project = generated_project(answers)
    started = time.perf_counter()
    # check-all: lint, types and EVERY generated test, the slow ones too (`make check` skips them).
    result = run(["make", "check-all"], project.path, timeout=1800)
    took = time.perf_counter() - started
    print(f"{answers}: make check-all took {took:.0f}s\n{result.stdout[-800:]}")
    assert " deselected" not in result.stdout, "make check-all left generated tests out"


@pytest.mark.parametrize("answers", ["default", "regression-gitlab"])
def test_the_champion_is_served_over_http(
    generated_project: Callable[[str], GeneratedProject], answers: str
) -> None:
    project = generated_project(answers)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(project.path / ".venv" / "bin" / project.package), "serve", "--port", str(port)],
        cwd=project.path,
        env=tool_env(OTEL_TRACES_EXPORTER="none", SERVICE_METRICS_PORT=str(free_port())),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        try:
            wait_for(f"{base}/readyz", timeout=120, process=server)
        except AssertionError as why:
            exited = server.poll() is not None and server.stderr
            raise AssertionError(f"{why}\n{server.stderr.read() if exited else ''}") from None

        status, body = http("POST", f"{base}/predict", golden_record(project.path))
        assert status == 200, body
        model = body["model"]
        assert isinstance(model, dict) and model["alias"] == "champion"
        champion = project.cli(
            "export", "--alias", "champion", "--out", str(project.path / "reports" / "served")
        )
        assert f"version {model['version']} (champion)" in champion
        (prediction,) = body["predictions"]  # type: ignore[misc]
        if project.answers["model_task"] == "classification":
            assert prediction["outcome"] in {"predicted", "abstain"}
        else:
            assert isinstance(prediction["value"], float)

        status, body = http("POST", f"{base}/predict", {"records": [{"nope": 1}]})
        assert status == 422 and body["detail"]
        status, version = http("GET", f"{base}/version")
        assert status == 200 and version["model_alias"] == "champion"
    finally:
        stop(server)
    # `make bench` in its short mode on the exported champion: it keeps working (it prints ratios
    # and writes JSON; nothing about the figures is asserted: they are not timings to test). Every
    # mode once, on the default answers; the bare app and the service on the others (their task
    # and contract change what the bare app must do), within the CI budget.
    started = time.perf_counter()
    out = project.path / "reports" / "bench.json"
    few = [] if answers == "default" else ["--modes", "bare,service", "--workers", "1"]
    bench = run(
        [str(project.path / ".venv" / "bin" / project.package), "bench", "--short", *few]
        + ["--out", str(out)],
        project.path,
        timeout=900,
        SERVICE_MODEL_DIR=str(project.path / "reports" / "served"),
    )
    print(f"{answers}: bench --short took {time.perf_counter() - started:.0f}s\n{bench.stdout}")
    report = json.loads(out.read_text())
    assert not any(report["non_200"].values()), report["non_200"]
    if few:
        assert set(report["peak"]) == {"bare", "service"}
        return
    assert set(report["peak"]) == {
        "bare",
        "service",
        "service-all",
        "service-off",
        "service-sklearn",
    }
    # The exported champion has a parity-checked ONNX copy: the service serves it (artifact/onnx.py).
    assert report["inference_runtime"]["service"] == "onnx", report["inference_runtime"]
    assert report["inference_runtime"]["service-sklearn"] == "sklearn"
    assert not any(report["non_200"].values()), report["non_200"]
    if len(os.sched_getaffinity(0)) >= 2:  # the workers phase: `serve --workers N` vs one worker
        assert report["workers"]["workers"] >= 2 and report["workers"]["non_200"] == 0
