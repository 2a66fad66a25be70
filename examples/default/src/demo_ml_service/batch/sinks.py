"""Where a batch's output goes: a Parquet dataset (a folder, local or a pyarrow filesystem URL)
or a database table (SQLAlchemy), written chunk by chunk.

    <sink> = path/or/url/            Parquet dataset: <sink>/part-00000.parquet, one row group per
                                     chunk; provenance also in the file's key-value metadata
           | sql:<ENV_VAR>:<table>   the table, replaced by the first chunk, appended to after;
                                     the database URL is read from the environment variable
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pandas as pd

# Key of the Parquet key-value metadata holding the job's provenance and, at the end, its counts.
METADATA_KEY = "slipway.batch"
PART_FILE = "part-00000.parquet"


class Sink(Protocol):
    def write(self, chunk: pd.DataFrame) -> None: ...

    def close(self, summary: dict[str, Any]) -> None: ...

    def abort(self) -> None: ...


@dataclass(frozen=True)
class ParquetTarget:
    path: str

    @property
    def is_local(self) -> bool:
        return "://" not in self.path or self.path.startswith("file://")

    def local_path(self) -> Path:
        return Path(self.path.removeprefix("file://"))


@dataclass(frozen=True)
class SqlTarget:
    url_env: str
    table: str

    def url(self) -> str:
        value = os.environ.get(self.url_env)
        if not value:
            raise ValueError(f"environment variable {self.url_env} (the database URL) is not set")
        return value


Target = ParquetTarget | SqlTarget


def parse_sink(text: str) -> Target:
    """`--output`: a Parquet dataset path/URL, or `sql:<ENV_VAR>:<table>`."""
    if text.startswith("sql:"):
        parts = text.split(":", 2)
        if (
            len(parts) != 3
            or not parts[1]
            or not parts[2].replace("_", "").replace(".", "").isalnum()
        ):
            raise ValueError(
                f"a table sink is sql:<ENV_VAR>:<table> (letters, digits, '_', '.'); got {text!r}"
            )
        return SqlTarget(parts[1], parts[2])
    if not text:
        raise ValueError("--output is empty")
    return ParquetTarget(text)


class ParquetSink:
    """One Parquet file in the dataset folder, a row group per chunk (memory: one chunk).

    Local folders are written beside the target and swapped in at the end: a failed job leaves
    the previous output as it was."""

    def __init__(self, target: ParquetTarget, provenance: dict[str, str]) -> None:
        self.target = target
        self.provenance = provenance
        self._writer: Any = None
        self._schema: Any = None
        if target.is_local:
            final = target.local_path()
            final.parent.mkdir(parents=True, exist_ok=True)
            self._staging: Path | None = final.parent / f".{final.name}.partial"
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging.mkdir()
            self._where = str(self._staging / PART_FILE)
            self._filesystem: Any = None
        else:
            import pyarrow.fs

            self._staging = None
            self._filesystem, root = pyarrow.fs.FileSystem.from_uri(target.path)
            self._filesystem.create_dir(root, recursive=True)
            self._where = f"{root.rstrip('/')}/{PART_FILE}"

    def write(self, chunk: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._writer is None:
            table = pa.Table.from_pandas(chunk, preserve_index=False)
            meta = {
                **(table.schema.metadata or {}),
                METADATA_KEY.encode(): json.dumps(self.provenance).encode(),
            }
            self._schema = table.schema.with_metadata(meta)
            self._writer = pq.ParquetWriter(self._where, self._schema, filesystem=self._filesystem)
        else:
            table = pa.Table.from_pandas(chunk, schema=self._schema, preserve_index=False)
        self._writer.write_table(table)

    def close(self, summary: dict[str, Any]) -> None:
        if self._writer is None:
            raise ValueError("the input had no rows: nothing was written")
        self._writer.add_key_value_metadata(
            {f"{METADATA_KEY}.summary": json.dumps(summary, sort_keys=True)}
        )
        self._writer.close()
        if self._staging is not None:
            final = self.target.local_path()
            if final.exists():
                shutil.rmtree(final)
            self._staging.rename(final)

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)


class SqlSink:
    """A database table: replaced by the first chunk, appended to by the others."""

    def __init__(self, target: SqlTarget) -> None:
        import sqlalchemy

        self.target = target
        self._engine = sqlalchemy.create_engine(target.url())
        self._written = False
        schema, _, table = target.table.rpartition(".")
        self._schema, self._table = schema or None, table

    def write(self, chunk: pd.DataFrame) -> None:
        chunk.to_sql(
            self._table,
            self._engine,
            schema=self._schema,
            if_exists="append" if self._written else "replace",
            index=False,
        )
        self._written = True

    def close(self, summary: dict[str, Any]) -> None:
        self._engine.dispose()
        if not self._written:
            raise ValueError("the input had no rows: nothing was written")

    def abort(self) -> None:
        self._engine.dispose()


def open_sink(target: Target, provenance: dict[str, str]) -> Sink:
    if isinstance(target, SqlTarget):
        return SqlSink(target)
    return ParquetSink(target, provenance)
