"""Batch scoring in the rendered repo (docs/batch-scoring.md of the generated repo).

`batch-score` is in every repo; the `batch_scoring` question adds the schedule: a Kubernetes
CronJob (deploy/k8s/batch, rendered by real kustomize and validated against the Kubernetes
schemas), a scheduled GitHub workflow (actionlint, zizmor) or GitLab job (GitLab CI schema,
shellcheck), and the Spark engine's dependency group. Off by default: the default repo has none.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from slipway import copier_config
from tests.support.render import RenderCache, example_answers, package_dir
from tests.support.render import project_answers as answers
from tests.support.tools import Tools

# The answer sets with the question on, one per CI provider.
ON = ["classification-github-platform", "regression-gitlab"]
IMAGE = "registry.example.com/team/svc-batch@sha256:" + "cd" * 32


@pytest.fixture(params=ON)
def scheduled(request: pytest.FixtureRequest, renders: RenderCache) -> Path:
    return renders(request.param)


def test_the_question_is_off_by_default_and_on_for_each_provider() -> None:
    question = copier_config.questions()["batch_scoring"]
    assert question["type"] == "bool" and question["default"] is False
    assert {example_answers(n)["ci_provider"] for n in ON} == {"github", "gitlab"}
    assert all(example_answers(n)["batch_scoring"] is True for n in ON)


def test_the_default_repo_scores_in_batch_but_schedules_nothing(renders: RenderCache) -> None:
    project = renders("default")
    assert (package_dir(project) / "batch" / "job.py").exists()
    assert '"batch-score"' in (package_dir(project) / "cli.py").read_text()
    assert not (project / "deploy" / "k8s" / "batch").exists()
    assert not (project / ".github" / "workflows" / "batch.yml").exists()
    groups = tomllib.loads((project / "pyproject.toml").read_text())["dependency-groups"]
    assert "spark" not in groups


def test_the_option_adds_the_spark_group_outside_the_default_groups(scheduled: Path) -> None:
    pyproject = tomllib.loads((scheduled / "pyproject.toml").read_text())
    assert any(d.startswith("pyspark") for d in pyproject["dependency-groups"]["spark"])
    assert "spark" not in pyproject["tool"]["uv"]["default-groups"]


def render_batch(project: Path, tools: Tools, tmp_path: Path) -> list[dict[str, Any]]:
    """deploy/k8s/batch with the image set as a deploy would (kustomize edit set image)."""
    work = tmp_path / "batch"
    work.mkdir()
    for source in (project / "deploy" / "k8s" / "batch").iterdir():
        (work / source.name).write_text(source.read_text())
    slug = answers(project)["project_name"].lower().replace(" ", "-")
    name = f"{answers(project)['image_registry']}/{slug}-batch"
    tools.run("kubectl", "kustomize", work, check=True)  # renders before the edit too
    kustomization = yaml.safe_load((work / "kustomization.yaml").read_text())
    kustomization["images"] = [
        {"name": name, "newName": IMAGE.split("@")[0], "digest": IMAGE.split("@")[1]}
    ]
    (work / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    result = tools.run("kubectl", "kustomize", work, check=True)
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def test_the_cronjob_renders_and_validates(scheduled: Path, tools: Tools, tmp_path: Path) -> None:
    docs = render_batch(scheduled, tools, tmp_path)
    manifest = tmp_path / "batch.yaml"
    manifest.write_text(yaml.safe_dump_all(docs))
    result = tools.run("kubernetes-validate", "--strict", "--no-warn", manifest)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") == len(docs)
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == ["ConfigMap", "CronJob", "Role", "RoleBinding", "ServiceAccount"]
    cronjob = next(d for d in docs if d["kind"] == "CronJob")
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == IMAGE
    assert container["command"] == [answers(scheduled)["package_name"]]
    assert container["args"][0] == "batch-score"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert (
        pod["serviceAccountName"]
        == next(d for d in docs if d["kind"] == "ServiceAccount")["metadata"]["name"]
    )
    namespaces = {d["metadata"].get("namespace") for d in docs}
    assert len(namespaces) == 1 and None not in namespaces


def test_a_broken_cronjob_is_refused(scheduled: Path, tools: Tools, tmp_path: Path) -> None:
    docs = render_batch(scheduled, tools, tmp_path)
    cronjob = next(d for d in docs if d["kind"] == "CronJob")
    cronjob["spec"]["concurrencyPolicy"] = 3
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cronjob))
    assert tools.run("kubernetes-validate", "--strict", "--no-warn", bad).returncode != 0


def test_the_scheduled_workflow_is_clean(scheduled: Path, tools: Tools) -> None:
    package = answers(scheduled)["package_name"]
    if answers(scheduled)["ci_provider"] == "github":
        workflow = scheduled / ".github" / "workflows" / "batch.yml"
        result = tools.run(
            "actionlint", "-shellcheck", tools.bin / "shellcheck", workflow, cwd=scheduled
        )
        assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr
        result = tools.run(
            "zizmor",
            "--offline",
            "--persona",
            "auditor",
            "--no-progress",
            ".github/workflows",
            cwd=scheduled,
        )
        assert "No findings to report" in result.stdout + result.stderr, result.stdout
        parsed = yaml.safe_load(workflow.read_text())
        assert parsed[True]["schedule"] and parsed["permissions"] == {}
        assert f"{package} batch-score" in workflow.read_text()
        return
    job_file = scheduled / ".gitlab" / "batch.gitlab-ci.yml"
    ci = yaml.safe_load((scheduled / ".gitlab-ci.yml").read_text())
    assert {"local": ".gitlab/batch.gitlab-ci.yml"} in [
        {k: v for k, v in i.items() if k == "local"} for i in ci["include"]
    ]
    tools.run("check-jsonschema", "--builtin-schema", "vendor.gitlab-ci", job_file, check=True)
    job = yaml.safe_load(job_file.read_text())["batch-score"]
    script = "\n".join([*job["before_script"], *job["script"]])
    result = tools.run("shellcheck", "-s", "bash", "-", stdin="set -eo pipefail\n" + script + "\n")
    assert result.returncode == 0, result.stdout
    assert '"$PACKAGE" batch-score' in script
    # The batch schedule does not also retrain.
    assert 'SLIPWAY_BATCH_SCORE != "true"' in str(ci["retrain"]["rules"])
