"""Observability of the generated service: alert rules and their promtool unit tests, the Grafana
dashboard's PromQL, compose.yaml against the Compose specification, the render task, every
tracing exporter answer, and (slow) a real Prometheus scraping a running generated service.

Needs `promtool`/`prometheus` (Debian package `prometheus`), jsonschema and promql-parser.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import ROOT, example_answers, render

SCHEMAS = Path(__file__).parent / "schemas"
ALERT_NAMES = {
    "LatencySLOBurnRate",
    "ErrorRateSLOBreach",
    "FeatureDriftHigh",
    "CostPerPredictionAboveCeiling",
    "ModelNotReady",
    "GuardrailRejectionsHigh",
}
ALERTS = Path("observability/prometheus/alerts.yml")
ALERTS_TEST = Path("observability/prometheus/alerts_test.yml")
DASHBOARD = Path("observability/grafana/dashboards/service.json")


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool not found: apt-get install -y prometheus (./dev test does)"
    return subprocess.run(
        [binary, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def ops(project: Path, package: str, action: str) -> subprocess.CompletedProcess[str]:
    """The generated ops renderer, run like the copier task runs it: stdlib + PyYAML only."""
    return subprocess.run(
        [sys.executable, "-m", f"{package}.ops", action, "--root", str(project)],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(project / "src")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def exported_metrics() -> dict[str, str]:
    """metric -> type, from the contract table of docs/architecture.md."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = text.split("### Metrics exported at /metrics", 1)[1].split("\n###", 1)[0]
    rows = re.findall(r"^\| `(slipway_[a-z0-9_]+)` \| (\w+)", table, flags=re.MULTILINE)
    assert len(rows) >= 9, table
    return dict(rows)


def series_names() -> set[str]:
    """Every series name a query may select: histograms add _bucket, _count, _sum."""
    names = set()
    for metric, kind in exported_metrics().items():
        names |= (
            {f"{metric}_bucket", f"{metric}_count", f"{metric}_sum"}
            if kind == "histogram"
            else {metric}
        )
    return names


def selected_metrics(expr: str) -> set[str]:
    """Metric names selected anywhere in a PromQL expression (parsed, not grepped)."""
    import promql_parser

    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"selector without a metric name in {expr!r}"
            found.add(node.name)
        for attribute in ("lhs", "rhs", "expr", "param", "vector_selector"):
            child = getattr(node, attribute, None)
            if child is not None and not isinstance(child, (str, int, float)):
                walk(child)
        for child in getattr(node, "args", None) or []:
            walk(child)

    walk(promql_parser.parse(expr))
    return found


