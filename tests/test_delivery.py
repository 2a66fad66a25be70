"""Delivery checked by the real tools, for every CI provider choice.

GitHub workflows: actionlint (with shellcheck) and zizmor, zero findings. GitLab: the GitLab CI JSON
schema. Kubernetes: every overlay rendered by real kustomize (kubectl), with the image set exactly as
deploy/deploy.sh sets it at deploy time, validated against the Kubernetes OpenAPI schemas (Ingress and
NetworkPolicy included) and, for the ServiceMonitor and PrometheusRule CRDs, against the
prometheus-operator CRD schemas. Probe paths and the port are read
from the rendered service code, not restated here.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from slipway import copier_config

from tests.support.render import RenderCache, example_answers, package_dir
from tests.support.render import project_answers as answers
from tests.support.tools import Tools

# One answer set per ci_provider choice (default = GitHub + classification, the other GitLab +
# regression), so every provider renders and every check runs on both.
ANSWER_SETS = ["default", "regression-gitlab"]
OVERLAYS = ["staging", "prod", "prod-canary"]
IMAGE = "registry.example.com/team/svc@sha256:" + "ab" * 32


@pytest.fixture(params=ANSWER_SETS)
def rendered(request: pytest.FixtureRequest, renders: RenderCache) -> Path:
    """The session's shared render of the answer set (read-only)."""
    return renders(request.param)


# ---------------------------------------------------------------------------- GitHub Actions --

USES = re.compile(r"^\s*(?:-\s*)?uses:\s*(\S+)(.*)$", re.MULTILINE)


def github_workflows(project: Path) -> list[Path]:
    return sorted((project / ".github" / "workflows").glob("*.yml"))


def test_every_ci_provider_choice_is_covered() -> None:
    choices = set(copier_config.questions()["ci_provider"]["choices"].values())
    assert {example_answers(name)["ci_provider"] for name in ANSWER_SETS} == choices


def test_each_provider_gets_only_its_own_pipeline(rendered: Path) -> None:
    provider = answers(rendered)["ci_provider"]
    names = {p.name for p in github_workflows(rendered)}
    if provider == "github":
        assert names >= {"ci.yml", "cd.yml", "retrain.yml"}
    else:
        assert not (rendered / ".github").exists()
    assert (rendered / ".gitlab-ci.yml").exists() == (provider == "gitlab")


