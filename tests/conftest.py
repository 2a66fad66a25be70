"""Fixtures shared by the template's test suite; the helpers behind them are in tests/support/.

Renders are cached for the session, one per answer set of tests/answers/ (`renders`), and so is
the installed generated project of the slow tests (`generated_project`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.generated import GeneratedProject, make_generated_project
from tests.support.render import RenderCache
from tests.support.tools import Tools, install_tools
from tests.support.update import make_template_clone


@pytest.fixture(scope="session")
def renders(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RenderCache]:
    """`renders("default")`: the answer set's render (copy tasks run, lockfile skipped), made
    once per session. Read-only: copy it before changing anything."""
    cache = RenderCache(tmp_path_factory.mktemp("renders"))
    yield cache
    changed = cache.changed()
    assert not changed, f"tests modified shared renders (copy them first): {changed}"


@pytest.fixture(scope="session")
def generated_project(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[str], GeneratedProject]:
    """Factory: `generated_project("default")` renders (with tasks: lockfile, git), installs,
    trains, evaluates and promotes once per session and answer set; later calls reuse it.
    Tests must not change the registry of a shared project (copy it first if they must)."""
    cache: dict[str, GeneratedProject] = {}

    def make(name: str = "default") -> GeneratedProject:
        if name not in cache:
            cache[name] = make_generated_project(
                tmp_path_factory.mktemp(f"gen-{name}") / "repo", name
            )
        return cache[name]

    return make


@pytest.fixture(scope="session")
def tools() -> Tools:
    """The delivery checkers, in one venv of their own (cached per machine)."""
    return install_tools()


@pytest.fixture(scope="session")
def template_clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone of this repo with the working tree committed on top and the releases tagged
    (tests/support/update.py); shared by the update and fleet tests, never modified."""
    return make_template_clone(tmp_path_factory.mktemp("template") / "slipway")


def worker_group(item: pytest.Item, fixtures: tuple[str, ...] | list[str]) -> str | None:
    """Under `pytest -n N --dist loadgroup` (./dev test): the tests of one slow module (and
    one answer set, for a module parametrized by `answers`) run on one worker, so a module's
    tests share that worker's installed generated project, while the modules spread over the
    workers (each worker installs an answer set's project at most once). Everything else is
    distributed test by test (a template clone costs seconds: each worker makes its own)."""
    if "generated_project" not in fixtures:
        return None
    callspec = getattr(item, "callspec", None)
    answers = callspec.params.get("answers") if callspec else None
    module = item.nodeid.split("::")[0]
    return f"{module}[{answers}]" if answers else module


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests live in tests/slow/ (marked there), so a fast file never hides a slow test.
    Tests on the template clone (real `copier update` runs) are marked `update`: most of the
    fast tests' time, so `-m "not slow and not update"` is the quick loop."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "template_clone" in fixtures:
            item.add_marker(pytest.mark.update)
        group = worker_group(item, fixtures)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
    slow_dir = Path(__file__).parent / "slow"
    misplaced = [
        item.nodeid
        for item in items
        if item.get_closest_marker("slow") and slow_dir not in item.path.parents
    ]
    if misplaced:
        raise pytest.UsageError(f"slow tests outside tests/slow/: {misplaced}")
