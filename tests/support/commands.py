"""Running commands from tests: a clean environment, failures that say why, tool venvs."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def tool_env(**extra: str) -> dict[str, str]:
    """Environment for uv/make in generated projects: never download a Python."""
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "PYTHONDONTWRITEBYTECODE": "1", **extra}
    env.pop("VIRTUAL_ENV", None)
    return env


def run(
    args: list[str], cwd: Path, timeout: float = 900, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure, raise with its output so the test report says why."""
    result = subprocess.run(
        args, cwd=cwd, env=tool_env(**extra_env), capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {result.returncode} in {cwd}\n"
            f"--- stdout ---\n{result.stdout[-6000:]}\n--- stderr ---\n{result.stderr[-6000:]}"
        )
    return result


def tool_venv(name: str, packages: list[str]) -> Path:
    """A venv of its own holding `packages` (installed with uv from PyPI, cached per machine and
    package set); returns its bin/ folder. Keeps checkers out of the test environment."""
    packages = sorted(packages)
    key = hashlib.sha256(" ".join(packages).encode()).hexdigest()[:12]
    venv = Path(tempfile.gettempdir()) / f"slipway-{name}-{key}"
    # Parallel test workers (and parallel runs on one machine) build it once: the first one
    # holds the lock, the others wait for it and find it complete.
    with open(f"{venv}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / ".complete").exists():
            _install_venv(venv, packages)
    return venv / "bin"


def _install_venv(venv: Path, packages: list[str]) -> None:
    uv = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    assert uv, "uv (in the test group) installs the checkers"
    env = tool_env()
    subprocess.run(
        [uv, "venv", "-q", "--allow-existing", "-p", sys.executable, str(venv)], check=True, env=env
    )
    subprocess.run(
        [uv, "pip", "install", "-q", "-p", str(venv / "bin" / "python"), *packages],
        check=True,
        env=env,
    )
    (venv / ".complete").touch()