@pytest.fixture(scope="module", params=["default", "regression-gitlab"])
def project(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Rendered WITH the copier tasks (the ops render task, then git), no lockfile."""
    answers = example_answers(request.param)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SLIPWAY_SKIP_LOCK", "1")
        path = render(
            tmp_path_factory.mktemp(f"obs-{request.param}") / "repo", answers, skip_tasks=False
        )
    yield path, answers


# ---- the render task ----------------------------------------------------------------------------


def test_render_task_writes_and_commits_the_generated_files(
    project: tuple[Path, dict[str, Any]],
) -> None:
    path, answers = project
    for relative in (ALERTS, ALERTS_TEST, DASHBOARD, Path("docs/slo.md")):
        assert (path / relative).is_file(), relative
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=path, capture_output=True, text=True, check=True
    ).stdout.split()
    assert {str(ALERTS), str(ALERTS_TEST), str(DASHBOARD), "docs/slo.md"} <= set(tracked)
    assert ops(path, answers["package_name"], "check").returncode == 0


def test_ops_check_detects_a_changed_slo(
    project: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    path, answers = project
    copy = tmp_path / "repo"
    shutil.copytree(path, copy, ignore=shutil.ignore_patterns(".git"))
    slo = yaml.safe_load((copy / "slo.yaml").read_text())
    slo["objectives"]["latency_p95_ms"] = 275
    slo["objectives"]["max_error_rate"] = 0.005
    slo["drift"]["psi_alert_threshold"] = 0.35
    slo["objectives"]["cost"]["ceiling_per_1k_predictions_usd"] = 0.125
    (copy / "slo.yaml").write_text(yaml.safe_dump(slo))
    stale = ops(copy, answers["package_name"], "check")
    assert stale.returncode == 1 and "alerts.yml" in stale.stderr
    assert ops(copy, answers["package_name"], "render").returncode == 0
    rules = {
        r["alert"]: r
        for g in yaml.safe_load((copy / ALERTS).read_text())["groups"]
        for r in g["rules"]
    }
    assert 'le="0.275"' in rules["LatencySLOBurnRate"]["expr"]
    assert rules["ErrorRateSLOBreach"]["expr"].endswith("> 0.005")
    assert "> 0.35" in rules["FeatureDriftHigh"]["expr"]
    assert "> 0.125" in rules["CostPerPredictionAboveCeiling"]["expr"]
    assert "≤ 275 ms" in (copy / "docs" / "slo.md").read_text()
    result = promtool("test", "rules", ALERTS_TEST.name, cwd=copy / ALERTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr


# ---- alert rules --------------------------------------------------------------------------------


def test_promtool_checks_and_unit_tests_the_rules(project: tuple[Path, dict[str, Any]]) -> None:
    path, _ = project
    folder = path / ALERTS.parent
    checked = promtool("check", "rules", ALERTS.name, cwd=folder)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(ALERT_NAMES)} rules found" in checked.stdout
    tested = promtool("test", "rules", ALERTS_TEST.name, cwd=folder)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_firing_and_a_silent_case(project: tuple[Path, dict[str, Any]]) -> None:
    path, _ = project
    rules = [r for g in yaml.safe_load((path / ALERTS).read_text())["groups"] for r in g["rules"]]
    assert {r["alert"] for r in rules} == ALERT_NAMES
    cases = yaml.safe_load((path / ALERTS_TEST).read_text())["tests"]
    for name in ALERT_NAMES:
        outcomes = [
            bool(t["exp_alerts"])
            for case in cases
            for t in case["alert_rule_test"]
            if t["alertname"] == name
        ]
        assert True in outcomes and False in outcomes, f"{name}: needs a firing and a silent case"


def test_the_unit_tests_catch_a_broken_rule(
    project: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """Each alert in turn made unable to fire: promtool's unit tests must fail for that alert."""
    path, _ = project
    original = yaml.safe_load((path / ALERTS).read_text())
    shutil.copy(path / ALERTS_TEST, tmp_path / ALERTS_TEST.name)
    for name in sorted(ALERT_NAMES):
        broken = json.loads(json.dumps(original))
        for rule in broken["groups"][0]["rules"]:
            if rule["alert"] == name:
                rule["expr"] = f"({rule['expr']}) and on() vector(0) > 1"
        (tmp_path / ALERTS.name).write_text(yaml.safe_dump(broken))
        result = promtool("test", "rules", ALERTS_TEST.name, cwd=tmp_path)
        assert result.returncode != 0, f"breaking {name} went unnoticed"
        assert f"alertname: {name}" in result.stdout + result.stderr


def test_rules_select_only_exported_metrics_of_this_service(
    project: tuple[Path, dict[str, Any]],
) -> None:
    path, answers = project
    slug = yaml.safe_load((path / "slo.yaml").read_text())["service"]
    for group in yaml.safe_load((path / ALERTS).read_text())["groups"]:
        for rule in group["rules"]:
            assert selected_metrics(rule["expr"]) <= series_names(), rule["alert"]
            assert rule["annotations"]["runbook_url"].endswith(
                f"docs/runbook.md#{rule['alert'].lower()}"
            )
            assert f'job="{slug}"' in rule["expr"]
    if answers["model_task"] == "regression":
        assert 'outcome="abstain"' not in (path / ALERTS).read_text()  # regressors never abstain


def test_metric_contract_matches_the_generator(project: tuple[Path, dict[str, Any]]) -> None:
    """ops/metrics.py (what the service registers and the rules use) == docs/architecture.md."""
    path, answers = project
    code = (
        "import json, sys; from {p}.ops.metrics import EXPORTED; "
        "json.dump({{k: v[0] for k, v in EXPORTED.items()}}, sys.stdout)"
    ).format(p=answers["package_name"])
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(path / "src")},
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout) == exported_metrics()


