"""Telemetry of the service, end to end: real spans (in memory and over OTLP/HTTP), /metrics as
Prometheus parses it, the cost arithmetic, drift PSI, JSON logs with trace ids, and the files
generated from slo.yaml."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from demo_ml_service._template import PROJECT_SLUG
from demo_ml_service.artifact import LoadedModel
from demo_ml_service.config import PROJECT_ROOT, Settings
from demo_ml_service.data.contract import DataContract
from demo_ml_service.ops import metrics as names
from demo_ml_service.ops.__main__ import main as ops_main
from demo_ml_service.serving.app import create_app
from demo_ml_service.serving.telemetry import JsonFormatter, Telemetry
from demo_ml_service.slo import load_slo
from demo_ml_service.tools.drift_report import drift_report, load_reference

CONTRACT = DataContract.load(Settings().contract_path)


def golden_records(count: int) -> list[dict[str, float]]:
    with Settings().golden_path.open() as handle:
        rows = list(csv.DictReader(handle))[:count]
    return [{name: float(row[name]) for name in CONTRACT.feature_names} for row in rows]


def slo_file(tmp_path: Path, **changes: Any) -> Path:
    """slo.yaml with `section__key=value` changes, e.g. cost__instance_hourly_price_usd=3.6."""
    slo = yaml.safe_load(Settings().slo_path.read_text())
    for dotted, value in changes.items():
        *parents, key = dotted.split("__")
        node = slo
        for parent in parents:
            node = node["objectives"][parent] if parent in slo["objectives"] else node[parent]
        node[key] = value
    path = tmp_path / "slo.yaml"
    path.write_text(yaml.safe_dump(slo))
    return path


def build(
    settings: Settings, model: LoadedModel, **telemetry_args: Any
) -> tuple[TestClient, Telemetry]:
    if "span_exporter" in telemetry_args:  # trace every request unless the test says otherwise
        if "trace_sample_ratio" not in settings.model_fields_set:
            settings = settings.model_copy(update={"trace_sample_ratio": 1.0})
    else:  # no console output from tests without span checks
        settings = settings.model_copy(update={"traces_exporter": "none"})
    telemetry = Telemetry(settings, load_slo(settings.slo_path), **telemetry_args)
    return TestClient(create_app(settings, model, telemetry=telemetry)), telemetry


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value, parsed by prometheus-client's own text parser."""
    # /metrics is served by its own app (on SERVICE_METRICS_PORT), not by the API app.
    assert client.get("/metrics").status_code == 404
    app: Any = client.app
    response = TestClient(app.state.metrics_app).get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> float:
    return sum(v for (sample, _), v in samples.items() if sample == name)


# ---- traces -------------------------------------------------------------------------------------


def test_spans_request_validate_predict(champion: LoadedModel) -> None:
    exporter = InMemorySpanExporter()
    settings = Settings(environment="staging")
    client, _ = build(settings, champion, span_exporter=exporter)
    response = client.post("/predict", json={"records": golden_records(3)})
    assert response.status_code == 200, response.text
    client.get("/healthz")  # probes produce no spans

    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert set(spans) == {"POST /predict", "validate", "predict"}
    root, validate, predict = spans["POST /predict"], spans["validate"], spans["predict"]
    assert root.parent is None
    for child in (validate, predict):
        assert child.parent is not None and child.parent.span_id == root.context.span_id
        assert child.context.trace_id == root.context.trace_id
    assert validate.end_time is not None and predict.start_time is not None
    assert validate.end_time <= predict.start_time
    assert root.attributes is not None and validate.attributes is not None
    assert root.attributes["model.name"] == champion.name
    assert root.attributes["model.version"] == champion.version
    assert root.attributes["model.alias"] == champion.alias
    assert root.attributes["http.route"] == "/predict"
    assert root.attributes["http.response.status_code"] == 200
    assert root.attributes["slipway.request_id"] == response.headers["x-request-id"]
    assert validate.attributes["slipway.records"] == 3
    resource = root.resource.attributes
    assert resource["service.name"] == PROJECT_SLUG
    assert resource["deployment.environment"] == "staging"
    assert resource["service.version"]


def test_failed_validation_marks_the_span(champion: LoadedModel) -> None:
    exporter = InMemorySpanExporter()
    client, _ = build(Settings(), champion, span_exporter=exporter)
    assert client.post("/predict", json={"records": [{"nope": 1}]}).status_code == 422
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert spans["validate"].status.status_code.name == "ERROR"
    assert spans["POST /predict"].attributes["http.response.status_code"] == 422  # type: ignore[index]
    assert "predict" not in spans


