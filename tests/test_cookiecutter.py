"""The cookiecutter rendition (`python -m slipway cookiecutter build`) makes the repo `copier copy`
makes: byte for byte, for the default answers and two other answer sets (the session's cached
Copier renders, `renders`), tasks included; refuses bad answers with Copier's messages; follows
Copier on what slipway's template does not use yet (a small template); `slipway adopt`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

from slipway import copier_config
from slipway.rendition import build
from tests.support.render import ROOT, RenderCache, example_answers, project_answers, render
from tests.support.update import make_template_clone

PARITY_SETS = ["default", "regression-gitlab", "classification-github-platform"]


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_template_clone(tmp_path_factory.mktemp("cc-template") / "slipway")


@pytest.fixture(scope="module")
def rendition(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The rendition of this working tree (what the `renders` fixture renders with Copier)."""
    return build(tmp_path_factory.mktemp("cc-build") / "rendition", src=ROOT)


def recording(rendition: Path, commit: str | None) -> Path:
    """The rendition, recording `commit` as the template version. Copier records the commit
    of its own clone of the template, a new one per copy when the tree has uncommitted changes;
    the rendition records the one it was built from: the version is an input, set equal here."""
    path = rendition / "cookiecutter.json"
    context = json.loads(path.read_text())
    context["_slipway"]["commit"] = commit
    path.write_text(json.dumps(context, indent=2, ensure_ascii=False) + "\n")
    return rendition


def cookiecutter_config(base: Path) -> Path:
    config = base / "cookiecutter-config.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "cookiecutters_dir": str(base / "cookiecutters"),
                "replay_dir": str(base / "replay"),
            }
        )
    )
    return config


def cc_render(rendition: Path, out: Path, answers: dict[str, Any] | None) -> Path:
    """`cookiecutter <rendition> --no-input` with the answers as extra context."""
    return cc_render_url(str(rendition), None, out, answers)


def cc_render_url(
    template: str, checkout: str | None, out: Path, answers: dict[str, Any] | None
) -> Path:
    """`cookiecutter <template> [--checkout <checkout>] --no-input`, configured under `out`
    (replays in out/replay)."""
    out.mkdir(parents=True, exist_ok=True)
    return Path(
        cookiecutter(
            template,
            checkout=checkout,
            no_input=True,
            extra_context=answers,
            output_dir=str(out),
            config_file=str(cookiecutter_config(out)),
        )
    )


def tree(root: Path) -> dict[str, tuple[bytes, bool]]:
    """Every file outside .git: relative path -> (bytes, executable)."""
    return {
        path.relative_to(root).as_posix(): (path.read_bytes(), os.access(path, os.X_OK))
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(root).parts
    }


def assert_same_tree(copied: Path, cut: Path, except_answers: bool = True) -> None:
    left, right = tree(copied), tree(cut)
    answers = copier_config.settings()["_answers_file"]
    if except_answers:
        assert yaml.safe_load(left.pop(answers)[0]) == yaml.safe_load(right.pop(answers)[0])
    assert sorted(left) == sorted(right), (
        f"only copier: {sorted(left.keys() - right.keys())}, "
        f"only cookiecutter: {sorted(right.keys() - left.keys())}"
    )
    differ = [name for name in left if left[name] != right[name]]
    assert not differ, f"cookiecutter output differs from copier's in {differ}"


