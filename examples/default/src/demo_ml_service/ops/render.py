"""Write (or check) every file generated from slo.yaml."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ..slo import load_slo
from .alerts import (
    Scope,
    build_prometheus_rule,
    build_rule_tests,
    build_rules,
    build_slow_burn_tests,
)
from .dashboard import build_dashboard
from .slo_doc import fill_runbook, render_slo_doc

ALERTS_FILE = Path("observability/prometheus/alerts.yml")
ALERTS_TEST_FILE = Path("observability/prometheus/alerts_test.yml")
SLOW_BURN_TEST_FILE = Path("observability/prometheus/alerts_slow_burn_test.yml")
DASHBOARD_FILE = Path("observability/grafana/dashboards/service.json")
SLO_DOC_FILE = Path("docs/slo.md")
RELATIVE_RUNBOOK = "docs/runbook.md"
OVERLAYS = Path("deploy/k8s/overlays")
PROMETHEUS_RULE = "prometheusrule.yaml"

_YAML_HEADER = (
    "# GENERATED from slo.yaml by `make ops` (python -m {package}.ops render): edit slo.yaml\n"
    "# (or the platform template) and re-render; `make ops-check` fails when this file is stale.\n"
)


def runbook_base(root: Path) -> str:
    """Absolute runbook URL from catalog-info.yaml's `Runbook` link, else the repo-relative path."""
    catalog = root / "catalog-info.yaml"
    if catalog.exists():
        data = yaml.safe_load(catalog.read_text(encoding="utf-8")) or {}
        for link in (data.get("metadata") or {}).get("links") or []:
            url = str(link.get("url", ""))
            if link.get("title") == "Runbook" and url.endswith(RELATIVE_RUNBOOK):
                return url
    return RELATIVE_RUNBOOK


def environments(root: Path, service: str) -> list[Scope]:
    """One scope per kustomize overlay that sets its own namespace (staging, prod; not the
    prod-canary overlay, which adds a pod to prod's namespace)."""
    scopes = []
    for kustomization in sorted((root / OVERLAYS).glob("*/kustomization.yaml")):
        data = yaml.safe_load(kustomization.read_text(encoding="utf-8")) or {}
        if isinstance(data.get("namespace"), str):
            scopes.append(Scope(service, data["namespace"], kustomization.parent.name))
    return scopes


def _yaml(data: Mapping[str, Any], package: str) -> str:
    body = yaml.safe_dump(dict(data), sort_keys=False, width=100_000, allow_unicode=True)
    return _YAML_HEADER.format(package=package) + body


def outputs(root: Path, package: str) -> dict[Path, str]:
    """relative path -> content of every generated file."""
    slo = load_slo(root / "slo.yaml")
    base = runbook_base(root)
    runbook = root / RELATIVE_RUNBOOK
    scopes = environments(root, slo.service)
    generated_pages = (
        {Path(RELATIVE_RUNBOOK): fill_runbook(runbook.read_text(encoding="utf-8"), slo, scopes)}
        if runbook.exists()
        else {}
    )
    return {
        **generated_pages,
        ALERTS_FILE: _yaml(build_rules(slo, runbook_base=base), package),
        ALERTS_TEST_FILE: _yaml(build_rule_tests(slo, ALERTS_FILE.name, base), package),
        SLOW_BURN_TEST_FILE: _yaml(build_slow_burn_tests(slo, ALERTS_FILE.name, base), package),
        DASHBOARD_FILE: json.dumps(build_dashboard(slo), indent=2, ensure_ascii=False) + "\n",
        SLO_DOC_FILE: render_slo_doc(slo),
        **{
            OVERLAYS / scope.environment / PROMETHEUS_RULE: _yaml(
                build_prometheus_rule(slo, scope, base), package
            )
            for scope in scopes
        },
    }


def render(root: Path, package: str) -> list[Path]:
    """Write the files whose content changed; returns them."""
    written = []
    for relative, content in outputs(root, package).items():
        path = root / relative
        if path.exists() and path.read_text(encoding="utf-8") == content:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        written.append(relative)
    return written


def stale(root: Path, package: str) -> list[Path]:
    """Generated files that are missing or differ from what slo.yaml gives."""
    return [
        relative
        for relative, content in outputs(root, package).items()
        if not (root / relative).exists()
        or (root / relative).read_text(encoding="utf-8") != content
    ]
