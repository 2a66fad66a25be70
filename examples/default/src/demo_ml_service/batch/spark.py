"""`batch-score --engine spark`: the same job on Spark, the model applied by a Spark UDF.

The UDF is `mlflow.pyfunc.spark_udf`.

The registered version's sklearn pyfunc answers labels only; the batch needs the class
probabilities (confidence, abstain) as the API does. So the exported version is wrapped in a
pyfunc defined here, `ScoresModel` (saved as "models from code": no pickle), whose `load_context`
loads the pipeline with the artefact loader's trusted-types check; `spark_udf` (env_manager
"local": the executors' own Python, which has this package) loads that model on the executors.

    read (Parquet / CSV / a metastore table) -> mapInPandas(rules.check) -> spark_udf ->
    mapInPandas(rules.finish) -> write (Parquet / a metastore table)

The row rules are batch/rules.py's, so both engines give a row the same outcome and scores.
Master: `--master`, else SPARK_MASTER, else what spark-submit set, else `local[*]`.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np

from ..artifact import load_pipeline
from ..data.contract import ContractViolation, DataContract
from ..data.sources import FileSource, Source
from ..slo import SLO
from .job import (
    DRIFT_SAMPLE_ROWS,
    BatchModel,
    BatchResult,
    input_digest,
    is_parquet,
    peak_rss_mib,
    rules_for,
)
from .rules import (
    CONFIDENCE,
    LABEL,
    ROW,
    STATUS,
    STATUSES,
    VALUE,
    Checked,
    RowRules,
)
from .sinks import ParquetTarget, Target

TABLE_PREFIX = "table:"
_SEP = "\x1f"  # between a row's reasons while they travel between the two mapInPandas steps
_ROW_BITS = 33  # monotonically_increasing_id: partition id << 33 | row within the partition
_CODE = """\
import mlflow.models

from {package}.batch.spark import ScoresModel

