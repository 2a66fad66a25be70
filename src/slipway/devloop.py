"""Time the developer loop of a fresh render: `copier copy` + `make setup` + `make check`.

    python -m slipway devloop [--answers default] [--runs 3] [--target check] [--json FILE]

Each run renders tests/answers/<answers>.yml into a new folder with every copy task (lockfile,
ops files, first commit), then runs the generated repo's `make setup` and `make <target>` there,
as a team's first minutes in a new repo. It prints wall and CPU time per step, the load average
before each run (the machine may be shared: compare runs made at the same load) and the median
total. The package cache is whatever uv's cache holds: run once to warm it, then measure.
Nothing is asserted: goal 6 of docs/performance.md quotes these figures with the machine and date.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from slipway.copier_config import ROOT

COMMAND = "python -m slipway devloop"
COPY = [sys.executable, "-m", "copier", "copy", "--quiet", "--trust", "--defaults"]


def timed(command: list[str], cwd: Path, log: Path) -> dict[str, float]:
    """Run command to completion; its wall time and the CPU time of it and its children."""
    started = time.perf_counter()
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(command)}\n".encode())
        out.flush()
        process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"slipway: `{' '.join(command)}` failed ({process.returncode}): see {log}")
    return {"wall_s": round(wall, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2)}


def one_run(answers: Path, target: str, folder: Path) -> dict[str, Any]:
    project = folder / "repo"
    log = folder / "devloop.log"
    load = os.getloadavg()
    steps = {
        "copy": timed([*COPY, "--data-file", str(answers), str(ROOT), str(project)], folder, log),
        "setup": timed(["make", "setup"], project, log),
        target: timed(["make", target], project, log),
    }
    return {
        "load_average_before": [round(value, 2) for value in load],
        "steps": steps,
        "total_wall_s": round(sum(step["wall_s"] for step in steps.values()), 2),
        "total_cpu_s": round(sum(step["cpu_s"] for step in steps.values()), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("--answers", default="default", help="an answer set of tests/answers/")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--target", default="check", help="the make target timed after setup")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the rendered repos")
    args = parser.parse_args(argv)
    answers = ROOT / "tests" / "answers" / f"{args.answers}.yml"
    if not answers.is_file():
        parser.error(f"no answer set {answers}")
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if shutil.which("make") is None:
        parser.error("make is not installed")
    base = Path(tempfile.mkdtemp(prefix="slipway-devloop-"))
    cores = len(os.sched_getaffinity(0))
    bytecode = "not written" if os.environ.get("PYTHONDONTWRITEBYTECODE") else "written"
    print(f"devloop: {args.answers} answers, {cores} cores, bytecode {bytecode}; logs in {base}")
    runs: list[dict[str, Any]] = []
    try:
        for index in range(args.runs):
            folder = base / f"run-{index + 1}"
            folder.mkdir()
            result = one_run(answers, args.target, folder)
            runs.append(result)
            steps = "  ".join(
                f"{name} {step['wall_s']:.1f}s (cpu {step['cpu_s']:.0f}s)"
                for name, step in result["steps"].items()
            )
            print(
                f"run {index + 1}: total {result['total_wall_s']:.1f}s  {steps}"
                f"  load before {result['load_average_before']}",
                flush=True,
            )
            if not args.keep:
                shutil.rmtree(folder / "repo", ignore_errors=True)
    finally:
        if not args.keep and not runs:
            shutil.rmtree(base, ignore_errors=True)
    totals = [float(run["total_wall_s"]) for run in runs]
    median = statistics.median(totals)
    print(f"median total {median:.1f}s over {len(runs)} runs ({min(totals)}-{max(totals)}s)")
    if args.json:
        report = {
            "answers": args.answers,
            "target": args.target,
            "cores": cores,
            "python_bytecode": bytecode,
            "runs": runs,
            "median_total_wall_s": median,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
