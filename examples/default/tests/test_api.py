"""The HTTP contract of the service, with a real trained model injected (no registry per test)."""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from demo_ml_service.artifact import LoadedModel
from demo_ml_service.config import Settings
from demo_ml_service.data.contract import DataContract
from demo_ml_service.registry import Registry
from demo_ml_service.serving.app import create_app
from demo_ml_service.serving.deps import REGISTRY_HTTP_DEFAULTS
from demo_ml_service.slo import load_slo

CONTRACT = DataContract.load(Settings().contract_path)


def golden_records(count: int) -> list[dict[str, float]]:
    with Settings().golden_path.open() as handle:
        rows = list(csv.DictReader(handle))[:count]
    return [{k: float(v) for k, v in row.items() if k != CONTRACT.target} for row in rows]


def slo_with(tmp_path: Path, **guardrails: Any) -> Path:
    slo = yaml.safe_load(Settings().slo_path.read_text())
    slo["guardrails"].update(guardrails)
    path = tmp_path / "slo.yaml"
    path.write_text(yaml.safe_dump(slo))
    return path


@pytest.fixture
def client(champion: LoadedModel) -> TestClient:
    return TestClient(create_app(Settings(), model=champion))


def test_single_record(client: TestClient, champion: LoadedModel) -> None:
    response = client.post("/predict", json=golden_records(1)[0])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == {
        "name": champion.name,
        "version": champion.version,
        "alias": "champion",
    }
    (prediction,) = body["predictions"]
    assert prediction["outcome"] in {"predicted", "abstain"}
    if prediction["outcome"] == "predicted":
        assert prediction["label"] in CONTRACT.classes
        assert 0.5 <= prediction["confidence"] <= 1.0
    assert response.headers["x-request-id"] == body["request_id"]


def test_batch(client: TestClient) -> None:
    response = client.post("/predict", json={"records": golden_records(10)})
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"]) == 10


@pytest.mark.parametrize(
    ("mutate", "loc_tail", "error_type"),
    [
        (lambda r: r.pop(CONTRACT.feature_names[0]), [CONTRACT.feature_names[0]], "missing"),
        (
            lambda r: r.update({CONTRACT.feature_names[1]: "high"}),
            [CONTRACT.feature_names[1]],
            "float_type",
        ),
        (
            lambda r: r.update({CONTRACT.feature_names[1]: True}),
            [CONTRACT.feature_names[1]],
            "float_type",
        ),
        (lambda r: r.update({"unknown_field": 1.0}), ["unknown_field"], "extra_forbidden"),
    ],
)
def test_bad_records_get_422_with_per_field_reasons(
    client: TestClient, mutate: Any, loc_tail: list[str], error_type: str
) -> None:
    record = golden_records(1)[0]
    mutate(record)
    response = client.post("/predict", json={"records": [golden_records(1)[0], record]})
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert any(
        e["loc"] == ["body", "records", 1, *loc_tail] and e["type"] == error_type for e in errors
    ), errors


