"""examples/default/ is exactly what the template renders with tests/answers/default.yml: every
template change shows its effect on a real generated repo in review."""

from __future__ import annotations

import tomllib

from slipway import example

from tests.support.render import ROOT


def test_the_checked_in_example_is_a_fresh_render() -> None:
    found = example.check()
    assert not found, (
        f"examples/default is stale: run `{example.COMMAND}` and commit the result\n"
        + "\n".join(found[:30])
    )


def test_the_example_is_unversioned_and_has_no_lockfile_or_git() -> None:
    answers = (example.EXAMPLE / ".copier-answers.yml").read_text()
    assert "_commit:" not in answers and f"_src_path: {example.SRC_PATH}\n" in answers
    assert not (example.EXAMPLE / ".git").exists()
    assert not (example.EXAMPLE / "uv.lock").exists()


def test_the_example_is_neither_collected_nor_linted_here() -> None:
    """Its tests/ are the generated repo's own (run by tests/slow/test_generated.py)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
    assert "examples" in config["pytest"]["ini_options"]["norecursedirs"]
    assert "examples" in config["ruff"]["extend-exclude"]
