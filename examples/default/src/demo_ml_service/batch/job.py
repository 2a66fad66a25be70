"""`<package> batch-score`: the champion (or an alias / version) scores a source into a sink.

Local engine: the source is read in chunks of `chunk_rows` (data/sources.py `iter_source`), each
chunk checked by the row rules (batch/rules.py), scored, and written before the next is read, so
memory is one chunk whatever the input size. The Spark engine (batch/spark.py) runs the same
rules around the model's Spark UDF. Both return a `BatchResult`: counts, provenance and a uniform
sample of the scored inputs for the drift report.
"""

from __future__ import annotations

import hashlib
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

import numpy as np

from .._template import TEMPLATE_VERSION
from ..artifact import LoadedModel, load_model_dir
from ..config import Settings
from ..data.contract import ContractViolation, DataContract
from ..data.loaders import data_hash
from ..data.sources import FileSource, Source, iter_source
from ..registry import Registry, redact
from ..slo import SLO
from .rules import (
    DEFAULT_CHUNK_ROWS,
    INPUT_DIGEST,
    MODEL_NAME,
    MODEL_VERSION,
    RUN_ID,
    STATUSES,
    RowRules,
    counts,
)
from .sinks import Target

if TYPE_CHECKING:
    import pandas as pd

Engine = Literal["local", "spark"]
# Rows kept (uniformly at random) for the drift report of the batch's inputs.
DRIFT_SAMPLE_ROWS = 20_000


@dataclass(frozen=True)
class BatchModel:
    """The version a batch scores with, exported to a folder for the job's duration."""

    loaded: LoadedModel
    folder: Path
    run_id: str
    alias: str

    def provenance(self, digest: str) -> dict[str, str]:
        return {
            MODEL_NAME: self.loaded.name,
            MODEL_VERSION: self.loaded.version,
            RUN_ID: self.run_id,
            INPUT_DIGEST: digest,
        }


@contextmanager
def batch_model(settings: Settings, alias: str, version: str | None) -> Iterator[BatchModel]:
    """Export the alias (or version) from the registry and load it, as the service does."""
    registry = Registry.from_settings(settings)
    with tempfile.TemporaryDirectory(prefix="batch-model-") as tmp:
        folder = Path(tmp) / "model"
        info = registry.export(alias, folder, version=version)
        yield BatchModel(load_model_dir(folder), folder, info.run_id or "", alias)