def test_actionlint_with_shellcheck_finds_nothing(rendered: Path, tools: Tools) -> None:
    workflows = github_workflows(rendered)
    if not workflows:
        pytest.skip("GitLab project: no GitHub workflows")
    result = tools.run(
        "actionlint", "-shellcheck", tools.bin / "shellcheck", *workflows, cwd=rendered
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_zizmor_finds_nothing_even_as_auditor(rendered: Path, tools: Tools) -> None:
    if not github_workflows(rendered):
        pytest.skip("GitLab project: no GitHub workflows")
    result = tools.run(
        "zizmor",
        "--offline",
        "--persona",
        "auditor",
        "--no-progress",
        ".github/workflows",
        cwd=rendered,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout + result.stderr


def test_workflows_pin_actions_and_limit_permissions(rendered: Path) -> None:
    for path in github_workflows(rendered):
        text = path.read_text()
        for ref, comment in USES.findall(text):
            if ref.startswith(("$/", "./")):  # a workflow of this repo (the team's extension)
                continue
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), (
                f"{path.name}: {ref} unpinned"
            )
            assert re.fullmatch(r"\s*# v\d+\.\d+\.\d+", comment), (
                f"{path.name}: {ref} needs # vX.Y.Z"
            )
        workflow = yaml.safe_load(text)
        assert workflow["permissions"] == {}, f"{path.name}: top-level permissions must be {{}}"
        # A called workflow shares its caller's concurrency group (github.workflow): none of its own.
        called = "workflow_call" in (workflow.get(True) or workflow.get("on") or {})
        assert ("concurrency" in workflow) is not called, path.name
        for name, job in workflow["jobs"].items():
            assert "permissions" in job, f"{path.name}:{name}"
            # A job calling a workflow takes no timeout: the called jobs set theirs.
            assert ("timeout-minutes" in job) is ("uses" not in job), f"{path.name}:{name}"
            assert "write-all" not in str(job["permissions"])


# The scanner and signer pins docs/delivery.md states as verified (tag -> commit, 2026-12-02):
# the workflow must use exactly those, and the page must name exactly what the workflow uses.
VERIFIED_PINS = {
    "aquasecurity/trivy-action": ("ed142fd0673e97e23eac54620cfb913e5ce36c25", "v0.36.0"),
    "sigstore/cosign-installer": ("6f9f17788090df1f26f669e9d70d6ae9567deba6", "v4.1.2"),
}


def test_scanner_and_signer_pins_are_the_verified_ones(rendered: Path) -> None:
    if answers(rendered)["ci_provider"] != "github":
        pytest.skip("GitLab project: no GitHub actions")
    page = (rendered / "docs" / "delivery.md").read_text()
    assert "unverified" not in page and "verify them" not in page
    used = {
        ref.split("@")[0]: (ref.split("@")[1], comment.strip().lstrip("# "))
        for ref, comment in USES.findall((rendered / ".github/workflows/cd.yml").read_text())
    }
    for action, (sha, tag) in VERIFIED_PINS.items():
        assert used[action] == (sha, tag), action
        row = next(line for line in page.splitlines() if line.startswith(f"| `{action}` |"))
        assert f"| {tag} " in row and f"`{sha}`" in row, row


def test_cd_gates_production_and_rolls_back(rendered: Path) -> None:
    if answers(rendered)["ci_provider"] != "github":
        pytest.skip("GitHub only")
    cd = yaml.safe_load((rendered / ".github/workflows/cd.yml").read_text())
    jobs = cd["jobs"]
    assert jobs["production"]["environment"]["name"] == "production"  # approval via reviewers
    assert set(jobs["production"]["needs"]) == {"build", "staging"}
    runs = [step.get("run", "") for step in jobs["production"]["steps"]]
    order = [
        next(i for i, r in enumerate(runs) if needle in r)
        for needle in ("deploy.sh canary", "-canary", "deploy.sh apply prod", "promote")
    ]
    assert order == sorted(order), "canary -> verify -> full rollout -> promote"
    rollback = next(s for s in jobs["production"]["steps"] if "rollback prod" in s.get("run", ""))
    assert rollback["if"] == "failure()" and '"$PACKAGE" rollback' in rollback["run"]
    retrain = (rendered / ".github/workflows/retrain.yml").read_text()
    assert "promote" not in retrain.replace("not** promoted", "").replace("never promotes", "")


def test_cd_scans_before_push_signs_and_verifies_before_deploy(rendered: Path) -> None:
    """The image is scanned for known vulnerabilities before it is pushed, its pushed digest is
    signed keylessly, and every deploy verifies that signature on a digest-pinned image first."""
    provider = answers(rendered)["ci_provider"]
    if provider == "github":
        jobs = yaml.safe_load((rendered / ".github/workflows/cd.yml").read_text())["jobs"]
        build = jobs["build"]["steps"]
        uses = [step.get("uses", "").split("@")[0] for step in build]
        runs = [step.get("run", "") for step in build]
        scan = uses.index("aquasecurity/trivy-action")
        push = next(i for i, s in enumerate(build) if (s.get("with") or {}).get("push") is True)
        sign = next(i for i, r in enumerate(runs) if "cosign sign" in r)
        assert (
            build[scan]["with"]["exit-code"] == "1"
            and "CRITICAL" in build[scan]["with"]["severity"]
        )
        assert scan < push < sign, "scan -> push -> sign"
        assert "steps.push.outputs.digest" in str(build[sign]["env"])
        assert jobs["build"]["permissions"]["id-token"] == "write"
        for name in ("staging", "production"):
            runs = [step.get("run", "") for step in jobs[name]["steps"]]
            verify = next(i for i, r in enumerate(runs) if "cosign verify" in r)
            first_deploy = next(i for i, r in enumerate(runs) if "deploy/deploy.sh" in r)
            assert verify < first_deploy, name
            assert "@sha256:" in runs[verify] and "--certificate-identity" in runs[verify]
            assert "id-token" not in jobs[name]["permissions"]
        return
    config = yaml.safe_load((rendered / ".gitlab-ci.yml").read_text())
    assert config["variables"]["IMAGE_NAME"] == "$CI_REGISTRY_IMAGE"  # subgroups push right
    script = "\n".join(config["build-image"]["script"])
    assert script.index("trivy image") < script.index("docker push") < script.index("cosign sign")
    assert "--exit-code 1" in script and "sha256sum -c" in script
    assert config["build-image"]["id_tokens"]["SIGSTORE_ID_TOKEN"]["aud"] == "sigstore"
    verify = "\n".join(config[".kubectl"]["before_script"])
    assert "cosign verify" in verify and "@sha256:" in verify
    for name in ("deploy-staging", "deploy-production"):
        assert ".kubectl" in config[name]["extends"], name  # verified before its script deploys


# ---------------------------------------------------------------------------------- GitLab --


def test_gitlab_ci_validates_against_the_gitlab_schema(
    rendered: Path, tools: Tools, tmp_path: Path
) -> None:
    if answers(rendered)["ci_provider"] != "gitlab":
        pytest.skip("GitHub project: no .gitlab-ci.yml")
    config = rendered / ".gitlab-ci.yml"
    tools.run("check-jsonschema", "--builtin-schema", "vendor.gitlab-ci", config, check=True)
    # The same checker rejects a broken pipeline (a job named like a global keyword).
    broken = tmp_path / ".gitlab-ci.yml"
    broken.write_text(config.read_text() + "\nimage:\n  stage: check\n  script: [true]\n")
    assert (
        tools.run("check-jsonschema", "--builtin-schema", "vendor.gitlab-ci", broken).returncode
        != 0
    )
    jobs = yaml.safe_load(config.read_text())
    prod = jobs["deploy-production"]
    assert all(rule.get("when") == "manual" for rule in prod["rules"])
    script = "\n".join(prod["script"])
    assert script.index("canary") < script.index("apply prod") < script.index("promote")
    assert "rollback prod" in "\n".join(prod["after_script"])


def test_gitlab_job_scripts_are_shellcheck_clean(rendered: Path, tools: Tools) -> None:
    if answers(rendered)["ci_provider"] != "gitlab":
        pytest.skip("GitHub project: actionlint runs shellcheck on its run: steps")
    config = yaml.safe_load((rendered / ".gitlab-ci.yml").read_text())
    default = config.get("default", {})
    checked = 0
    for name, job in config.items():
        if not isinstance(job, dict) or not {"script", "before_script"} & set(job):
            continue
        lines = [
            *job.get("before_script", default.get("before_script", [])),
            *job.get("script", []),
            *job.get("after_script", []),
        ]
        result = tools.run(
            "shellcheck", "-s", "bash", "-", stdin="set -eo pipefail\n" + "\n".join(lines) + "\n"
        )
        assert result.returncode == 0, f"job {name}:\n{result.stdout}"
        checked += 1
    assert checked >= 8


def cli_commands(project: Path) -> set[str]:
    tree = ast.parse((package_dir(project) / "cli.py").read_text())
    for node in ast.walk(tree):
        target = getattr(node, "target", None) or next(iter(getattr(node, "targets", [])), None)
        if isinstance(target, ast.Name) and target.id == "COMMANDS":
            assert isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Dict)
            return {k.value for k in node.value.keys if isinstance(k, ast.Constant)}
    raise AssertionError("cli.py has no COMMANDS table")


