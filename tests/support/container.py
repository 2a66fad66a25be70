"""Image builders for the template's tests: a Docker engine when one answers, otherwise the
daemonless buildah/podman path set up by .ci/container-setup.sh (docs/image.md)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SETUP_SCRIPT = REPO / ".ci" / "container-setup.sh"


class NoBuilder(Exception):
    """No image builder is available and none could be installed (the message says why)."""


def run(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    env: dict[str, str] | None = None,
    timeout: float = 600,
    check: bool = True,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(c) for c in cmd],
        check=False,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(map(str, cmd))} exited {result.returncode}\n"
            f"--- stdout (tail)\n{result.stdout[-4000:]}\n--- stderr (tail)\n{result.stderr[-4000:]}"
        )
    return result


@dataclass
class Builder:
    """One container engine: `kind` is "docker" or "podman" (podman builds through buildah)."""

    kind: str
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    @property
    def cli(self) -> str:
        return self.kind

    def _run(self, *args: str | os.PathLike[str], timeout: float = 600, check: bool = True):
        return run([self.cli, *args], env=self.env, timeout=timeout, check=check)

    def build(
        self,
        context: Path,
        tag: str,
        *,
        target: str | None = None,
        secrets: dict[str, Path] | None = None,
        build_args: dict[str, str] | None = None,
        no_cache: bool = False,
        timeout: float = 1200,
    ) -> float:
        """Build `context` into `tag`; returns the wall-clock seconds."""
        args: list[str] = ["build", "-t", tag]
        if self.kind == "podman":
            # The OCI format silently drops HEALTHCHECK; the store has no registry to pull from.
            args += ["--format", "docker", "--pull=never", "--layers"]
        else:
            # RUN steps reach the package index even when the engine's bridge has no NAT
            # (dockerd --iptables=false, as on the development machines).
            args += ["--network", "host"]
        for sid, src in (secrets or {}).items():
            args += ["--secret", f"id={sid},src={src}"]
        for key, value in (build_args or {}).items():
            args += ["--build-arg", f"{key}={value}"]
        if target:
            args += ["--target", target]
        if no_cache:
            args.append("--no-cache")
        start = time.monotonic()
        self._run(*args, str(context), timeout=timeout)
        return time.monotonic() - start

    def inspect(self, image: str) -> dict:
        return json.loads(self._run("image", "inspect", image).stdout)[0]

    def layers(self, image: str) -> list[str]:
        return list(self.inspect(image)["RootFS"]["Layers"])

    def size(self, image: str) -> int:
        return int(self.inspect(image)["Size"])

    def remove_image(self, *images: str) -> None:
        for image in images:
            self._run("rmi", "-f", image, check=False, timeout=120)

    def run_detached(self, image: str, name: str, *options: str) -> None:
        self._run("run", "-d", "--name", name, *options, image)

    def exec(self, name: str, *cmd: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self._run("exec", name, *cmd, timeout=timeout, check=False)

    def healthcheck(self, name: str) -> subprocess.CompletedProcess[str]:
        """Run the image's own HEALTHCHECK command once, as the engine would."""
        if self.kind == "podman":
            return self._run("healthcheck", "run", name, check=False, timeout=60)
        # Docker has no "run it now": execute the configured test command in the container.
        test = self.inspect_container(name)["Config"]["Healthcheck"]["Test"]
        cmd = test[1:] if test[0] == "CMD" else ["/bin/sh", "-c", test[1]]
        return self.exec(name, *cmd)

    def inspect_container(self, name: str) -> dict:
        return json.loads(self._run("container", "inspect", name).stdout)[0]

    def logs(self, name: str) -> str:
        result = self._run("logs", name, check=False, timeout=60)
        return "\n".join(
            line
            for line in (result.stdout + result.stderr).splitlines()
            if "systemd" not in line  # podman's noise when no systemd runs healthcheck timers
        )

    def remove_container(self, name: str) -> None:
        self._run("rm", "-f", "-t", "2", name, check=False, timeout=120)

    def prune(self) -> None:
        # Only older dangling layers: a build running in parallel (pytest -n) keeps its own.
        self._run("image", "prune", "-f", "--filter", "until=15m", check=False, timeout=300)

    def save(self, image: str, dest: Path) -> None:
        fmt = ["--format", "docker-archive"] if self.kind == "podman" else []
        self._run("save", *fmt, "-o", str(dest), image, timeout=600)


def _docker_engine() -> Builder | None:
    if not shutil.which("docker"):
        return None
    env = dict(os.environ, DOCKER_BUILDKIT="1")  # RUN --mount needs BuildKit
    try:
        ok = run(["docker", "info"], env=env, timeout=20, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        ok = False
    return Builder("docker", env) if ok else None


def _podman(python_versions: Sequence[str]) -> Builder:
    if not SETUP_SCRIPT.exists():
        raise NoBuilder(f"{SETUP_SCRIPT} is missing")
    can_install = os.geteuid() == 0 and shutil.which("apt-get") is not None
    have_tools = all(shutil.which(t) for t in ("buildah", "podman", "runc"))
    if not have_tools and not can_install:
        raise NoBuilder(
            "no Docker engine answers `docker info`, buildah/podman/runc are not installed, and "
            "they cannot be installed here (needs root and apt-get)"
        )
    result = run(["bash", str(SETUP_SCRIPT), *python_versions], timeout=900, check=False)
    if result.returncode != 0:
        if not all(shutil.which(t) for t in ("buildah", "podman", "runc")):
            raise NoBuilder(f"installing buildah/podman/runc failed:\n{result.stderr[-3000:]}")
        # The tools are there: a failing setup (base image, config) is a real failure.
        raise RuntimeError(f".ci/container-setup.sh failed:\n{result.stderr[-3000:]}")
    env = dict(os.environ)
    for line in result.stdout.splitlines():
        if line.startswith("export ") and "=" in line:
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value
    return Builder("podman", env)


def find_builder(python_versions: Sequence[str] = ("3.12",)) -> Builder:
    """A running Docker engine, else podman/buildah (installed and configured on demand, with a
    local stand-in `python:<ver>-slim` when no registry is reachable). Raises NoBuilder."""
    if os.environ.get("SLIPWAY_IMAGE_BUILDER") != "podman":
        docker = _docker_engine()
        if docker is not None:
            return docker
    return _podman(python_versions)
