"""Slow: a fraud team brings its own data and model, without editing a platform-owned file.

Render; a synthetic transactions table (numbers, categories, missing values) in a real PostgreSQL
(Debian's package, started here on 127.0.0.1 with its own data directory) and a Parquet golden
set; `contract infer`; `ingest` from both; a tree ensemble, then LightGBM, trained and gated;
served: /predict takes the category strings, an unknown category gets its 422; a worse model fails
the gate against the champion; a CI-like run with a fresh registry still compares with the
baseline recorded in git (data/baseline.json).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.commands import run, tool_env
from tests.support.generated import GeneratedProject
from tests.support.render import example_answers, render
from tests.support.servers import free_port, http, stop, wait_for

PG_BIN = Path("/usr/lib/postgresql")

SYNTHETIC = """
import sys
import numpy as np
import pandas as pd
import sqlalchemy

def frame(rows, seed):
    rng = np.random.default_rng(seed)
    f = pd.DataFrame({
        "amount": rng.uniform(1, 5000, rows).round(2),
        "country": rng.choice(["FR", "DE", "US", "GB"], rows),
        "channel": rng.choice(["web", "app", "pos"], rows),
        "account_age_days": rng.integers(0, 3650, rows),
    })
    f["is_fraud"] = (((f.country == "US") & (f.channel == "app")) | (f.amount > 4200)).astype(int)
    f.loc[rng.random(rows) < 0.05, "amount"] = None  # missing values in a numeric feature
    f.loc[rng.random(rows) < 0.05, "channel"] = None  # and in a categorical one
    return f

engine = sqlalchemy.create_engine(sys.argv[1])
with engine.begin() as connection:
    frame(1500, 1).to_sql("transactions", connection, index=False, if_exists="replace")
engine.dispose()
frame(500, 2).to_parquet(sys.argv[2], index=False)
"""

FOREST = """
from typing import Any
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline
from .data.contract import DataContract
from .data.features import preprocessing

PARAMS: dict[str, Any] = {"n_estimators": 60}

def build_pipeline(params: dict[str, Any] | None = None, contract: DataContract | None = None) -> Pipeline:
    chosen = {**PARAMS, **(params or {})}
    return Pipeline([("prepare", preprocessing(contract, scale=False)),
                     ("model", RandomForestClassifier(n_estimators=chosen["n_estimators"], random_state=0))])
"""

BOOSTING = """
from typing import Any
from lightgbm import LGBMClassifier
from sklearn.pipeline import Pipeline
from .data.contract import DataContract
from .data.features import preprocessing

PARAMS: dict[str, Any] = {"n_estimators": 80}

def build_pipeline(params: dict[str, Any] | None = None, contract: DataContract | None = None) -> Pipeline:
    chosen = {**PARAMS, **(params or {})}
    return Pipeline([("prepare", preprocessing(contract, scale=False)),
                     ("model", LGBMClassifier(n_estimators=chosen["n_estimators"], verbose=-1, random_state=0))])
"""

# A worse model: one split on one feature.
STUMP = """
from typing import Any
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier
from .data.contract import DataContract

PARAMS: dict[str, Any] = {}

def build_pipeline(params: dict[str, Any] | None = None, contract: DataContract | None = None) -> Pipeline:
    only_age = ColumnTransformer([("age", SimpleImputer(), [3])])
    return Pipeline([("prepare", only_age), ("model", DecisionTreeClassifier(max_depth=1))])
