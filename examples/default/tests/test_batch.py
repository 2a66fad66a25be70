"""Batch scoring (`batch-score`, local engine): chunking, refused and flagged rows kept with their
reason, provenance on every row, the SQL source and sink, the summary, drift report and push."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from demo_ml_service.batch.job import BatchModel, batch_model, run_local
from demo_ml_service.batch.rules import REFUSED, STATUSES
from demo_ml_service.batch.sinks import METADATA_KEY, ParquetTarget, SqlTarget, parse_sink
from demo_ml_service.cli import main
from demo_ml_service.config import Settings
from demo_ml_service.data.contract import ContractViolation, DataContract
from demo_ml_service.data.loaders import data_hash
from demo_ml_service.data.sources import parse_source
from demo_ml_service.slo import SLO, load_slo


@pytest.fixture(scope="module")
def model(trained_settings: Settings) -> Iterator[BatchModel]:
    with batch_model(trained_settings, "champion", None) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def contract(trained_settings: Settings) -> DataContract:
    return DataContract.load(trained_settings.contract_path)


@pytest.fixture(scope="module")
def slo(trained_settings: Settings) -> SLO:
    return load_slo(trained_settings.slo_path)


@pytest.fixture(scope="module")
def inputs(trained_settings: Settings, contract: DataContract) -> pd.DataFrame:
    """The golden set's features and a key column the output must carry through."""
    frame = pd.read_csv(trained_settings.golden_path).drop(columns=[contract.target])
    frame.insert(0, "customer_id", [f"c{i:05d}" for i in range(len(frame))])
    return frame


def score(
    frame: pd.DataFrame,
    tmp_path: Path,
    model: BatchModel,
    contract: DataContract,
    slo: SLO,
    chunk_rows: int = 50_000,
    name: str = "out",
) -> tuple[pd.DataFrame, Path, int]:
    source = tmp_path / f"{name}-in.parquet"
    frame.to_parquet(source, index=False)
    out = tmp_path / name
    result = run_local(
        parse_source(str(source)), ParquetTarget(str(out)), model, contract, slo, chunk_rows
    )
    return pd.read_parquet(out), source, result.chunks