def input_digest(source: Source) -> str:
    """`sha256:<hex>` of the source's bytes (a file, or every file of a Parquet folder in name
    order); for a SQL source, of its query (the rows read are digested into the summary's
    `content_digest`)."""
    if not isinstance(source, FileSource):
        text = f"{getattr(source, 'url_env', '')}\n{getattr(source, 'query', '')}"
        return "sha256-query:" + hashlib.sha256(text.encode()).hexdigest()
    location = str(source.path)
    if "://" in location and not location.startswith("file://"):
        import fsspec  # remote files: streamed, never held in memory

        digest = hashlib.sha256()
        with fsspec.open(location, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return "sha256:" + digest.hexdigest()
    path = Path(location.removeprefix("file://"))
    if path.is_dir():
        digest = hashlib.sha256()
        for file in sorted(
            p for p in path.rglob("*") if p.is_file() and not p.name.startswith((".", "_"))
        ):
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
            digest.update(bytes.fromhex(data_hash(file)))
        return "sha256:" + digest.hexdigest()
    return "sha256:" + data_hash(path)


class DriftSample:
    """A uniform random sample (without replacement) of at most `capacity` rows, kept across
    chunks: every row gets a random key and the `capacity` smallest keys stay."""

    def __init__(self, columns: int, capacity: int = DRIFT_SAMPLE_ROWS, seed: int = 0) -> None:
        self.capacity = capacity
        self._rng = np.random.default_rng(seed)
        self._rows = np.empty((0, columns))
        self._keys = np.empty(0)

    def add(self, rows: np.ndarray) -> None:
        if not len(rows):
            return
        keys = np.concatenate([self._keys, self._rng.random(len(rows))])
        data = np.concatenate([self._rows, rows])
        if len(keys) > self.capacity:
            keep = np.argpartition(keys, self.capacity)[: self.capacity]
            keys, data = keys[keep], data[keep]
        self._keys, self._rows = keys, data

    @property
    def rows(self) -> np.ndarray:
        return self._rows


class Progress:
    """A progress line on stderr: rewritten in place on a terminal, a line per 10% (or per
    `every` seconds when the total is unknown) in a log."""

    def __init__(
        self, total: int | None, stream: TextIO | None = None, every: float = 10.0
    ) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.every = every
        self.tty = self.stream.isatty()
        self.started = time.monotonic()
        self._last = 0.0
        self._decile = -1
        self.rows = 0

    def _line(self) -> str:
        rate = self.rows / max(time.monotonic() - self.started, 1e-9)
        done = f"{self.rows:,}" + (
            f"/{self.total:,} ({self.rows / self.total:.0%})" if self.total else ""
        )
        return f"batch-score: {done} rows, {rate:,.0f} rows/s"

    def update(self, rows: int) -> None:
        self.rows += rows
        now = time.monotonic()
        if self.tty:
            if now - self._last >= 0.2:
                self.stream.write("\r" + self._line())
                self.stream.flush()
                self._last = now
            return
        if self.total:
            decile = int(10 * self.rows / self.total)
            if decile > self._decile:
                self._decile = decile
                print(self._line(), file=self.stream)
        elif now - self._last >= self.every:
            self._last = now
            print(self._line(), file=self.stream)

    def close(self) -> None:
        if self.tty or not self.total or self._decile < 10:
            print(("\r" if self.tty else "") + self._line(), file=self.stream)


def is_parquet(source: Source) -> bool:
    """A Parquet file, or a folder (a Parquet dataset, e.g. the output of an earlier batch)."""
    if not isinstance(source, FileSource):
        return False
    if source.format is None and not source.is_url and Path(source.path).is_dir():
        return True
    return source.resolved_format == "parquet"


def iter_input(source: Source, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """data/sources.py's `iter_source`, plus local Parquet dataset folders (record batches)."""
    if isinstance(source, FileSource) and not source.is_url and Path(source.path).is_dir():
        import pyarrow.dataset as ds

        for batch in ds.dataset(source.path, format="parquet").to_batches(batch_size=chunk_rows):
            yield batch.to_pandas()
        return
    yield from iter_source(source, chunk_rows)


def count_rows(source: Source) -> int | None:
    """Rows of a Parquet source from its metadata (no data read); None when unknown."""
    if not isinstance(source, FileSource):
        return None
    if not is_parquet(source):
        return None
    location = str(source.path)
    try:
        import pyarrow.dataset as ds

        return int(ds.dataset(location, format="parquet").count_rows())
    except Exception:  # a source the reader will name the problem of
        return None


@dataclass
class BatchResult:
    engine: Engine
    provenance: dict[str, str]
    counts: dict[str, int]
    rows: int
    chunks: int
    duration_seconds: float
    content_digest: str = ""
    drift_rows: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    peak_rss_mib: float = 0.0

    def summary(self, slo: SLO, model: BatchModel, source: str, output: str) -> dict[str, Any]:
        cost = slo.objectives.cost
        usd = self.duration_seconds / 3600 * cost.instance_hourly_price_usd
        per_1k = usd / self.rows * 1000 if self.rows else 0.0
        return {
            "engine": self.engine,
            "model": {
                "name": model.loaded.name,
                "version": model.loaded.version,
                "alias": model.alias,
                "run_id": model.run_id,
            },
            "input": redact(source),
            "input_digest": self.provenance[INPUT_DIGEST],
            "content_digest": self.content_digest,
            "output": redact(output),
            "template_version": TEMPLATE_VERSION,
            "rows": self.rows,
            "scored": self.counts["predicted"] + self.counts["flagged"],
            **{name: self.counts[name] for name in STATUSES},
            "chunks": self.chunks,
            "duration_seconds": round(self.duration_seconds, 3),
            "rows_per_second": round(self.rows / self.duration_seconds, 1)
            if self.duration_seconds
            else 0.0,
            "cost_usd": round(usd, 6),
            "cost_per_1k_usd": round(per_1k, 6),
            "cost_ceiling_per_1k_usd": cost.ceiling_per_1k_predictions_usd,
            "within_cost_ceiling": per_1k <= cost.ceiling_per_1k_predictions_usd,
            "peak_rss_mib": round(self.peak_rss_mib, 1),
        }


def peak_rss_mib() -> float:
    """This process's peak resident set size (Linux: ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def predict_raw(model: LoadedModel, features: np.ndarray, classification: bool) -> np.ndarray:
    """The model's raw output the rules finish: class probabilities, or the predictions."""
    if not len(features):
        return np.empty((0,))
    if classification:
        return np.asarray(model.pipeline.predict_proba(np.ascontiguousarray(features)), dtype=float)
    return np.asarray(model.pipeline.predict(np.ascontiguousarray(features)), dtype=float)


def rules_for(contract: DataContract, slo: SLO, model: LoadedModel) -> RowRules:
    classes = getattr(model.pipeline, "classes_", None)
    return RowRules(contract, slo, [int(c) for c in classes] if classes is not None else None)


def run_local(
    source: Source,
    target: Target,
    model: BatchModel,
    contract: DataContract,
    slo: SLO,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: Progress | None = None,
    digest: str | None = None,
) -> BatchResult:
    """Score `source` into `target` chunk by chunk; refused rows are written with their reason."""
    import pandas as pd

    from .sinks import open_sink

    if chunk_rows < 1:
        raise ValueError(f"--chunk-rows must be at least 1; got {chunk_rows}")
    started = time.monotonic()
    provenance = model.provenance(digest or input_digest(source))
    rules = rules_for(contract, slo, model.loaded)
    sink = open_sink(target, provenance)
    totals = dict.fromkeys(STATUSES, 0)
    content = hashlib.sha256()
    sample = DriftSample(len(contract.feature_names))
    rows = chunks = 0
    try:
        for chunk in iter_input(source, chunk_rows):
            if chunks == 0:
                missing = rules.missing_columns(list(chunk.columns))
                clash = [c for c in rules.output_columns() if c in chunk.columns]
                problems = [f"missing columns: {', '.join(missing)}"] if missing else []
                if clash:
                    problems.append(f"columns the output adds already exist: {', '.join(clash)}")
                if problems:
                    raise ContractViolation(
                        redact(str(getattr(source, "path", "the input"))), problems
                    )
            content.update(pd.util.hash_pandas_object(chunk, index=False).to_numpy().tobytes())
            checked = rules.check(chunk)
            ok = checked.scoreable
            raw = predict_raw(model.loaded, checked.features[ok], rules.classification)
            out = rules.finish(chunk, checked, raw, provenance, first_row=rows)
            sink.write(out)
            sample.add(checked.features[ok])
            for name, value in counts(out["status"]).items():
                totals[name] += value
            rows += len(chunk)
            chunks += 1
            if progress is not None:
                progress.update(len(chunk))
        result = BatchResult(
            "local",
            provenance,
            totals,
            rows,
            chunks,
            time.monotonic() - started,
            "sha256:" + content.hexdigest(),
            sample.rows,
            peak_rss_mib(),
        )
        sink.close({"rows": rows, **totals, "content_digest": result.content_digest})
    except BaseException:
        sink.abort()
        raise
    if progress is not None:
        progress.close()
    return result


def frame_summary(frame: pd.DataFrame) -> dict[str, int]:
    """Rows per status of an output frame (tests, and the Spark engine's read-back)."""
    return counts(frame["status"])