# ---- dashboard ----------------------------------------------------------------------------------


def test_dashboard_queries_parse_and_use_exported_metrics(
    project: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    path, _ = project
    dashboard = json.loads((path / DASHBOARD).read_text())
    slo = yaml.safe_load((path / "slo.yaml").read_text())
    queries = [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p.get("targets", [])]
    assert queries
    for title, expr in queries:
        assert selected_metrics(expr) <= series_names(), (title, expr)
    # The real Prometheus parser too: every query as a recording rule through promtool.
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": expr}
                    for i, (_, expr) in enumerate(queries)
                ],
            }
        ]
    }
    (tmp_path / "dashboard_rules.yml").write_text(yaml.safe_dump(rules))
    checked = promtool("check", "rules", "dashboard_rules.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    titles = " | ".join(p["title"] for p in dashboard["panels"])
    for needed in (
        "p50",
        "p95",
        "p99",
        "Error rate",
        "Throughput",
        "drift",
        "Cost per 1,000",
        "Model version",
    ):
        assert needed in titles, needed
    latency = next(p for p in dashboard["panels"] if "Latency" in p["title"])
    target_s = slo["objectives"]["latency_p95_ms"] / 1000
    assert any(f"vector({target_s:g})" in t["expr"] for t in latency["targets"]), "no SLO line"
    assert {t["datasource"]["uid"] for p in dashboard["panels"] for t in p["targets"]} == {
        "prometheus"
    }
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


# ---- compose and the static configs -------------------------------------------------------------


def test_compose_file_follows_the_compose_specification(
    project: tuple[Path, dict[str, Any]],
) -> None:
    import jsonschema

    path, _ = project
    compose = yaml.safe_load((path / "compose.yaml").read_text())
    schema = json.loads((SCHEMAS / "compose" / "compose-spec.json").read_text())
    jsonschema.Draft7Validator(schema).validate(compose)
    services = compose["services"]
    assert {"service", "mlflow", "otel-collector", "jaeger", "prometheus", "grafana"} <= set(
        services
    )
    assert services["service"]["build"]["context"] == "."
    for name, service in services.items():
        image = service.get("image", "")
        if name != "service":
            tag = image.rsplit(":", 1)[-1] if ":" in image else ""
            assert re.search(r"\d", tag) and tag != "latest", (
                f"{name}: image {image!r} is not pinned"
            )
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond localhost"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (path / source).exists(), f"{name} mounts missing {source}"
    assert services["service"]["environment"]["OTEL_TRACES_EXPORTER"] == "otlp"


def test_prometheus_config_loads_the_rules_and_scrapes_the_service(
    project: tuple[Path, dict[str, Any]],
) -> None:
    path, _ = project
    folder = path / ALERTS.parent
    checked = promtool("check", "config", "prometheus.yml", cwd=folder)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = yaml.safe_load((folder / "prometheus.yml").read_text())
    slug = yaml.safe_load((path / "slo.yaml").read_text())["service"]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == slug and job["static_configs"][0]["targets"] == ["service:8000"]
    assert config["rule_files"] == [ALERTS.name]
    collector = yaml.safe_load((path / "observability/otel-collector/config.yaml").read_text())
    assert collector["service"]["pipelines"]["traces"]["receivers"] == ["otlp"]
    datasource = yaml.safe_load(
        (path / "observability/grafana/provisioning/datasources/prometheus.yaml").read_text()
    )
    assert datasource["datasources"][0]["uid"] == "prometheus"


@pytest.mark.parametrize("exporter", ["none", "console", "otlp"])
def test_every_tracing_exporter_answer_renders(exporter: str, tmp_path: Path) -> None:
    answers = example_answers(tracing_exporter=exporter)
    path = render(tmp_path / "repo", answers)
    package = path / "src" / answers["package_name"]
    config = (package / "config.py").read_text()
    assert f'default="{exporter}", validation_alias="OTEL_TRACES_EXPORTER"' in config
    for module in ("config.py", "telemetry.py", "serving/app.py"):
        compile((package / module).read_text(), module, "exec")
    telemetry = (package / "telemetry.py").read_text()
    assert (
        'settings.traces_exporter == "console"' in telemetry
        and 'settings.traces_exporter == "otlp"' in telemetry
    )
    answers_file = yaml.safe_load((path / ".copier-answers.yml").read_text())
    assert answers_file["tracing_exporter"] == exporter


# ---- slow: a real Prometheus scraping a running generated service --------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer 200 within {timeout}s")
        time.sleep(0.3)


def prom_query(base: str, expr: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return list(body["data"]["result"])


@pytest.mark.slow
def test_real_prometheus_scrapes_the_running_service(
    generated_project: Any, tmp_path: Path
) -> None:
    project = generated_project("default")
    binary = shutil.which("prometheus")
    assert binary, "prometheus not found: apt-get install -y prometheus"
    slug = yaml.safe_load((project.path / "slo.yaml").read_text())["service"]
    port, prom_port = free_port(), free_port()
    logs = tmp_path / "service.log", tmp_path / "prometheus.log"
    with logs[0].open("w") as service_log, logs[1].open("w") as prometheus_log:
        _scrape_check(project, slug, port, prom_port, tmp_path, binary, service_log, prometheus_log)


def _scrape_check(
    project: Any,
    slug: str,
    port: int,
    prom_port: int,
    tmp_path: Path,
    binary: str,
    service_log: Any,
    prometheus_log: Any,
) -> None:
    env = {**os.environ, "OTEL_TRACES_EXPORTER": "none", "SERVICE_PORT": str(port)}
    env.pop("VIRTUAL_ENV", None)
    service = subprocess.Popen(
        [str(project.path / ".venv" / "bin" / project.package), "serve", "--port", str(port)],
        cwd=project.path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=service_log,
    )
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(project.path / ALERTS)],
        "scrape_configs": [
            {"job_name": slug, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    prometheus = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=prometheus_log,
    )
    base = f"http://127.0.0.1:{prom_port}"
    try:
        wait_for(f"http://127.0.0.1:{port}/readyz")
        wait_for(f"{base}/-/ready")
        golden = (project.path / "data" / "golden.csv").read_text().splitlines()
        header, rows = golden[0].split(","), [line.split(",") for line in golden[1:6]]
        contract = yaml.safe_load((project.path / "data" / "contract.yaml").read_text())
        target = contract.get("target")
        records = [
            {k: float(v) for k, v in zip(header, row, strict=True) if k != target} for row in rows
        ]
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/predict",
            data=json.dumps({"records": records}).encode(),
            headers={"content-type": "application/json"},
        )
        for _ in range(3):
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200
        query = f'sum(slipway_http_requests_total{{job="{slug}",route="/predict",status="200"}})'
        deadline = time.monotonic() + 60
        while not (result := prom_query(base, query)) or float(result[0]["value"][1]) < 3:
            assert time.monotonic() < deadline, f"Prometheus never saw the requests: {result}"
            time.sleep(1)
        assert (
            float(
                prom_query(base, f'sum(slipway_predictions_total{{job="{slug}"}})')[0]["value"][1]
            )
            == 15
        )
        assert prom_query(base, f'slipway_model_ready{{job="{slug}"}}')[0]["value"][1] == "1"
        assert prom_query(base, f'slipway_prediction_cost_usd_total{{job="{slug}"}} > 0')
        assert prom_query(base, f'slipway_model_info{{job="{slug}",model_alias="champion"}}')
        with urllib.request.urlopen(f"{base}/api/v1/rules", timeout=5) as response:
            groups = json.load(response)["data"]["groups"]
        loaded = {rule["name"]: rule["health"] for group in groups for rule in group["rules"]}
        assert set(loaded) == ALERT_NAMES
        deadline = time.monotonic() + 30
        while set(loaded.values()) != {"ok"}:  # every rule evaluated without error
            assert time.monotonic() < deadline, loaded
            time.sleep(1)
            with urllib.request.urlopen(f"{base}/api/v1/rules", timeout=5) as response:
                groups = json.load(response)["data"]["groups"]
            loaded = {rule["name"]: rule["health"] for group in groups for rule in group["rules"]}
    finally:
        for process in (prometheus, service):
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
