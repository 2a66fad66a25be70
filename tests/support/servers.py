"""Processes the slow tests talk to over HTTP: free ports, readiness waits, a real MLflow
tracking server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http(
    method: str,
    url: str,
    body: object | None = None,
    timeout: float = 10,
    *,
    raw: bytes | None = None,
    content_type: str | None = "application/json",
) -> tuple[int, str]:
    """(status, body text) of one request: `body` as JSON, or `raw` bytes as they are, sent as
    `content_type` (None: no header of ours); HTTP errors are answers, not exceptions."""
    data = raw if raw is not None else json.dumps(body).encode() if body is not None else None
    headers = {"content-type": content_type} if content_type else {}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def wait_for(url: str, timeout: float = 60, process: subprocess.Popen | None = None) -> float:
    """Poll `url` until it answers 200; returns the seconds it took. Fails early when `process`
    (the server) exits."""
    start = time.monotonic()
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - start
        except OSError:
            pass
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the server behind {url} exited with {process.returncode}")
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{url} did not answer 200 within {timeout}s")
        time.sleep(0.3)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@contextmanager
def mlflow_server(python: Path, workdir: Path) -> Iterator[str]:
    """A real MLflow tracking server (run by `python`, e.g. a generated project's own venv) on
    127.0.0.1, with proxied artefacts so a client needs nothing but HTTP; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = workdir / "mlflow-server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                str(python),
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
                f"sqlite:///{workdir / 'server.db'}",
                "--artifacts-destination",
                str(workdir / "artifacts"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MLFLOW_SERVER_ALLOWED_HOSTS": "*"},
        )
        try:
            try:
                wait_for(f"{url}/health", timeout=240, process=process)
            except AssertionError as why:
                pytest.fail(f"mlflow server did not start ({why}):\n{log_path.read_text()[-3000:]}")
            yield url
        finally:
            stop(process)
