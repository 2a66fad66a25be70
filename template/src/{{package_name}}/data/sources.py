"""Data sources (TEMPORARY minimal version for issue 16; issue 11's module replaces this file).

API agreed in coord: FileSource / SqlSource, parse_source(text), read_source, iter_source.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    import pandas as pd


class FileSource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["file"] = "file"
    path: str
    format: Literal["csv", "parquet"] | None = None

    @property
    def resolved_format(self) -> str:
        if self.format:
            return self.format
        stripped = self.path.rstrip("/")
        return "csv" if stripped.endswith((".csv", ".csv.gz")) else "parquet"


class SqlSource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["sql"] = "sql"
    url_env: str
    query: str

    def url(self) -> str:
        value = os.environ.get(self.url_env)
        if not value:
            raise ValueError(f"environment variable {self.url_env} (the database URL) is not set")
        return value


Source = FileSource | SqlSource


def parse_source(text: str) -> Source:
    """A CLI argument: a path or URL, or `sql:<ENV_VAR>:<query>`."""
    if text.startswith("sql:"):
        _, env, query = ([*text.split(":", 2), "", ""])[:3]
        if not env or not query:
            raise ValueError(f"a SQL source is sql:<ENV_VAR>:<query>; got {text!r}")
        return SqlSource(url_env=env, query=query)
    return FileSource(path=text)


def iter_source(source: Source, chunk_rows: int) -> Iterator[pd.DataFrame]:
    import pandas as pd

    if isinstance(source, SqlSource):
        import sqlalchemy

        engine = sqlalchemy.create_engine(source.url())
        try:
            with engine.connect().execution_options(stream_results=True) as connection:
                yield from pd.read_sql_query(
                    sqlalchemy.text(source.query), connection, chunksize=chunk_rows
                )
        finally:
            engine.dispose()
        return
    if source.resolved_format == "csv":
        with pd.read_csv(source.path, chunksize=chunk_rows) as reader:
            yield from reader
        return
    import pyarrow.dataset as ds

    dataset = ds.dataset(source.path, format="parquet")
    for batch in dataset.to_batches(batch_size=chunk_rows):
        yield batch.to_pandas()


def read_source(source: Source) -> pd.DataFrame:
    import pandas as pd

    return pd.concat(list(iter_source(source, 65_536)), ignore_index=True)