@pytest.mark.parametrize("answer_set", PARITY_SETS)
def test_cookiecutter_output_is_copier_output(
    answer_set: str,
    renders: RenderCache,
    rendition: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both with their tasks (ops files from slo.yaml, git init, first commit), the lockfile
    skipped on both sides (it needs the package index). The default answers go through
    cookiecutter's own defaults (no extra context at all)."""
    monkeypatch.setenv("SLIPWAY_SKIP_LOCK", "1")
    answers = example_answers(answer_set)
    copied = renders(answer_set)
    recording(rendition, project_answers(copied).get("_commit"))
    cut = cc_render(rendition, tmp_path / "cc", None if answer_set == "default" else answers)
    assert_same_tree(copied, cut, except_answers=False)
    assert (cut / "observability" / "prometheus" / "alerts.yml").is_file()

    def log(repo: Path) -> list[str]:
        return subprocess.run(
            ["git", "log", "--format=%s"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.splitlines()

    assert log(cut) == log(copied) and len(log(cut)) == 1


def copier_refusal(dst: Path, answers: dict[str, Any]) -> str:
    with pytest.raises(ValueError) as refused:
        render(dst, answers)
    return str(refused.value)


@pytest.mark.parametrize(
    "overrides",
    [
        {"package_name": "class"},
        {"owner_team": "@acme/ml/fraud", "ci_provider": "github"},
        {"quality_metric": "rmse", "model_task": "classification"},
        {"latency_p95_ms": "fast"},
    ],
    ids=["keyword", "github-subgroup", "choice", "type"],
)
def test_bad_answers_are_refused_with_copiers_message(
    overrides: dict[str, Any],
    rendition: Path,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    answers = example_answers("default", **overrides)
    expected = copier_refusal(tmp_path / "copier", answers)
    capfd.readouterr()
    with pytest.raises(FailedHookException):
        cc_render(rendition, tmp_path / "cc", answers)
    stderr = capfd.readouterr().err
    first_line = expected.splitlines()[0].strip()
    assert first_line in stderr, f"copier said {expected!r}; the hook said {stderr!r}"
    assert not (tmp_path / "cc" / "demo-ml-service").exists(), "cookiecutter left the project"


def test_cookiecutter_json_mirrors_copier_yml(rendition: Path) -> None:
    context = json.loads((rendition / "cookiecutter.json").read_text())
    asked = copier_config.asked()
    assert [k for k in context if not k.startswith("_")] == list(asked)
    for name, question in asked.items():
        default = question.get("default")
        choices = question.get("choices")
        if question.get("type") == "bool":  # a cookiecutter boolean variable
            assert context[name] is bool(default)
            continue
        if isinstance(choices, (dict, list)) and "{{" not in str(default):
            values = choices.values() if isinstance(choices, dict) else choices
            assert context[name][0] == str(default)
            assert sorted(context[name]) == sorted(map(str, values))
            assert context["__prompts__"][name]["__prompt__"] == question["help"]
        else:
            assert context["__prompts__"][name].startswith(question["help"])
    for name in copier_config.computed():
        assert f"_{name}" in context or f"__{name}" in context


def small_template(root: Path) -> Path:
    """A template with what slipway's does not use yet: bool and int answers, a question asked
    only when another answer says so, a conditional directory and file, a path derived from a
    computed value, an include, a task."""
    files = {
        "copier.yml": """
_subdirectory: template
_envops: {undefined: jinja2.StrictUndefined, keep_trailing_newline: true}
_tasks:
  - command: ["{{ _copier_python }}", "{{ _copier_conf.src_path }}/hooks/task.py", "{{ name }}"]
name:
  type: str
  default: Demo App
  validator: "{% if name | length < 3 %}name must have 3 characters or more{% endif %}"
project_slug:
  type: str
  when: false
  default: "{{ name | lower | regex_replace(' ', '-') }}"
workers: {type: int, default: 2}
cron: {type: bool, default: false}
schedule:
  type: str
  default: "@daily"
  when: "{{ cron }}"
flavour:
  type: str
  default: b
  choices: {Alpha: a, Beta: b}
""",
        "template/{{_copier_conf.answers_file}}.jinja": "{{ _copier_answers|to_nice_yaml -}}\n",
        "template/README.md.jinja": (
            "# {{ name }} ({{ project_slug }}) workers={{ workers + 1 }} cron={{ cron }}\n"
            "{% include 'shared/note.txt' %}"
        ),
        "template/raw.txt": "{{ not rendered }}\n",
        "template/{% if cron %}cron{% endif %}/job.yaml.jinja": (
            "schedule {{ schedule }} for {{ name }}\n"
        ),
        "template/{% if not cron %}nocron.txt{% endif %}": "no schedule\n",
        "template/src/{{ project_slug | replace('-', '_') }}/__init__.py": "",
        "shared/note.txt": "note for {{ flavour }}\n",
        "hooks/task.py": (
            "import pathlib, sys\npathlib.Path('task-ran.txt').write_text(sys.argv[1] + '\\n')\n"
        ),
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize(
    "answers",
    [{}, {"cron": True, "workers": 5, "flavour": "a", "schedule": "@hourly"}],
    ids=["defaults", "cron"],
)
def test_rendition_of_a_small_template(answers: dict[str, Any], tmp_path: Path) -> None:
    from copier import run_copy

    src = small_template(tmp_path / "tpl")
    copied = tmp_path / "copier" / "demo-app"
    run_copy(str(src), str(copied), data=answers, defaults=True, unsafe=True, quiet=True)
    cut = cc_render(build(tmp_path / "rendition", src=src), tmp_path / "cc", answers or None)
    assert_same_tree(copied, cut, except_answers=False)
    assert (cut / "task-ran.txt").read_text() == "Demo App\n"
    assert (cut / "cron" / "job.yaml").is_file() == bool(answers)
    assert (cut / "raw.txt").read_text() == "{{ not rendered }}\n"


def test_adopt_takes_a_teams_own_cookiecutter_answers(clone: Path, tmp_path: Path) -> None:
    """A repo of a team's own cookiecutter template: `.cookiecutter.json` with the same answer
    names (and some of its own); adopt keeps copier.yml's, lists the rest, refuses bad ones."""
    from slipway.adopt import AdoptError, adopt

    repo = tmp_path / "repo"
    repo.mkdir()
    # The answers v0.3.0 asks (batch_scoring came with v0.4.0).
    answers = {k: v for k, v in example_answers("regression-gitlab").items() if k != "batch_scoring"}
    own = {
        **answers,
        "_template": "gh:acme/old-cookiecutter",
        "year": "2024",
    }
    (repo / ".cookiecutter.json").write_text(json.dumps(own))
    written, left_out = adopt(repo, ref="v0.3.0", src=str(clone))
    recorded = yaml.safe_load(written.read_text())
    assert recorded == {
        "_commit": "v0.3.0",
        "_src_path": str(clone),
        **answers,
    }
    assert left_out == ["year"]
    (repo / ".cookiecutter.json").write_text(json.dumps({**own, "package_name": "import"}))
    with pytest.raises(AdoptError, match='package_name "import" is a Python keyword'):
        adopt(repo, ref="v0.3.0", src=str(clone))
