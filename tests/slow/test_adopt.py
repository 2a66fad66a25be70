"""The adoption path: a repo born from cookiecutter at the previous release (slipway's rendition,
published onto the `cookiecutter` branch by `python -m slipway cookiecutter publish`, fetched by
cookiecutter from git) gets its .copier-answers.yml from the cookiecutter replay with
`python -m slipway adopt`; the team edits it; `copier update` to the working tree keeps the
edits, ends where a Copier-born repo with the same edits ends, and the repo's tests pass."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from slipway.adopt import adopt
from slipway.conflicts import conflicted_files
from slipway.publish import publish
from tests.support.commands import run
from tests.support.generated import GeneratedProject
from tests.support.render import example_answers
from tests.support.update import (
    commit_all,
    copier_copy,
    copier_update,
    diff_r,
    git,
    make_template_clone,
    next_release,
    previous_release,
)
from tests.test_cookiecutter import cc_render_url

pytestmark = pytest.mark.update

GENERATED_TESTS = [
    "tests/test_ownership.py",
    "tests/test_architecture.py",
    "tests/test_contract.py",
    "tests/test_no_update_conflicts.py",
]
TEAM_TARGET = "\nteam-hello:  ## added by the team\n\t@echo hello from the team\n"
README_NOTE = "\nOur team's note, kept across updates.\n"


def team_edits(repo: Path) -> None:
    with (repo / "team.mk").open("a") as handle:
        handle.write(TEAM_TARGET)
    with (repo / "README.md").open("a") as handle:
        handle.write(README_NOTE)
    commit_all(repo, "Team edits")


@pytest.fixture
def installed(generated_project: Callable[[str], GeneratedProject]) -> GeneratedProject:
    """The session's installed default project (shared with the other slow tests)."""
    return generated_project("default")


def test_cookiecutter_born_repo_is_adopted_and_updated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, installed: GeneratedProject
) -> None:
    monkeypatch.setenv("SLIPWAY_SKIP_LOCK", "1")
    previous, target = previous_release(), next_release()
    clone = make_template_clone(tmp_path / "slipway")
    publish(clone, previous, "cookiecutter", src_path=str(clone))

    out = tmp_path / "cc"
    repo = cc_render_url(f"git+file://{clone}", "cookiecutter", out, None)
    replays = list((out / "replay").glob("*.json"))
    assert len(replays) == 1, replays
    # A cookiecutter-born repo of an older kind has no Copier answers: adopt from the replay.
    git(repo, "rm", "--quiet", ".copier-answers.yml")
    commit_all(repo, "No copier answers yet")
    written, left_out = adopt(repo, ref=previous, src=str(clone), answers_path=replays[0])
    assert left_out == [], left_out
    recorded = yaml.safe_load(written.read_text())
    assert recorded["_commit"] == previous and recorded["_src_path"] == str(clone)
    # The default answers, as far as the previous release asks them (its replay lists them).
    asked = json.loads(replays[0].read_text())["cookiecutter"]
    expected = {k: v for k, v in example_answers().items() if k in asked}
    assert {k: v for k, v in recorded.items() if not k.startswith("_")} == expected
    commit_all(repo, "Adopt copier")
    team_edits(repo)

    copier_update(repo, vcs_ref=target, skip_tasks=False)
    assert not conflicted_files(repo), conflicted_files(repo)
    assert yaml.safe_load((repo / ".copier-answers.yml").read_text())["_commit"] == target
    assert (repo / "team.mk").read_text().endswith(TEAM_TARGET)
    assert README_NOTE in (repo / "README.md").read_text()

    # The same history for a Copier-born repo ends in the same files.
    born = tmp_path / "copier" / "repo"
    born.parent.mkdir()
    copier_copy(clone, born, previous, SLIPWAY_SKIP_LOCK="1")
    team_edits(born)
    copier_update(born, vcs_ref=target, skip_tasks=False)
    assert diff_r(born, repo) == ""

    # The adopted, updated repo passes its lint and the tests of what adoption touched (the
    # answers file, ownership, catalog entry, layout), in the environment of the session's
    # installed default project (the same dependencies, this repo's code first). Its files equal
    # the Copier-born repo's (above), whose whole suite the slow update tests run.
    same_deps = (installed.path / "pyproject.toml").read_bytes() == (
        repo / "pyproject.toml"
    ).read_bytes()
    assert same_deps
    bin_dir = installed.path / ".venv" / "bin"
    run([str(bin_dir / "ruff"), "check", "."], repo)
    run(
        [
            str(bin_dir / "python"),
            "-m",
            "pytest",
            "-x",
            "-q",
            "-p",
            "no:cacheprovider",
            *GENERATED_TESTS,
        ],
        repo,
        timeout=1200,
        PYTHONPATH=str(repo / "src"),
    )