"""


def _pg_bin() -> Path:
    versions = sorted(PG_BIN.glob("*/bin/initdb"))
    if not versions:
        pytest.skip("PostgreSQL is not installed (Debian package `postgresql`; ./dev test adds it)")
    return versions[-1].parent


@pytest.fixture
def postgres() -> Iterator[str]:
    """A PostgreSQL server of this test only: own data directory, 127.0.0.1, a free port;
    as an unprivileged user when the test runs as root (postgres refuses root)."""
    bindir = _pg_bin()
    root = Path(tempfile.mkdtemp(prefix="slipway-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        root.chmod(0o755)
        shutil.chown(root, "nobody")
        prefix = ["runuser", "-u", "nobody", "--"]
    data, port = root / "data", free_port()
    subprocess.run(
        [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"],
        check=True,
        capture_output=True,
    )
    options = f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off"
    subprocess.run(
        [
            *prefix,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(root / "log"),
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def test_a_fraud_team_brings_its_own_database_and_model(
    postgres: str, tmp_path: Path, generated_project: Callable[[str], GeneratedProject]
) -> None:
    # The shared default project's lockfile (same answers, same pyproject) and warm uv cache:
    # this repo installs in seconds instead of resolving again.
    shared = generated_project("default")
    started = time.perf_counter()
    answers = example_answers("default")
    project = render(tmp_path / "fraud", answers)
    shutil.copy(shared.path / "uv.lock", project / "uv.lock")
    package = str(answers["package_name"])
    run(["make", "setup"], project, timeout=1200, UV_FROZEN="1")
    print(f"render + install: {time.perf_counter() - started:.0f}s")
    python = str(project / ".venv" / "bin" / "python")
    env = {"FRAUD_DB_URL": postgres}

    def cli(*steps: list[str], **extra: str) -> list[tuple[int, str]]:
        """The package's commands (its cli.main, the console script's entry point), several in
        one process so MLflow is imported once: [(exit code, stdout)] per step."""
        driver = (
            "import contextlib, io, json, os, sys\n"
            f"from {package} import cli\n"
            "out = []\n"
            "for step in json.loads(sys.argv[1]):\n"
            "    os.environ.update(step.get('env', {}))\n"
            "    buffer = io.StringIO()\n"
            "    with contextlib.redirect_stdout(buffer):\n"
            "        code = cli.main(step['args'])\n"
            "    out.append([code, buffer.getvalue()])\n"
            "print(json.dumps(out))\n"
        )
        plan = [s if isinstance(s, dict) else {"args": s} for s in steps]
        result = run([python, "-c", driver, json.dumps(plan)], project, timeout=900, **env, **extra)
        return [(code, text) for code, text in json.loads(result.stdout.splitlines()[-1])]

    def passed(results: list[tuple[int, str]]) -> list[str]:
        assert all(code == 0 for code, _ in results), results
        return [text for _, text in results]

    # The team's data: a table in its database, a Parquet golden set.
    golden = project / "data" / "golden.parquet"
    run([python, "-c", SYNTHETIC, postgres, str(golden)], project)

    # Bootstrap the contract from its own data, then name the classes.
    passed(
        cli(
            [
                "contract",
                "infer",
                str(golden),
                "--target",
                "is_fraud",
                "--out",
                "data/contract.yaml",
            ]
        )
    )
    contract = yaml.safe_load((project / "data" / "contract.yaml").read_text())
    contract["classes"] = {0: "legit", 1: "fraud"}
    (project / "data" / "contract.yaml").write_text(yaml.safe_dump(contract, sort_keys=False))
    by_name = {f["name"]: f for f in contract["features"]}
    assert by_name["country"]["dtype"] == "category" and by_name["amount"]["nullable"]
    assert by_name["country"]["allowed"] == ["DE", "FR", "GB", "US"]

    # Where the data comes from: team-owned, no credentials (the URL is in FRAUD_DB_URL).
    (project / "data" / "sources.yaml").write_text(
        "training:\n  url_env: FRAUD_DB_URL\n  query: SELECT * FROM transactions\n"
        "golden:\n  path: golden.parquet\n"
    )
    # model.py is team-owned: a tree ensemble first...
    model = project / "src" / package / "model.py"
    model.write_text(FOREST)
    ingested, _, gate, _ = passed(cli(["ingest"], ["train"], ["evaluate"], ["promote"]))
    assert "training: 1500 rows from sql:FRAUD_DB_URL" in ingested, ingested
    assert "golden: 500 rows from" in ingested
    assert "version 1" in gate and "eval gate passed" in gate, gate
    baseline = json.loads((project / "data" / "baseline.json").read_text())
    assert baseline["version"] == "1" and baseline["metrics"]["f1"] > 0.9

    # ...then LightGBM, gated against the tree ensemble and promoted.
    model.write_text(BOOSTING)
    _, gate, _, _ = passed(
        cli(
            ["train"],
            ["evaluate"],
            ["promote"],
            ["export", "--alias", "champion", "--out", "model"],
        )
    )
    assert "registry champion v1" in gate and "eval gate passed" in gate, gate
    print(f"data, contract, ingest, two models trained: {time.perf_counter() - started:.0f}s")

    # Served: category strings in, label names from the contract out.
    port = free_port()
    server = subprocess.Popen(
        [str(project / ".venv" / "bin" / package), "serve", "--port", str(port)],
        cwd=project,
        env=tool_env(OTEL_TRACES_EXPORTER="none", SERVICE_MODEL_DIR=str(project / "model")),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/readyz", timeout=120, process=server)
        record = {"amount": 80.0, "country": "US", "channel": "app", "account_age_days": 30}
        status, body = http("POST", f"{base}/predict", record)
        assert status == 200, body
        assert json.loads(body)["predictions"][0]["label_name"] == "fraud"
        status, body = http("POST", f"{base}/predict", {**record, "amount": None, "channel": None})
        assert status == 200, body
        status, body = http("POST", f"{base}/predict", {**record, "country": "BR"})
        assert status == 422 and "allowed categories" in body, body
        status, body = http("GET", f"{base}/version")
        snapshot = json.loads(body)["training_data"]
        assert snapshot["source"] == "sql:FRAUD_DB_URL" and snapshot["rows"] == 1500, body
        assert snapshot["query"] == "SELECT * FROM transactions"
    finally:
        stop(server)

    # A worse model fails the gate against the champion, and, in a CI-like run with a fresh
    # embedded registry, against the baseline recorded in git.
    model.write_text(STUMP)
    fresh = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'ci.db'}",
        "SERVICE_ARTIFACT_ROOT": str(tmp_path / "ci-artifacts"),
    }
    results = cli(["train"], ["evaluate"], {"args": ["train"], "env": fresh}, ["evaluate"])
    (_, _), (code, gate), (_, _), (ci_code, ci_gate) = results
    assert results[0][0] == 0 and results[2][0] == 0, results
    assert code == 1 and "FAIL  no_regression_vs_champion" in gate, gate
    assert ci_code == 1 and "baseline: data/baseline.json (champion v2" in ci_gate, ci_gate
    assert "FAIL  no_regression_vs_champion" in ci_gate
    print(f"fraud team end to end: {time.perf_counter() - started:.0f}s")