def span_texts(exporter: InMemorySpanExporter) -> list[str]:
    """Every string a span carries: name, status, attributes, events and their attributes."""
    texts = []
    for span in exporter.get_finished_spans():
        texts += [span.name, str(span.status.description), str(dict(span.attributes or {}))]
        for event in span.events:
            texts += [event.name, str(dict(event.attributes or {}))]
    return texts


def distinctive_record() -> dict[str, float]:
    """A golden record whose free numeric values have digits found nowhere else."""
    record = golden_records(1)[0]
    for i, feature in enumerate(CONTRACT.features):
        if feature.allowed is None and feature.min is not None and feature.max is not None:
            record[feature.name] = feature.min + (feature.max - feature.min) * (0.3141593 + i / 100)
    return record


def test_no_feature_value_in_spans_or_logs(
    champion: LoadedModel, capsys: pytest.CaptureFixture[str]
) -> None:
    exporter = InMemorySpanExporter()
    client, _ = build(Settings(access_log_all=True), champion, span_exporter=exporter)
    record = distinctive_record()
    values = [repr(v) for v in record.values() if len(repr(v)) > 8]
    assert values, record
    secret = "patient-4711-diagnosis"
    name = CONTRACT.feature_names[0]
    feature = next(f for f in CONTRACT.features if f.max is not None)
    too_high = feature.max * 10 + 1.2345678  # type: ignore[operator]
    assert client.post("/predict", json=record).status_code == 200
    assert (
        client.post("/predict", json={"records": [record, {**record, name: secret}]}).status_code
        == 422
    )
    assert client.post("/predict", json={**record, feature.name: too_high}).status_code == 422
    assert (
        client.post("/predict", json={k: v for k, v in record.items() if k != name}).status_code
        == 422
    )

    texts = span_texts(exporter)
    assert sum(t == "validate" for t in texts) == 4  # every request was traced
    assert any("RequestValidationError" in t for t in texts)  # the type is kept
    logs = capsys.readouterr().err
    assert logs.count('"status": 422') == 3, logs  # one access log line per refusal
    for text in (*texts, logs):
        for value in (*values, secret, repr(too_high)):
            assert value not in text, (value, text)


