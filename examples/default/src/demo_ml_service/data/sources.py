"""Where the training and golden data come from: data/sources.yaml (team-owned).

A source is a file (CSV or Parquet; a local path, relative to the yaml file's folder, or an fsspec
URL such as s3://bucket/train.parquet) or a SQL query against a database whose SQLAlchemy URL is
read from an environment variable named in the yaml (credentials never live in the repo):

    training:
      path: train.csv                  # or s3://bucket/fraud/train.parquet (format: by extension)
    golden:
      url_env: FRAUD_DB_URL            # e.g. postgresql+psycopg://user:pass@host/db
      query: SELECT * FROM golden_cases

Without data/sources.yaml the sources are the shipped sample files (data/train.csv, golden.csv).
Training never reads a source directly: `ingest` turns it into an immutable snapshot first.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError

if TYPE_CHECKING:
    import pandas as pd

SOURCES_FILE = "sources.yaml"
Format = Literal["csv", "parquet"]
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class SourceError(ValueError):
    """A source is mis-declared or cannot be read; the message says which and why."""


class FileSource(BaseModel):
    """A CSV or Parquet file: a local path or an fsspec URL (s3://, gs://, https://...)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(min_length=1)
    # Default: from the extension (.parquet/.pq = parquet, anything else = csv).
    format: Format | None = None

    @property
    def is_url(self) -> bool:
        return "://" in self.path

    @property
    def resolved_format(self) -> Format:
        if self.format is not None:
            return self.format
        lowered = self.path.lower().split("?", 1)[0]
        return "parquet" if lowered.endswith((".parquet", ".pq")) else "csv"

    def describe(self) -> str:
        return self.path

    def resolved(self, base: Path) -> FileSource:
        """This source with a relative local path made absolute against `base`."""
        if self.is_url or Path(self.path).is_absolute():
            return self
        return self.model_copy(update={"path": str((base / self.path).resolve())})


class SqlSource(BaseModel):
    """A SQL query; the database's SQLAlchemy URL is in the environment variable `url_env`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url_env: str = Field(pattern=_ENV_NAME)
    query: str = Field(min_length=1)

    def url(self) -> str:
        value = os.environ.get(self.url_env, "").strip()
        if not value:
            raise SourceError(
                f"the SQL source needs the database URL in the environment variable "
                f"{self.url_env} (a SQLAlchemy URL, e.g. postgresql+psycopg://user:pass@host/db); "
                "it is not set"
            )
        return value

    def describe(self) -> str:
        return f"sql:{self.url_env}"


def _kind(value: Any) -> str:
    if isinstance(value, FileSource | SqlSource):
        return "file" if isinstance(value, FileSource) else "sql"
    if isinstance(value, dict) and ("url_env" in value or "query" in value):
        return "sql"
    return "file"


Source = Annotated[
    Annotated[FileSource, Tag("file")] | Annotated[SqlSource, Tag("sql")],
    Discriminator(_kind),
]


class Sources(BaseModel):
    """The contents of data/sources.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    training: Source
    golden: Source

    def resolved(self, base: Path) -> Sources:
        def fix(source: FileSource | SqlSource) -> FileSource | SqlSource:
            return source.resolved(base) if isinstance(source, FileSource) else source

        return Sources(training=fix(self.training), golden=fix(self.golden))


def default_sources(data_dir: Path) -> Sources:
    """The embedded default: the shipped sample files."""
    return Sources(
        training=FileSource(path=str(data_dir / "train.csv")),
        golden=FileSource(path=str(data_dir / "golden.csv")),
    )


def load_sources(path: Path) -> Sources:
    """data/sources.yaml, strictly parsed (a misspelled key is an error naming it); the shipped
    sample files when the file does not exist. Relative paths are relative to its folder."""
    if not path.exists():
        return default_sources(path.parent)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise SourceError(f"{path}: not valid YAML: {error}") from error
    try:
        sources = Sources.model_validate(raw if raw is not None else {})
    except ValidationError as error:
        problems = []
        for item in error.errors():
            where = ".".join(str(p) for p in item["loc"] if p not in ("file", "sql"))
            problems.append(f"{where or '(top level)'}: {item['msg']}")
        raise SourceError(f"{path}: " + "; ".join(problems)) from error
    return sources.resolved(path.parent)


def parse_source(text: str) -> FileSource | SqlSource:
    """A source given on the command line: a path or URL, or `sql:<ENV_VAR>:<query>`."""
    text = text.strip()
    if text.startswith("sql:"):
        _, _, rest = text.partition(":")
        env, sep, query = rest.partition(":")
        if not sep or not query.strip():
            raise SourceError(
                f"{text!r}: a SQL source is sql:<ENV_VAR>:<query>, "
                "e.g. sql:FRAUD_DB_URL:SELECT * FROM transactions"
            )
        try:
            return SqlSource(url_env=env, query=query.strip())
        except ValidationError as error:
            raise SourceError(f"{text!r}: {env!r} is not an environment variable name") from error
    if not text:
        raise SourceError("empty source: give a path, a URL or sql:<ENV_VAR>:<query>")
    source = FileSource(path=text)
    return source if source.is_url else source.resolved(Path.cwd())


def _check_file(source: FileSource) -> None:
    if not source.is_url and not Path(source.path).exists():
        raise SourceError(f"{source.path}: no such file")


def read_source(source: FileSource | SqlSource) -> pd.DataFrame:
    """The whole source as one DataFrame."""
    import pandas as pd

    if isinstance(source, SqlSource):
        engine = _engine(source)
        try:
            with engine.connect() as connection:
                return pd.read_sql_query(_text(source.query), connection)
        except Exception as error:
            raise _sql_error(source, error) from error
        finally:
            engine.dispose()
    _check_file(source)
    try:
        if source.resolved_format == "parquet":
            return pd.read_parquet(source.path)
        return pd.read_csv(source.path)
    except (OSError, ValueError, ImportError) as error:
        what = f"{source.path}: cannot read it as {source.resolved_format}"
        raise SourceError(f"{what}: {error}") from error


def iter_source(source: FileSource | SqlSource, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The source in DataFrames of at most `chunk_rows` rows, never all in memory at once:
    Parquet by record batches, CSV by chunks, SQL with a server-side cursor (stream_results)."""
    import pandas as pd

    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    if isinstance(source, SqlSource):
        engine = _engine(source)
        try:
            with engine.connect().execution_options(stream_results=True) as connection:
                yield from pd.read_sql_query(_text(source.query), connection, chunksize=chunk_rows)
        except SourceError:
            raise
        except Exception as error:
            raise _sql_error(source, error) from error
        finally:
            engine.dispose()
        return
    _check_file(source)
    if source.resolved_format == "csv":
        with pd.read_csv(source.path, chunksize=chunk_rows) as reader:
            yield from reader
        return
    import pyarrow.parquet as pq

    if source.is_url:
        import fsspec

        with fsspec.open(source.path, "rb") as handle:
            for batch in pq.ParquetFile(handle).iter_batches(batch_size=chunk_rows):
                yield batch.to_pandas()
        return
    for batch in pq.ParquetFile(source.path).iter_batches(batch_size=chunk_rows):
        yield batch.to_pandas()


def _engine(source: SqlSource) -> Any:
    try:
        import sqlalchemy
    except ImportError as error:  # pragma: no cover - sqlalchemy is in the train group
        raise SourceError("SQL sources need SQLAlchemy: install the `train` group") from error
    url = source.url()
    try:
        return sqlalchemy.create_engine(url)
    except Exception as error:
        raise _sql_error(source, error) from error


def _text(query: str) -> Any:
    import sqlalchemy

    return sqlalchemy.text(query)


def _sql_error(source: SqlSource, error: Exception) -> SourceError:
    # The URL (and its password) is never part of the message: only the variable's name.
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return SourceError(f"{source.describe()}: the query failed: {first}")