def test_pipelines_call_only_commands_that_exist(rendered: Path) -> None:
    """Every `make X` and `<pkg> X` the pipelines and deploy.sh run is a real target/subcommand."""
    package = answers(rendered)["package_name"]
    makefile = (rendered / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][\w-]*):", makefile, re.MULTILINE))
    commands = cli_commands(rendered)
    sources = [*github_workflows(rendered), rendered / "deploy" / "deploy.sh"]
    if (rendered / ".gitlab-ci.yml").exists():
        sources.append(rendered / ".gitlab-ci.yml")
    used_make, used_cli = set(), set()
    for source in sources:
        text = source.read_text()
        used_make |= set(re.findall(r"^\s*(?:run:\s*|-\s*)?make ([a-z][\w-]*)", text, re.MULTILINE))
        pattern = rf'(?:"\$PACKAGE"|\b{package}) ([a-z][\w-]*)'
        used_cli |= set(re.findall(pattern, text))
    assert used_cli | used_make >= {
        "train",
        "evaluate",
        "export",
        "promote",
        "rollback",
        "loadtest",
    }
    assert used_make <= targets, f"missing Makefile targets: {used_make - targets}"
    assert used_cli <= commands, f"missing CLI subcommands: {used_cli - commands}"


# ------------------------------------------------------------------------------ Kubernetes --