class _OtlpReceiver(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.received.append((self.path, self.headers.get("content-type", ""), body))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def otlp_receiver() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    received: list[tuple[str, str, bytes]] = []
    handler = type("Receiver", (_OtlpReceiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def test_spans_exported_over_otlp_http(
    champion: LoadedModel,
    otlp_receiver: tuple[str, list[tuple[str, str, bytes]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    endpoint, received = otlp_receiver
    # The standard variable: the exporter appends /v1/traces to the base endpoint.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_on")  # the standard variable wins
    settings = Settings()
    assert settings.traces_exporter == "otlp"
    with TestClient(create_app(settings, champion)) as client:  # lifespan exit flushes the spans
        assert client.post("/predict", json=golden_records(1)[0]).status_code == 200

    assert received, "no OTLP export reached the receiver"
    spans, resources = [], []
    for path, content_type, body in received:
        assert path == "/v1/traces"
        assert content_type == "application/x-protobuf"
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            resources.append(
                {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            )
            spans += [s for scope in resource_spans.scope_spans for s in scope.spans]
    assert {span.name for span in spans} == {"POST /predict", "validate", "predict"}
    assert resources[0]["service.name"] == PROJECT_SLUG
    root = next(span for span in spans if span.name == "POST /predict")
    attributes = {a.key: a.value.string_value for a in root.attributes}
    assert attributes["model.version"] == champion.version
    assert all(span.trace_id == root.trace_id for span in spans)


# ---- metrics ------------------------------------------------------------------------------------


def test_metrics_move_with_requests(champion: LoadedModel) -> None:
    client, _ = build(Settings(), champion)
    before = scrape(client)
    for _ in range(3):
        assert client.post("/predict", json={"records": golden_records(4)}).status_code == 200
    after = scrape(client)

    predict = {"route": "/predict", "method": "POST"}
    assert (
        value(after, names.REQUESTS, **predict, status="200")
        - value(before, names.REQUESTS, **predict, status="200")
        == 3
    )
    assert value(after, f"{names.REQUEST_DURATION}_count", **predict) == 3
    assert total(after, names.PREDICTIONS) - total(before, names.PREDICTIONS) == 12
    assert value(after, names.MODEL_READY) == 1
    assert (
        value(
            after,
            names.MODEL_INFO,
            model_name=champion.name,
            model_version=champion.version,
            model_alias=champion.alias,
            template_version=next(
                dict(labels)["template_version"]
                for name, labels in after
                if name == names.MODEL_INFO
            ),
        )
        == 1
    )
    # The latency objective is a bucket bound, spelled as the generated alert rules spell it.
    target = names.latency_target_seconds(load_slo(Settings().slo_path).objectives.latency_p95_ms)
    assert (
        f"{names.REQUEST_DURATION}_bucket",
        tuple(sorted({**predict, "le": names.le_label(target)}.items())),
    ) in after
    exported = {
        name.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum")
        for name, _ in after
    }
    assert set(names.EXPORTED) - {names.FEATURE_DRIFT_PSI} <= exported | {names.FEATURE_DRIFT_PSI}


def test_every_family_has_the_type_labels_and_help_of_ops_metrics(champion: LoadedModel) -> None:
    client, _ = build(Settings(), champion)
    assert client.post("/predict", json=golden_records(1)[0]).status_code == 200
    app: Any = client.app
    text = TestClient(app.state.metrics_app).get("/metrics").text
    families = {
        (family.name, family.type): family for family in text_string_to_metric_families(text)
    }
    for name, spec in names.EXPORTED.items():
        # The parser names a counter's family without `_total`.
        family = families.pop(
            (name.removesuffix("_total") if spec.kind == "counter" else name, spec.kind)
        )
        assert family.documentation == spec.help, name
        for sample in family.samples:
            assert set(sample.labels) - {"le"} == set(spec.labels), (name, sample)
    # Nothing else of ours (prometheus-client adds a `_created` gauge to counters and histograms).
    ours = {name for name, _ in families if name.startswith(names.PREFIX)}
    assert not {name for name in ours if not name.endswith("_created")}, ours


def test_guardrail_rejections_by_reason(champion: LoadedModel) -> None:
    client, _ = build(Settings(), champion)
    record = golden_records(1)[0]
    feature = CONTRACT.features[0]
    assert feature.max is not None
    record[feature.name] = feature.max * 10 + 1
    assert client.post("/predict", json=record).status_code == 422
    assert client.post("/predict", json={"records": [{"nope": 1}]}).status_code == 422
    after = scrape(client)
    assert value(after, names.GUARDRAIL_REJECTIONS, reason="out_of_range") == 1
    assert value(after, names.GUARDRAIL_REJECTIONS, reason="invalid_request") == 1
    assert value(after, names.REQUESTS, route="/predict", method="POST", status="422") == 2
    assert total(after, names.PREDICTIONS) == 0


def test_cost_for_a_known_price_and_request_count(champion: LoadedModel, tmp_path: Path) -> None:
    now = [1000.0]
    settings = Settings(slo_path=slo_file(tmp_path, cost__instance_hourly_price_usd=3.6))
    client, _ = build(settings, champion, clock=lambda: now[0])
    for _ in range(5):
        assert client.post("/predict", json={"records": golden_records(4)}).status_code == 200
    now[0] += 10.0  # 10 s of a 3.60 USD/h instance = 0.01 USD, for 20 predictions
    samples = scrape(client)
    assert value(samples, names.PREDICTION_COST_TOTAL) == pytest.approx(0.01)
    assert value(samples, names.PREDICTION_COST) == pytest.approx(0.01 / 20)
    now[0] += 600.0  # past the throughput window without predictions: no estimate
    samples = scrape(client)
    assert math.isnan(value(samples, names.PREDICTION_COST))
    assert value(samples, names.PREDICTION_COST_TOTAL) == pytest.approx(0.001 * 610)


def test_drift_psi_per_feature_from_the_sliding_window(champion: LoadedModel) -> None:
    assert champion.reference is not None
    client, _ = build(Settings(), champion)
    assert not [k for k in scrape(client) if k[0] == names.FEATURE_DRIFT_PSI]  # too few rows yet
    records = golden_records(200)
    typical = records[:100]
    # Same contract, skewed population: only the records with the largest first feature.
    first = CONTRACT.feature_names[0]
    skewed = sorted(records, key=lambda r: r[first])[-40:] * 3
    for _ in range(2):  # the window exports from DRIFT_MIN_SAMPLES (200) rows on
        assert client.post("/predict", json={"records": typical}).status_code in (200, 422)
    calm = {
        dict(k[1])["feature"]: v
        for k, v in scrape(client).items()
        if k[0] == names.FEATURE_DRIFT_PSI
    }
    assert set(calm) == set(CONTRACT.feature_names)
    for _ in range(10):  # push the typical rows out of the window
        client.post("/predict", json={"records": skewed})
    drifted = {
        dict(k[1])["feature"]: v
        for k, v in scrape(client).items()
        if k[0] == names.FEATURE_DRIFT_PSI
    }
    threshold = load_slo(Settings().slo_path).drift.psi_alert_threshold
    assert drifted[first] > threshold > calm[first]


def test_telemetry_switched_off(champion: LoadedModel) -> None:
    exporter = InMemorySpanExporter()
    client, _ = build(Settings(telemetry_enabled=False), champion, span_exporter=exporter)
    assert client.post("/predict", json=golden_records(1)[0]).status_code == 200
    assert exporter.get_finished_spans() == ()
    samples = scrape(client)
    assert total(samples, names.PREDICTIONS) == 0 and total(samples, names.REQUESTS) == 0
    assert value(samples, names.MODEL_READY) == 1


def test_untraced_requests_do_no_span_work_and_errors_are_logged(champion: LoadedModel) -> None:
    """Untraced requests (trace_sample_ratio 0): sampling is decided before any span work, so
    nothing is exported and no span exists; no access line for a success, but an error is
    logged all the same, with the request id the client got back."""
    exporter = InMemorySpanExporter()
    settings = Settings(trace_sample_ratio=0.0)
    client, _ = build(settings, champion, span_exporter=exporter)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(handler)
    try:
        assert client.post("/predict", json=golden_records(1)[0]).status_code == 200
        refused = client.post("/predict", json={"records": [{"nope": 1}]})
        assert refused.status_code == 422
    finally:
        logging.getLogger().removeHandler(handler)
    assert exporter.get_finished_spans() == ()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [line for line in lines if line.get("route") == "/predict"]
    assert [line["status"] for line in access] == [422]
    assert access[0]["request_id"] == refused.headers["x-request-id"]
    assert access[0]["trace_id"] is None and access[0]["trace_sampled"] is None


# ---- logs ---------------------------------------------------------------------------------------


def test_json_log_lines_carry_the_trace_id(champion: LoadedModel) -> None:
    exporter = InMemorySpanExporter()
    client, _ = build(Settings(log_level="INFO"), champion, span_exporter=exporter)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(handler)
    try:
        response = client.post(
            "/predict", json=golden_records(1)[0], headers={"x-request-id": "req-42"}
        )
    finally:
        logging.getLogger().removeHandler(handler)
    assert response.headers["x-request-id"] == "req-42"
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    root = next(s for s in exporter.get_finished_spans() if s.name == "POST /predict")
    access = [line for line in lines if line.get("route") == "/predict"]
    assert access, lines
    line = access[0]
    assert {
        "time",
        "level",
        "message",
        "trace_id",
        "span_id",
        "request_id",
        "model_version",
    } <= set(line)
    assert line["trace_id"] == format(root.context.trace_id, "032x")
    assert line["span_id"] == format(root.context.span_id, "016x")
    assert line["request_id"] == "req-42"
    assert line["model_version"] == champion.version
    assert line["level"] == "INFO" and line["status"] == 200


# ---- generated ops files and the offline drift report -------------------------------------------


def test_generated_ops_files_match_slo_yaml() -> None:
    assert ops_main(["check", "--root", str(PROJECT_ROOT)]) == 0, "run `make ops`"


def test_offline_drift_report(trained_settings: Settings, tmp_path: Path) -> None:
    reference = load_reference(trained_settings, "champion", None)
    data = np.array([list(r.values()) for r in golden_records(150)])
    calm = drift_report(reference, data, 0.2, tmp_path / "calm", source="golden")
    assert {row["feature"] for row in calm["features"]} == set(CONTRACT.feature_names)
    skewed = data[np.argsort(data[:, 0])][-50:]
    report = drift_report(reference, skewed, 0.2, tmp_path / "skewed", source="skewed")
    assert CONTRACT.feature_names[0] in report["drifted"]
    assert (tmp_path / "skewed" / "drift.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (
        json.loads((tmp_path / "skewed" / "drift.json").read_text())["drifted"] == report["drifted"]
    )
    assert "drift.png" in (tmp_path / "skewed" / "drift.md").read_text()
