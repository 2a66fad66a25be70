"""Body limits against the real server stack (uvicorn on 127.0.0.1, raw sockets): a chunked body
is refused as it outgrows the limit, a body that stalls gets 408, and a client that leaves
mid-body is a 499 in the request metric with no ERROR line."""

from __future__ import annotations

import logging
import select
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from demo_ml_service.artifact import LoadedModel
from demo_ml_service.config import Settings
from demo_ml_service.serving.app import create_app

from .test_loadtest import serving

pytestmark = pytest.mark.slow

LIMIT = 200_000


@pytest.fixture
def urls(champion: LoadedModel, tmp_path: Path) -> Any:
    """(API URL, metrics URL): the app and its /metrics app, each on its own port."""
    slo = yaml.safe_load(Settings().slo_path.read_text(encoding="utf-8"))
    slo["guardrails"].update(max_body_bytes=LIMIT, body_read_timeout_seconds=0.5)
    (tmp_path / "slo.yaml").write_text(yaml.safe_dump(slo), encoding="utf-8")
    app = create_app(Settings(slo_path=tmp_path / "slo.yaml"), model=champion)
    with serving(app) as url, serving(app.state.metrics_app) as metrics_url:
        yield url, metrics_url


@pytest.fixture
def base_url(urls: tuple[str, str]) -> str:
    return urls[0]


def connect(base_url: str) -> socket.socket:
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    return sock


def head(length: str | None = None) -> bytes:
    framing = f"content-length: {length}" if length else "transfer-encoding: chunked"
    return (
        "POST /predict HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"{framing}\r\n\r\n"
    ).encode()


def status_line(sock: socket.socket) -> str:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n", 1)[0].decode()


def test_a_chunked_body_gets_413_as_soon_as_it_outgrows_the_limit(base_url: str) -> None:
    chunk = b"%x\r\n%s\r\n" % (65_536, b" " * 65_536)
    sent = 0
    with connect(base_url) as sock:
        sock.sendall(head())
        try:
            while sent < 50_000_000:  # 50 MB if the server buffered it all before answering
                if select.select([sock], [], [], 0)[0]:
                    break  # it answered
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # it answered and closed while we were still sending
        assert status_line(sock).startswith("HTTP/1.1 413")
    assert sent < 20_000_000  # refused near the limit, not after reading everything


def test_a_stalled_body_gets_408(base_url: str) -> None:
    with connect(base_url) as sock:
        sock.sendall(head("1000") + b'{"a": 1')  # 7 of the 1000 bytes, then nothing
        assert status_line(sock).startswith("HTTP/1.1 408")


def test_a_client_leaving_mid_body_is_a_499_not_a_server_error(
    urls: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    base_url, metrics_url = urls
    with pytest.raises(urllib.error.HTTPError) as refused:  # /metrics is on its own port only
        urllib.request.urlopen(f"{base_url}/metrics", timeout=10)
    assert refused.value.code == 404
    with caplog.at_level(logging.INFO):
        with connect(base_url) as sock:
            sock.sendall(head("5000") + b'{"records": [')
        deadline = time.monotonic() + 30  # a bound against a hang, not a timing assertion
        while True:
            with urllib.request.urlopen(f"{metrics_url}/metrics", timeout=10) as response:
                metrics = response.read().decode()
            if 'route="/predict",status="499"' in metrics:
                break
            assert time.monotonic() < deadline, metrics
            time.sleep(0.05)
    assert 'route="/predict",status="5' not in metrics
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