def test_chunk_size_changes_nothing_but_the_number_of_chunks(
    inputs: pd.DataFrame, tmp_path: Path, model: BatchModel, contract: DataContract, slo: SLO
) -> None:
    whole, _, one = score(inputs, tmp_path, model, contract, slo, name="whole")
    small, _, many = score(inputs, tmp_path, model, contract, slo, chunk_rows=7, name="small")
    assert one == 1
    assert many == -(-len(inputs) // 7)
    assert whole["row"].tolist() == list(range(len(inputs)))
    pd.testing.assert_frame_equal(whole, small, check_exact=False, rtol=1e-12)
    assert whole["customer_id"].tolist() == inputs["customer_id"].tolist()
    assert set(whole["status"]) <= set(STATUSES) - {REFUSED}


def test_bad_rows_are_written_with_their_reason_never_dropped(
    inputs: pd.DataFrame, tmp_path: Path, model: BatchModel, contract: DataContract, slo: SLO
) -> None:
    bounded = next(f for f in contract.features if f.max is not None)
    required = next(f for f in contract.features if not f.nullable)
    frame = inputs.head(6).copy().astype({bounded.name: object, required.name: object})
    assert bounded.max is not None
    frame.loc[1, bounded.name] = bounded.max * 10 + 1
    frame.loc[2, required.name] = None
    frame.loc[3, bounded.name] = "not a number"
    out, _, _ = score(frame.astype({bounded.name: str}), tmp_path, model, contract, slo)
    assert len(out) == 6
    assert out.loc[[1, 2, 3], "status"].tolist() == [REFUSED] * 3
    reasons = out["reason"].tolist()
    assert reasons[1].startswith(f"{bounded.name}: ") and "above the contract maximum" in reasons[1]
    assert reasons[2] == f"{required.name}: null in a non-nullable column"
    assert reasons[3] == f"{bounded.name}: not a number"
    assert reasons[0] == "" or "confidence" in reasons[0]
    assert out.loc[[0, 4, 5], "status"].isin(["predicted", "abstain"]).all()

    flagging = slo.model_copy(
        update={"guardrails": slo.guardrails.model_copy(update={"out_of_range": "flag"})}
    )
    flagged, _, _ = score(frame.head(2), tmp_path, model, contract, flagging, name="flag")
    assert flagged.loc[1, "status"] in {"flagged", "abstain"}
    assert "above the contract maximum" in str(flagged["reason"].tolist()[1])


def test_missing_feature_columns_refuse_the_job_before_anything_is_written(
    inputs: pd.DataFrame, tmp_path: Path, model: BatchModel, contract: DataContract, slo: SLO
) -> None:
    with pytest.raises(ContractViolation, match="missing columns"):
        score(inputs.drop(columns=[contract.feature_names[0]]), tmp_path, model, contract, slo)
    assert not (tmp_path / "out").exists()


def test_every_row_and_the_file_name_the_model_version_run_and_input(
    inputs: pd.DataFrame, tmp_path: Path, model: BatchModel, contract: DataContract, slo: SLO
) -> None:
    out, source, _ = score(inputs, tmp_path, model, contract, slo)
    digest = f"sha256:{data_hash(source)}"
    assert set(out["model_version"]) == {model.loaded.version}
    assert set(out["run_id"]) == {model.run_id} and model.run_id
    assert set(out["input_digest"]) == {digest}
    metadata = pq.read_metadata(tmp_path / "out" / "part-00000.parquet").metadata
    provenance = json.loads(metadata[METADATA_KEY.encode()])
    assert provenance["input_digest"] == digest
    assert provenance["model_version"] == model.loaded.version
    summary = json.loads(metadata[f"{METADATA_KEY}.summary".encode()])
    assert summary["rows"] == len(inputs)
    assert sum(summary[name] for name in STATUSES) == len(inputs)


def test_a_sql_query_scores_into_a_database_table(
    inputs: pd.DataFrame,
    tmp_path: Path,
    model: BatchModel,
    contract: DataContract,
    slo: SLO,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Two databases: SQLite locks a file being read (the streamed query) against writers.
    database, scores = tmp_path / "warehouse.db", tmp_path / "scores.db"
    with sqlite3.connect(database) as connection:
        inputs.to_sql("customers", connection, index=False)
    monkeypatch.setenv("WAREHOUSE_URL", f"sqlite:///{database}")
    monkeypatch.setenv("SCORES_URL", f"sqlite:///{scores}")
    source = parse_source("sql:WAREHOUSE_URL:select * from customers order by customer_id")
    target = parse_sink("sql:SCORES_URL:scores")
    assert isinstance(target, SqlTarget)
    result = run_local(source, target, model, contract, slo, chunk_rows=50)
    assert result.chunks == -(-len(inputs) // 50)
    with sqlite3.connect(scores) as connection:
        table = pd.read_sql_query("select * from scores order by row", connection)
    assert len(table) == len(inputs)
    assert table["customer_id"].tolist() == sorted(inputs["customer_id"])
    assert set(table["model_version"]) == {model.loaded.version}
    assert table["input_digest"].str.startswith("sha256-query:").all()


@pytest.mark.parametrize("bad", ["sql:", "sql:VAR:", "sql:VAR:drop table x;", ""])
def test_a_bad_sink_is_refused_with_its_syntax(bad: str) -> None:
    with pytest.raises(ValueError, match=r"sql:<ENV_VAR>:<table>|empty"):
        parse_sink(bad)


class _Pushgateway(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, bytes]]] = []

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.received.append((self.path, body))
        self.send_response(200)
        self.end_headers()

    do_POST = do_PUT

    def log_message(self, *args: object) -> None:
        pass


def test_the_command_writes_a_summary_a_drift_report_and_pushes_its_metrics(
    trained_settings: Settings,
    inputs: pd.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained_settings.tracking_uri)
    monkeypatch.setenv("SERVICE_ARTIFACT_ROOT", str(trained_settings.artifact_root))
    source = tmp_path / "in.csv"
    inputs.to_csv(source, index=False)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pushgateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        code = main(
            [
                "batch-score",
                "--input",
                str(source),
                "--output",
                str(tmp_path / "scores"),
                "--chunk-rows",
                "40",
                "--report-dir",
                str(tmp_path / "report"),
                "--pushgateway",
                f"http://127.0.0.1:{server.server_port}",
            ]
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert code == 0
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    outcomes = summary["scored"] + summary["abstain"] + summary["refused"]
    assert summary["rows"] == len(inputs) == outcomes
    assert summary["chunks"] == -(-len(inputs) // 40)
    assert summary["cost_usd"] > 0 and summary["within_cost_ceiling"] in {True, False}
    assert summary["drift"]["rows"] == len(inputs) - summary["refused"]
    assert (tmp_path / "report" / "drift.md").exists()
    path, body = _Pushgateway.received[-1]
    assert path.startswith("/metrics/job/batch-score")
    assert b"slipway_batch_rows" in body and b"slipway_batch_duration_seconds" in body
    assert "rows" in capsys.readouterr().err  # the progress line


def test_a_bad_argument_is_one_line_and_exit_2(
    trained_settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained_settings.tracking_uri)
    args = ["batch-score", "--input", str(trained_settings.golden_path), "--output"]
    assert main([*args, "sql:NOPE"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: a table sink is")
    assert main([*args, str(tmp_path / "o"), "--chunk-rows", "0"]) == 2
    assert "--chunk-rows must be at least 1" in capsys.readouterr().err


def test_the_drift_sample_is_uniform_and_bounded() -> None:
    from demo_ml_service.batch.job import DriftSample

    sample = DriftSample(1, capacity=1_000)
    for start in range(0, 100_000, 10_000):
        sample.add(np.arange(start, start + 10_000, dtype=float).reshape(-1, 1))
    assert sample.rows.shape == (1_000, 1)
    assert 40_000 < float(sample.rows.mean()) < 60_000  # not just the first or last chunk