mlflow.models.set_model(ScoresModel())
"""


class ScoresModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
    """pyfunc: class probabilities (classifier) or predictions (regressor) of the exported
    pipeline, from the feature columns in contract order."""

    def load_context(self, context: Any) -> None:
        self.pipeline = load_pipeline(Path(context.artifacts["model"]))
        self.classification = hasattr(self.pipeline, "predict_proba")

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        features = np.ascontiguousarray(np.asarray(model_input, dtype=float))
        if self.classification:
            return np.asarray(self.pipeline.predict_proba(features), dtype=float)  # one row each
        return np.asarray(self.pipeline.predict(features), dtype=float)


def save_scores_model(model: BatchModel, dst: Path) -> Path:
    """The pyfunc ScoresModel over the exported folder, saved as models from code."""
    package = __name__.split(".")[0]
    code = dst.parent / "scores_model.py"
    code.write_text(_CODE.format(package=package), encoding="utf-8")
    mlflow.pyfunc.save_model(
        path=str(dst),
        python_model=str(code),
        artifacts={"model": str(model.folder)},
        pip_requirements=[],  # env_manager="local": the executors' environment is this one
    )
    return dst


def spark_session(master: str | None, app_name: str) -> Any:
    from pyspark.sql import SparkSession

    # The executors' Python is this one (it has this package and the model's dependencies).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    chosen = master or os.environ.get("SPARK_MASTER")
    # spark-submit (PYSPARK_GATEWAY_PORT) or PYSPARK_SUBMIT_ARGS may name the master already.
    if not chosen and not {"PYSPARK_GATEWAY_PORT", "PYSPARK_SUBMIT_ARGS"} & set(os.environ):
        chosen = "local[*]"
    if chosen:
        builder = builder.master(chosen)
    if chosen and chosen.startswith("local"):
        # One machine: no UI, and a handful of shuffle partitions rather than 200.
        builder = builder.config("spark.ui.enabled", "false").config(
            "spark.sql.shuffle.partitions", "4"
        )
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session


def _read(spark: Any, source: Source | str) -> Any:
    if isinstance(source, str):  # table:<name> (a metastore is configured)
        return spark.table(source.removeprefix(TABLE_PREFIX))
    if not isinstance(source, FileSource):
        raise ValueError(
            "the Spark engine reads Parquet, CSV or a metastore table (table:<name>); "
            "read a SQL query with the local engine"
        )
    location = str(source.path)
    if not is_parquet(source):
        return spark.read.csv(location, header=True, inferSchema=True)
    return spark.read.parquet(location)


def _output_schema(frame: Any, rules: RowRules) -> Any:
    from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

    types = {ROW: LongType(), LABEL: LongType(), CONFIDENCE: DoubleType(), VALUE: DoubleType()}
    fields = list(frame.schema.fields)
    fields += [
        StructField(name, types.get(name, StringType()), True) for name in rules.output_columns()
    ]
    return StructType(fields)


def run_spark(
    source: Source | str,
    target: Target | str,
    model: BatchModel,
    contract: DataContract,
    slo: SLO,
    master: str | None = None,
    digest: str | None = None,
) -> BatchResult:
    """Score `source` into `target` on Spark; same rows, outcomes and scores as run_local."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import (
        ArrayType,
        DoubleType,
        LongType,
        StringType,
        StructField,
        StructType,
    )

    started = time.monotonic()
    if not isinstance(target, str | ParquetTarget):
        raise ValueError(
            "the Spark engine writes a Parquet dataset or a metastore table (table:<name>); "
            "write a database table with the local engine"
        )
    if digest is None:
        digest = input_digest(source) if not isinstance(source, str) else f"table:{source}"
    provenance = model.provenance(digest)
    rules = rules_for(contract, slo, model.loaded)
    names = contract.feature_names
    spark = spark_session(master, f"{model.loaded.name}-batch-score")
    with tempfile.TemporaryDirectory(prefix="batch-spark-") as tmp:
        frame = _read(spark, source)
        missing = rules.missing_columns(frame.columns)
        clash = [c for c in rules.output_columns() if c in frame.columns]
        if missing or clash:
            problems = [f"missing columns: {', '.join(missing)}"] if missing else []
            if clash:
                problems.append(f"columns the output adds already exist: {', '.join(clash)}")
            raise ContractViolation(str(source), problems)
        input_columns = list(frame.columns)
        # Row numbers as the local engine counts them: the partition's offset + its position.
        tagged = frame.withColumn("__pid", F.spark_partition_id()).withColumn(
            "__mid", F.monotonically_increasing_id()
        )
        sizes = {r["__pid"]: r["count"] for r in tagged.groupBy("__pid").count().collect()}
        offsets, total = {}, 0
        for pid in sorted(sizes):
            offsets[pid], total = total, total + sizes[pid]
        mask = (1 << _ROW_BITS) - 1
        features = [f"__f{i}" for i in range(len(names))]
        checked_schema = StructType(
            [
                *frame.schema.fields,
                StructField("__row", LongType(), True),
                StructField("__status", StringType(), True),
                StructField("__reasons", StringType(), True),
                *(StructField(name, DoubleType(), True) for name in features),
            ]
        )

        def check(batches: Any) -> Any:
            for pdf in batches:
                checked = rules.check(pdf[input_columns])
                out = pdf[input_columns].copy()
                out["__row"] = [
                    offsets[int(p)] + (int(m) & mask)
                    for p, m in zip(pdf["__pid"], pdf["__mid"], strict=True)
                ]
                out["__status"] = checked.status.astype(str)
                out["__reasons"] = [_SEP.join(r) for r in checked.reasons]
                for index, name in enumerate(features):
                    out[name] = checked.features[:, index]
                yield out

        checked_frame = tagged.mapInPandas(check, checked_schema)
        scores_model = save_scores_model(model, Path(tmp) / "scores-model")
        result_type = ArrayType(DoubleType()) if rules.classification else DoubleType()
        udf = mlflow.pyfunc.spark_udf(
            spark, str(scores_model), result_type=result_type, env_manager="local"
        )
        scored = checked_frame.withColumn("__raw", udf(*[F.col(f) for f in features]))

        def finish(batches: Any) -> Any:
            for pdf in batches:
                status = pdf["__status"].to_numpy(dtype=object)
                reasons = [r.split(_SEP) if r else [] for r in pdf["__reasons"]]
                checked = Checked(np.empty((len(pdf), 0)), status, reasons)
                ok = checked.scoreable
                raw = pdf["__raw"][ok]
                values = (
                    np.stack(raw.to_list())
                    if rules.classification and len(raw)
                    else raw.to_numpy(dtype=float)
                )
                out = rules.finish(pdf[input_columns], checked, values, provenance, first_row=0)
                out[ROW] = pdf["__row"].to_numpy(dtype=np.int64)
                yield out

        output = scored.mapInPandas(finish, _output_schema(frame, rules))
        if isinstance(target, str):
            output.write.mode("overwrite").saveAsTable(target.removeprefix(TABLE_PREFIX))
            written = spark.table(target.removeprefix(TABLE_PREFIX))
        else:
            output.write.mode("overwrite").parquet(target.path)
            written = spark.read.parquet(target.path)
        totals = dict.fromkeys(STATUSES, 0)
        for row in written.groupBy(STATUS).count().collect():
            totals[row[STATUS]] = int(row["count"])
        rows = sum(totals.values())
        kept = written.filter(F.col(STATUS) != "refused")
        scored_rows = rows - totals["refused"]
        fraction = min(1.0, DRIFT_SAMPLE_ROWS / scored_rows) if scored_rows else 0.0
        sample = (
            kept.select(*[F.col(n).cast("double") for n in names])
            .sample(False, fraction, seed=0)
            .limit(DRIFT_SAMPLE_ROWS)
            .toPandas()
            if scored_rows
            else None
        )
        drift_rows = (
            sample.to_numpy(dtype=float) if sample is not None else np.empty((0, len(names)))
        )
    return BatchResult(
        "spark",
        provenance,
        totals,
        rows,
        len(sizes),
        time.monotonic() - started,
        "",
        drift_rows,
        peak_rss_mib(),
    )


def stop() -> None:
    """Stop the active Spark session (the CLI, at the end of a run)."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        active.stop()