def test_invalid_json_and_empty_batch_are_422(client: TestClient) -> None:
    assert (
        client.post(
            "/predict", content=b"{not json", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )
    assert client.post("/predict", json={"records": []}).status_code == 422


def test_out_of_range_is_refused_with_reasons(client: TestClient) -> None:
    record = golden_records(1)[0]
    feature = next(f for f in CONTRACT.features if f.max is not None)
    record[feature.name] = feature.max * 10 + 1  # type: ignore[operator]
    response = client.post("/predict", json=record)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", feature.name]
    assert error["type"] == "out_of_range" and "maximum" in error["msg"]


def test_out_of_range_is_flagged_under_the_flag_policy(
    champion: LoadedModel, tmp_path: Path
) -> None:
    settings = Settings(slo_path=slo_with(tmp_path, out_of_range="flag"))
    client = TestClient(create_app(settings, model=champion))
    record = golden_records(1)[0]
    feature = next(f for f in CONTRACT.features if f.max is not None)
    record[feature.name] = feature.max * 10 + 1  # type: ignore[operator]
    response = client.post("/predict", json=record)
    assert response.status_code == 200
    (prediction,) = response.json()["predictions"]
    assert prediction["flags"] and feature.name in prediction["flags"][0]
    assert prediction["outcome"] in {"flagged", "abstain"}


def test_flagged_values_too_far_to_score_are_422_not_500(
    champion: LoadedModel, tmp_path: Path
) -> None:
    settings = Settings(slo_path=slo_with(tmp_path, out_of_range="flag"))
    client = TestClient(create_app(settings, model=champion), raise_server_exceptions=False)
    for value in (1e308, -1e308):
        response = client.post("/predict", json=dict.fromkeys(CONTRACT.feature_names, value))
        assert response.status_code == 422, response.text
        assert all("too far to be scored" in e["msg"] for e in response.json()["detail"])


def test_oversize_payloads_get_413(champion: LoadedModel, tmp_path: Path) -> None:
    settings = Settings(slo_path=slo_with(tmp_path, max_batch_size=5, max_body_bytes=20_000))
    client = TestClient(create_app(settings, model=champion))
    assert client.post("/predict", json={"records": golden_records(6)}).status_code == 413
    big = json.dumps({"records": golden_records(5) * 40}).encode()
    response = client.post("/predict", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]


def test_low_confidence_abstains(client: TestClient, champion: LoadedModel, tmp_path: Path) -> None:
    records = golden_records(20)
    confidences = [
        p["confidence"]
        for p in client.post("/predict", json={"records": records}).json()["predictions"]
    ]
    index = min(range(len(records)), key=confidences.__getitem__)
    threshold = (confidences[index] + 1.0) / 2
    settings = Settings(slo_path=slo_with(tmp_path, min_confidence=threshold))
    strict = TestClient(create_app(settings, model=champion))
    (prediction,) = strict.post("/predict", json=records[index]).json()["predictions"]
    assert prediction["outcome"] == "abstain"
    assert prediction["label"] is None and prediction["confidence"] < threshold


def test_health_readiness_and_version(client: TestClient, champion: LoadedModel) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    version = client.get("/version").json()
    assert version["model_version"] == champion.version
    assert version["model_alias"] == "champion"
    assert version["template_version"]


def test_not_ready_when_the_model_cannot_load(tmp_path: Path) -> None:
    settings = Settings(model_dir=tmp_path / "missing")
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503
        assert client.post("/predict", json=golden_records(1)[0]).status_code == 503


def test_an_unreachable_registry_is_logged_as_such_and_not_ready(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in REGISTRY_HTTP_DEFAULTS:  # MLflow's own defaults would retry for minutes
        monkeypatch.setenv(name, "unset below; restored after the test")
        monkeypatch.delenv(name)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed once the block ends: nothing listens there
    settings = Settings(tracking_uri=f"http://127.0.0.1:{port}", model_load_retry_seconds=30)
    with caplog.at_level(logging.INFO), TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("cannot reach the registry" in m for m in errors), errors
    assert not any("not found" in m or "no 'champion' version" in m for m in errors), errors


def test_readiness_turns_200_once_the_model_can_be_loaded(
    trained_settings: Settings, tmp_path: Path
) -> None:
    target = tmp_path / "model"  # SERVICE_MODEL_DIR, created after the service started
    settings = Settings(
        model_dir=target, model_load_retry_seconds=0.05, model_load_retry_max_seconds=0.2
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code == 503
        Registry.from_settings(trained_settings).export("champion", tmp_path / "staged")
        (tmp_path / "staged").rename(target)
        deadline = time.monotonic() + 60  # a bound against a hang, not a timing assertion
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "the background load never succeeded"
            time.sleep(0.05)
        assert client.post("/predict", json=golden_records(1)[0]).status_code == 200


def test_the_openapi_document_carries_the_contract_and_every_status(client: TestClient) -> None:
    post = client.get("/openapi.json").json()["paths"]["/predict"]["post"]
    record, batch = post["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert record["additionalProperties"] is False and batch["additionalProperties"] is False
    records = batch["properties"]["records"]
    assert records["minItems"] == 1
    assert records["maxItems"] == load_slo(Settings().slo_path).guardrails.max_batch_size
    assert set(record["required"]) == {f.name for f in CONTRACT.features if not f.nullable}
    for feature in CONTRACT.features:
        prop = record["properties"][feature.name]
        number = next(s for s in prop.get("anyOf", [prop]) if s.get("type") == "number")
        assert (number.get("minimum"), number.get("maximum")) == (feature.min, feature.max)
    assert {"200", "408", "413", "415", "422", "503"} <= set(post["responses"])
    for status in ("408", "413", "415", "422", "503"):
        assert "application/json" in post["responses"][status]["content"], status


# -- hostile bodies: every one gets a JSON 4xx with a reason, never a 5xx ------------------------
JSON_HEADERS = {"content-type": "application/json"}


def post_raw(client: TestClient, body: bytes | str, **headers: str) -> Any:
    content = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    return client.post("/predict", content=content, headers={**JSON_HEADERS, **headers})


def assert_refused(response: Any, status: int = 422) -> Any:
    """A JSON error body with a reason, that encodes (no echo of undecodable input)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    response.content.decode("utf-8")  # strict: a lone surrogate would not encode
    detail = response.json()["detail"]
    assert detail
    if isinstance(detail, list):
        assert all(e["msg"] and e["type"] for e in detail), detail
    return detail


def with_raw(record: dict[str, float], name: str, raw: str) -> str:
    """`record` as JSON text with `raw` (any token, valid JSON or not) as the value of `name`."""
    rest = json.dumps({k: v for k, v in record.items() if k != name})
    return "{" + json.dumps(name) + ": " + raw + ", " + rest[1:]


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_tokens_are_422_alone_or_in_a_batch(client: TestClient, token: str) -> None:
    good = golden_records(1)[0]
    bad = with_raw(good, CONTRACT.feature_names[0], token)
    for body in (bad, '{"records": [' + json.dumps(good) + ", " + bad + "]}", token):
        detail = assert_refused(post_raw(client, body))
        assert any(e["type"] == "finite_number" and token in e["msg"] for e in detail), detail


def test_a_number_that_overflows_to_infinity_is_422(client: TestClient) -> None:
    name = CONTRACT.feature_names[0]
    detail = assert_refused(post_raw(client, with_raw(golden_records(1)[0], name, "1e999")))
    assert [e["loc"] for e in detail if e["type"] == "finite_number"] == [["body", name]], detail


@pytest.mark.parametrize("prefix", ["", '{"records": '])
def test_deep_nesting_is_422_before_the_parser_recurses(client: TestClient, prefix: str) -> None:
    detail = assert_refused(post_raw(client, prefix + "[" * 100_000))
    assert detail[0]["type"] == "too_deep" and "nested" in detail[0]["msg"]


def test_brackets_inside_strings_do_not_count_as_nesting(client: TestClient) -> None:
    record = golden_records(1)[0]
    name = CONTRACT.feature_names[0]
    detail = assert_refused(post_raw(client, json.dumps({**record, name: "[" * 1000})))
    assert [e["type"] for e in detail] == ["float_type"], detail


@pytest.mark.parametrize("digits", [400, 4300])
def test_huge_integers_are_422_with_a_clear_reason(client: TestClient, digits: int) -> None:
    body = with_raw(golden_records(1)[0], CONTRACT.feature_names[0], "9" * digits)
    detail = assert_refused(post_raw(client, body))
    assert detail[0]["type"] == "number_too_long" and "digits" in detail[0]["msg"], detail


def test_lone_surrogates_as_key_or_value_get_a_422_that_encodes(client: TestClient) -> None:
    record = golden_records(1)[0]
    name = CONTRACT.feature_names[0]
    as_key = json.dumps({**record, "\ud800": 1.0})
    as_value = json.dumps({**record, name: "\ud800"})
    assert "\\ud800" in as_key and "\\ud800" in as_value  # JSON escapes, as a client sends them
    key_detail = assert_refused(post_raw(client, as_key))
    assert {e["type"] for e in key_detail} <= {"extra_forbidden", "string_unicode"}, key_detail
    value_detail = assert_refused(post_raw(client, as_value))
    assert any(e["loc"] == ["body", name] for e in value_detail), value_detail
    raw = assert_refused(post_raw(client, '{"\ud800": "\udfff"}'.encode("utf-8", "surrogatepass")))
    assert raw[0]["type"] == "json_invalid"  # not UTF-8 at all


def test_error_bodies_never_echo_the_input(client: TestClient) -> None:
    record = golden_records(1)[0]
    name = CONTRACT.feature_names[0]
    secret = "patient-4711-" + "x" * 2000
    response = post_raw(client, json.dumps({"records": [{**record, name: secret}] * 200}))
    detail = assert_refused(response)
    assert "patient-4711" not in response.text
    assert len(detail) <= 50 and len(response.content) < 20_000


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_json_is_415(client: TestClient, content_type: str | None) -> None:
    body = json.dumps(golden_records(1)[0]).encode()
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/predict", content=body, headers=headers)
    assert "json" in str(assert_refused(response, 415))


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "application/vnd.api+json"]
)
def test_json_media_types_with_parameters_or_suffix_are_served(
    client: TestClient, content_type: str
) -> None:
    body = json.dumps(golden_records(1)[0])
    assert post_raw(client, body, **{"content-type": content_type}).status_code == 200


# -- limits while the body streams (driven through the ASGI interface, as uvicorn does) --------
Receive = Callable[[], Awaitable[dict[str, Any]]]


async def call(app: Any, receive: Receive, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict",
        "raw_path": b"/predict",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    status, body = 0, b""

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, body
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body += message.get("body", b"")

    # A safety net against a hang, not a timing assertion.
    await asyncio.wait_for(app(scope, receive, send), timeout=60)
    return status, body


def request_counts(app: Any) -> dict[str, float]:
    text = app.state.runtime.telemetry.metrics_text(None).decode()
    return {
        sample.labels["status"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.endswith("requests_total") and sample.labels.get("route") == "/predict"
    }


def test_a_chunked_body_is_refused_as_it_outgrows_the_limit(
    champion: LoadedModel, tmp_path: Path
) -> None:
    limit, chunk = 200_000, b" " * 65_536
    app = create_app(Settings(slo_path=slo_with(tmp_path, max_body_bytes=limit)), model=champion)
    sent = 0

    async def receive() -> dict[str, Any]:  # 100 MB if nobody stops reading, no Content-Length
        nonlocal sent
        if sent >= 100_000_000:
            return {"type": "http.request", "body": b"", "more_body": False}
        sent += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    status, body = asyncio.run(call(app, receive, [(b"transfer-encoding", b"chunked")]))
    assert status == 413 and "limit" in json.loads(body)["detail"]
    assert sent <= limit + len(chunk)  # stopped reading at the limit: never buffered the rest


def test_a_body_that_does_not_arrive_in_time_is_408(champion: LoadedModel, tmp_path: Path) -> None:
    settings = Settings(slo_path=slo_with(tmp_path, body_read_timeout_seconds=0.2))
    app = create_app(settings, model=champion)
    messages = 0

    async def receive() -> dict[str, Any]:  # 7 bytes of the declared 1000, then nothing
        nonlocal messages
        messages += 1
        if messages == 1:
            return {"type": "http.request", "body": b'{"a": 1', "more_body": True}
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    status, body = asyncio.run(call(app, receive, [(b"content-length", b"1000")]))
    assert status == 408 and "did not arrive" in json.loads(body)["detail"]


def test_a_client_leaving_mid_body_is_not_a_server_error(
    champion: LoadedModel, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(Settings(), model=champion)
    messages: Iterator[dict[str, Any]] = iter(
        [
            {"type": "http.request", "body": b'{"records": [', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )

    async def receive() -> dict[str, Any]:
        return next(messages, {"type": "http.disconnect"})

    with caplog.at_level(logging.INFO):
        status, _ = asyncio.run(call(app, receive, [(b"content-length", b"5000")]))
    assert status == 499
    assert request_counts(app) == {"499": 1.0}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