def render_overlay(project: Path, tools: Tools, overlay: str) -> list[dict[str, Any]]:
    result = tools.run(
        "bash", project / "deploy" / "deploy.sh", "render", overlay, IMAGE, cwd=project, check=True
    )
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def served_paths(project: Path) -> set[str]:
    """Every path the rendered service registers (decorators, add_route, mount)."""
    paths = set()
    for source in package_dir(project).rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr
                in {"get", "post", "api_route", "route", "add_route", "add_api_route", "mount"}
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and str(node.args[0].value).startswith("/")
            ):
                paths.add(str(node.args[0].value))
    return paths


def service_port(project: Path) -> int:
    tree = ast.parse((package_dir(project) / "config.py").read_text())
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == "port"
            and isinstance(node.value, ast.Constant)
        ):
            return int(node.value.value)
    raise AssertionError("config.py has no `port` setting")


def only(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_and_validates(
    rendered: Path,
    tools: Tools,
    tmp_path: Path,
    crd_check: Callable[[dict[str, Any]], str],
    overlay: str,
) -> None:
    docs = render_overlay(rendered, tools, overlay)
    plain = [d for d in docs if d["apiVersion"] != "monitoring.coreos.com/v1"]
    manifest = tmp_path / f"{overlay}.yaml"
    manifest.write_text(yaml.safe_dump_all(plain))
    result = tools.run("kubernetes-validate", "--strict", "--no-warn", manifest)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") == len(plain)

    custom = [d for d in docs if d["apiVersion"] == "monitoring.coreos.com/v1"]
    kinds = sorted(d["kind"] for d in custom)
    assert kinds == ([] if overlay == "prod-canary" else ["PrometheusRule", "ServiceMonitor"])
    for resource in custom:
        assert crd_check(resource) == "ok", resource["kind"]
    edge = sorted(d["kind"] for d in plain if d["kind"] in ("Ingress", "NetworkPolicy"))
    assert edge == ([] if overlay == "prod-canary" else ["Ingress", "NetworkPolicy"])

    deployment = only(docs, "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == IMAGE  # what deploy.sh applies is what was built
    # The worker processes follow the CPU limit (downward API), whatever the overlay sets it to.
    workers = {e["name"]: e for e in container["env"]}["SERVICE_WORKERS"]
    assert workers["valueFrom"] == {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1"}}
    assert "cpu" in container["resources"]["limits"]


def test_the_validators_reject_broken_manifests(
    rendered: Path, tools: Tools, tmp_path: Path, crd_check: Callable[[dict[str, Any]], str]
) -> None:
    docs = render_overlay(rendered, tools, "prod")
    deployment = only(docs, "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(deployment))
    assert tools.run("kubernetes-validate", "--strict", "--no-warn", bad).returncode != 0
    monitor = only(docs, "ServiceMonitor")
    assert crd_check(monitor) == "ok"
    monitor["spec"]["endpoints"][0]["interval"] = "thirty seconds"
    assert crd_check(monitor).startswith("invalid")
    monitor["spec"]["endpoints"][0] = {"port": "http", "pathh": "/metrics"}
    assert "$.spec.endpoints[0].pathh" in crd_check(monitor)
    rule = only(docs, "PrometheusRule")
    assert crd_check(rule) == "ok"
    rule["spec"]["groups"][0]["rules"][0]["for"] = "five minutes"
    assert crd_check(rule).startswith("invalid")
    rule["spec"]["groups"][0]["rules"][0] = {"alert": "X", "expr": "up", "fore": "5m"}
    assert "$.spec.groups[0].rules[0].fore" in crd_check(rule)
    for kind, breakage in (
        (
            "Ingress",
            lambda d: d["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"].update(
                port={"number": "http"}
            ),
        ),
        ("NetworkPolicy", lambda d: d["spec"]["ingress"][0].update(ports=[{"port": [80]}])),
    ):
        doc = only(docs, kind)
        breakage(doc)
        bad.write_text(yaml.safe_dump(doc))
        assert tools.run("kubernetes-validate", "--strict", "--no-warn", bad).returncode != 0, kind


# Validates ServiceMonitors and PrometheusRules with models generated from the prometheus-operator CRD schema, and rejects
# fields the schema does not define (the API server would prune them silently). One process serves
# the whole session: importing the models takes seconds. Protocol: a JSON document per line in,
# "ok" or the problem per line out.
CRD_SERVER = """
import json, sys
from cloudcoil.models.prometheus_operator.v1 import PrometheusRule, ServiceMonitor
MODELS = {"ServiceMonitor": ServiceMonitor, "PrometheusRule": PrometheusRule}
def unknown(raw, known, where):
    if isinstance(raw, dict) and isinstance(known, dict):
        for key, value in raw.items():
            if key not in known:
                yield f"{where}.{key}"
            else:
                yield from unknown(value, known[key], f"{where}.{key}")
    elif isinstance(raw, list) and isinstance(known, list):
        for i, (r, k) in enumerate(zip(raw, known)):
            yield from unknown(r, k, f"{where}[{i}]")
for line in sys.stdin:
    doc = json.loads(line)
    try:
        model = MODELS[doc["kind"]]
        dumped = model.model_validate(doc).model_dump(by_alias=True, exclude_unset=True)
        problems = list(unknown(doc, dumped, "$"))
        answer = f"fields the CRD schema does not define: {problems}" if problems else "ok"
    except Exception as error:
        answer = f"invalid: {error}"
    print(json.dumps(answer), flush=True)
"""


@pytest.fixture(scope="session")
def crd_check(tools: Tools) -> Iterator[Callable[[dict[str, Any]], str]]:
    server = subprocess.Popen(
        [str(tools.python), "-c", CRD_SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdin and server.stdout

    def check(doc: dict[str, Any]) -> str:
        assert server.stdin and server.stdout
        server.stdin.write(json.dumps(doc) + "\n")
        server.stdin.flush()
        answer: str = json.loads(server.stdout.readline())
        return answer

    yield check
    server.stdin.close()
    server.wait(timeout=30)


def test_probes_and_port_match_the_service(rendered: Path, tools: Tools) -> None:
    docs = render_overlay(rendered, tools, "prod")
    paths, port = served_paths(rendered), service_port(rendered)
    container = only(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert named["http"] == port
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    assert env.get("SERVICE_PORT", str(port)) == str(port)
    assert env.get("SERVICE_HOST") == "0.0.0.0"  # reachable from the kubelet and the Service
    probes = {kind: container[f"{kind}Probe"]["httpGet"] for kind in ("liveness", "readiness")}
    assert probes["liveness"]["path"] == "/healthz" and probes["readiness"]["path"] == "/readyz"
    for probe in probes.values():
        assert probe["path"] in paths, f"{probe['path']} is not served (serves {sorted(paths)})"
        assert probe["port"] in (port, "http")
    service = only(docs, "Service")
    assert service["spec"]["ports"][0]["targetPort"] in (port, "http")
    # deploy.sh verify port-forwards "http" on both the Service and a Deployment's pod.
    assert service["spec"]["ports"][0]["name"] == "http" and "http" in named
    expose = re.search(r"^EXPOSE\s+(\d+)", (rendered / "Dockerfile").read_text(), re.MULTILINE)
    assert expose and int(expose.group(1)) == port


def test_servicemonitor_scrapes_what_the_service_serves(rendered: Path, tools: Tools) -> None:
    docs = render_overlay(rendered, tools, "prod")
    endpoint = only(docs, "ServiceMonitor")["spec"]["endpoints"][0]
    service_ports = {p["name"]: p for p in only(docs, "Service")["spec"]["ports"]}
    container = only(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    container_ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    # /metrics on its own port (the agreed `metrics` container port, default 9100), not the API's
    assert endpoint["port"] == "metrics" and service_ports["metrics"]["targetPort"] == "metrics"
    assert container_ports["metrics"] == 9100 != container_ports["http"]
    assert endpoint["path"] in served_paths(rendered), "the service must serve /metrics"


@pytest.mark.parametrize("overlay", ["staging", "prod"])
def test_the_edge_is_locked_down(rendered: Path, tools: Tools, overlay: str) -> None:
    """The Ingress reaches only the API port; the NetworkPolicy admits only the ingress
    controller (API port) and the monitoring namespace (metrics port) to the service's pods."""
    docs = render_overlay(rendered, tools, overlay)
    ingress, policy = only(docs, "Ingress"), only(docs, "NetworkPolicy")
    service = only(docs, "Service")
    backends = [
        path["backend"]["service"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    assert backends and all(b["name"] == service["metadata"]["name"] for b in backends)
    assert {b["port"].get("name") for b in backends} == {"http"}, "only the API port is public"
    assert "defaultBackend" not in ingress["spec"]
    hosts = {rule["host"] for rule in ingress["spec"]["rules"]}
    assert hosts == set(ingress["spec"]["tls"][0]["hosts"]), "every host is served with TLS"
    assert (overlay == "staging") == any(".staging." in host for host in hosts)

    labels = only(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    allowed = {}
    for rule in policy["spec"]["ingress"]:
        assert rule.get("from"), "a rule without `from` admits every source"
        for source in rule["from"]:
            assert set(source) == {"namespaceSelector"}, source  # no ipBlock, no bare podSelector
            namespace = source["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            allowed[namespace] = {port["port"] for port in rule["ports"]}
    assert allowed == {"ingress-nginx": {"http"}, "monitoring": {"metrics"}}


def test_pods_are_locked_down(rendered: Path, tools: Tools) -> None:
    user = re.search(r"^USER\s+(\d+)", (rendered / "Dockerfile").read_text(), re.MULTILINE)
    for overlay in OVERLAYS:
        spec = only(render_overlay(rendered, tools, overlay), "Deployment")["spec"]["template"][
            "spec"
        ]
        pod, container = spec["securityContext"], spec["containers"][0]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0
        assert user and int(user.group(1)) == pod["runAsUser"], "image USER = pod runAsUser"
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert {"requests", "limits"} <= set(container["resources"])
        tmp = next(m for m in container["volumeMounts"] if m["mountPath"] == "/tmp")
        assert "emptyDir" in next(v for v in spec["volumes"] if v["name"] == tmp["name"])


def test_canary_serves_behind_the_production_service(rendered: Path, tools: Tools) -> None:
    prod, canary = (render_overlay(rendered, tools, o) for o in ("prod", "prod-canary"))
    stable, extra = only(prod, "Deployment"), only(canary, "Deployment")
    assert {d["kind"] for d in canary} == {"Deployment", "ConfigMap"}
    assert extra["metadata"]["namespace"] == stable["metadata"]["namespace"]
    assert (
        extra["metadata"]["name"] != stable["metadata"]["name"] and extra["spec"]["replicas"] == 1
    )
    selector = only(prod, "Service")["spec"]["selector"].items()
    canary_labels = extra["spec"]["template"]["metadata"]["labels"].items()
    stable_selector = stable["spec"]["selector"]["matchLabels"].items()
    assert selector <= canary_labels, "the Service must route a share of traffic to the canary"
    assert not stable_selector <= canary_labels, "the stable Deployment must not adopt canary pods"
    hpa = only(prod, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == stable["metadata"]["name"]
    assert "replicas" not in stable["spec"], "the HPA owns the replica count"


def test_deploy_script_is_shellcheck_clean_and_refuses_mutable_images(
    rendered: Path, tools: Tools
) -> None:
    script = rendered / "deploy" / "deploy.sh"
    assert os.access(script, os.X_OK)
    tools.run("shellcheck", script, check=True)
    latest = tools.run(
        "bash", script, "render", "staging", "registry.example.com/team/svc", cwd=rendered
    )
    assert latest.returncode != 0 and "neither a tag nor a digest" in latest.stderr
    tagged = render_overlay(rendered, tools, "staging")
    assert not list((rendered / "deploy" / "k8s").glob(".deploy-*")), "temp kustomization left"
    assert only(tagged, "Deployment")["metadata"]["namespace"].endswith("-staging")
