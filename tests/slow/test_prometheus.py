"""A real Prometheus scraping a running generated service: the metrics the dashboards and the
alert rules select exist, and every rule evaluates without error."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from tests.support.servers import free_port, stop, wait_for
from tests.test_observability import ALERT_NAMES, ALERTS, DASHBOARD


def prom_query(base: str, expr: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def test_real_prometheus_scrapes_the_running_service(
    generated_project: Any, tmp_path: Path
) -> None:
    project = generated_project("default")
    binary = shutil.which("prometheus")
    assert binary, "prometheus not found: apt-get install -y prometheus"
    slug = yaml.safe_load((project.path / "slo.yaml").read_text())["service"]
    port, metrics_port, prom_port = free_port(), free_port(), free_port()
    logs = tmp_path / "service.log", tmp_path / "prometheus.log"
    with logs[0].open("w") as service_log, logs[1].open("w") as prometheus_log:
        _scrape_check(
            project,
            slug,
            (port, metrics_port),
            prom_port,
            tmp_path,
            binary,
            service_log,
            prometheus_log,
        )


def _scrape_check(
    project: Any,
    slug: str,
    ports: tuple[int, int],
    prom_port: int,
    tmp_path: Path,
    binary: str,
    service_log: Any,
    prometheus_log: Any,
) -> None:
    port, metrics_port = ports  # the API, and /metrics on its own port
    env = {
        **os.environ,
        "OTEL_TRACES_EXPORTER": "none",
        "SERVICE_PORT": str(port),
        "SERVICE_METRICS_PORT": str(metrics_port),
    }
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
            {
                "job_name": slug,
                # As the local stack's prometheus.yml: the rules and the dashboard select a namespace.
                "static_configs": [
                    {"targets": [f"127.0.0.1:{metrics_port}"], "labels": {"namespace": "local"}}
                ],
            }
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
        alerting = {r["name"] for g in groups for r in g["rules"] if r["type"] == "alerting"}
        assert alerting == ALERT_NAMES
        # the burn-rate alerts' recording rules load too (and evaluate without error, below)
        assert {n for n in loaded if n.startswith("job_namespace:slipway_predict_")} == set(
            loaded
        ) - ALERT_NAMES
        deadline = time.monotonic() + 30
        while set(loaded.values()) != {"ok"}:  # every rule evaluated without error
            assert time.monotonic() < deadline, loaded
            time.sleep(1)
            with urllib.request.urlopen(f"{base}/api/v1/rules", timeout=5) as response:
                groups = json.load(response)["data"]["groups"]
            loaded = {rule["name"]: rule["health"] for group in groups for rule in group["rules"]}
        _dashboard_queries_answer(project.path, base, request)
    finally:
        for process in (prometheus, service):
            stop(process)


def _dashboard_queries_answer(project: Path, base: str, request: urllib.request.Request) -> None:
    """Every query of the dashboard evaluates in the real Prometheus, for the local namespace;
    the burn-rate panels show the recorded ratios of requests sent while Prometheus scrapes (a
    counter's first sample has no rate): no 5xx, so the error budget's burn rate is 0, not a gap;
    the latency one is a share of the budget."""
    dashboard = json.loads((project / DASHBOARD).read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            prom_query(base, target["expr"].replace("$namespace", "local"))
    burns = [p for p in dashboard["panels"] if p["title"].startswith("Burn rate")]
    assert len(burns) == 2
    deadline = time.monotonic() + 60
    for panel in burns:
        short = panel["targets"][0]["expr"].replace("$namespace", "local")  # the 1h window
        while not (result := prom_query(base, short)) or math.isnan(float(result[0]["value"][1])):
            assert time.monotonic() < deadline, f"no burn rate recorded: {short} {result}"
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200
            time.sleep(1)
        burn = float(result[0]["value"][1])
        if ":slipway_predict_errors:" in short:
            assert burn == 0.0, (short, result)
        else:  # at most every request slow: 1 / the 5% budget
            assert 0.0 <= burn <= 20.0, (short, result)
