"""The update tooling shipped in every generated repo, checked by the real tools.

GitHub's template-update.yml is linted with the other workflows by tests/test_delivery.py
(actionlint, zizmor, pinned actions, permissions); here: what it runs, the GitLab job (GitLab CI
schema, shellcheck), and the pre-commit hook (pre-commit's own validator, the pinned
pre-commit-hooks release refusing conflict markers).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.commands import tool_venv
from tests.support.render import ROOT, RenderCache
from tests.support.tools import Tools
from tests.support.update import list_conflicts

COPIER_PIN = re.search(r'"copier==([^"]+)"', (ROOT / "pyproject.toml").read_text())


@pytest.fixture(params=["default", "regression-gitlab"])
def project(request: pytest.FixtureRequest, renders: RenderCache) -> Path:
    return renders(request.param)


def frozen_hooks_version(config: dict) -> tuple[str, str]:
    repo = next(r for r in config["repos"] if r["repo"].endswith("/pre-commit-hooks"))
    return repo["rev"], repo


@pytest.fixture(scope="session")
def precommit_bin() -> Path:
    """pre-commit and the pre-commit-hooks release the template pins, in a cached venv (PyPI)."""
    text = (ROOT / "template" / ".pre-commit-config.yaml").read_text()
    version = re.search(r"pre-commit-hooks\n\s+rev: [0-9a-f]{40}\s+# frozen: v(\S+)", text)
    assert version, "pre-commit-hooks must be pinned by SHA with a `# frozen: vX.Y.Z` comment"
    packages = ["pre-commit", f"pre-commit-hooks=={version.group(1)}"]
    return tool_venv("update-tools", packages)


def test_copier_in_the_update_jobs_is_the_tested_version(project: Path) -> None:
    assert COPIER_PIN
    for path in [
        *project.glob(".github/workflows/template-update.yml"),
        *project.glob(".gitlab/template-update.gitlab-ci.yml"),
    ]:
        text = path.read_text()
        assert f'COPIER_VERSION: "{COPIER_PIN.group(1)}"' in text, path
        assert "copier check-update --output-format json" in text
        assert "copier update --defaults --trust --conflict inline" in text
        assert "scripts/list_conflicts.py --markdown" in text
        assert "uv lock" in text
        assert "ls-remote --exit-code --heads" in text  # never overwrite a branch with resolutions


def test_each_provider_gets_its_own_update_job(project: Path) -> None:
    provider = yaml.safe_load((project / ".copier-answers.yml").read_text())["ci_provider"]
    github = project / ".github/workflows/template-update.yml"
    gitlab = project / ".gitlab/template-update.gitlab-ci.yml"
    assert github.exists() == (provider == "github")
    assert gitlab.exists() == (provider == "gitlab")
    if provider == "github":
        workflow = yaml.safe_load(github.read_text())
        assert "schedule" in workflow[True] and "workflow_dispatch" in workflow[True]  # `on:`
        assert workflow["jobs"]["update"]["permissions"] == {
            "contents": "write",
            "pull-requests": "write",
        }
    else:
        pipeline = yaml.safe_load((project / ".gitlab-ci.yml").read_text())
        assert {"local": ".gitlab/template-update.gitlab-ci.yml"} in pipeline["include"]
        job = yaml.safe_load(gitlab.read_text())["template-update"]
        assert job["stage"] in pipeline["stages"]
        assert any("schedule" in rule["if"] for rule in job["rules"])


def test_gitlab_update_job_passes_the_schema_and_shellcheck(
    project: Path,
    tools: Tools,
) -> None:
    job_file = project / ".gitlab/template-update.gitlab-ci.yml"
    if not job_file.exists():
        pytest.skip("GitHub project")
    tools.run("check-jsonschema", "--builtin-schema", "vendor.gitlab-ci", job_file, check=True)
    job = yaml.safe_load(job_file.read_text())["template-update"]
    script = "set -eo pipefail\n" + "\n".join([*job["before_script"], *job["script"]]) + "\n"
    result = tools.run("shellcheck", "-s", "bash", "-", stdin=script)
    assert result.returncode == 0, result.stdout


def test_pre_commit_config_is_valid_and_pinned(project: Path, precommit_bin: Path) -> None:
    config = project / ".pre-commit-config.yaml"
    result = subprocess.run(
        [precommit_bin / "pre-commit", "validate-config", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rev, repo = frozen_hooks_version(yaml.safe_load(config.read_text()))
    assert re.fullmatch(r"[0-9a-f]{40}", rev)
    hook = next(h for h in repo["hooks"] if h["id"] == "check-merge-conflict")
    assert "--assume-in-merge" in hook.get("args", [])


def test_the_hook_refuses_copier_conflict_markers(
    project: Path, precommit_bin: Path, tmp_path: Path
) -> None:
    """Run the pinned hook with the configured args on what `copier update --conflict inline`
    leaves (outside a git merge), and on a clean file."""
    config = yaml.safe_load((project / ".pre-commit-config.yaml").read_text())
    _, repo = frozen_hooks_version(config)
    args = next(h for h in repo["hooks"] if h["id"] == "check-merge-conflict")["args"]
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    conflicted = tmp_path / "app.py"
    conflicted.write_text(
        "x = 1\n<<<<<<< before updating\ny = 2\n=======\ny = 3\n>>>>>>> after updating\n"
    )
    clean = tmp_path / "clean.py"
    clean.write_text("x = 1\n")
    hook = precommit_bin / "check-merge-conflict"
    refused = subprocess.run(
        [hook, *args, conflicted.name], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert refused.returncode == 1 and "app.py:2" in refused.stdout
    assert subprocess.run([hook, *args, clean.name], cwd=tmp_path, check=False).returncode == 0
    # Without the argument the hook would wave copier's markers through: keep it.
    assert subprocess.run([hook, conflicted.name], cwd=tmp_path, check=False).returncode == 0
    # The local hook (scripts/list_conflicts.py) refuses the same tree.
    shutil.copytree(project / "scripts", tmp_path / "scripts")
    local = next(h for r in config["repos"] if r["repo"] == "local" for h in r["hooks"])
    assert local["entry"] == "python3 scripts/list_conflicts.py"
    listed = list_conflicts(tmp_path)
    assert listed.returncode == 1 and "app.py: 1 conflict block(s) at line 2" in listed.stdout
