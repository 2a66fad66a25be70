"""Data sources (data/sources.yaml): CSV, Parquet, a real SQL database (sqlite), strict keys."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from demo_ml_service.config import PROJECT_ROOT
from demo_ml_service.data.sources import (
    FileSource,
    SourceError,
    SqlSource,
    iter_source,
    load_sources,
    parse_source,
    read_source,
)

SAMPLE = PROJECT_ROOT / "data" / "train.csv"


def test_the_shipped_sources_are_the_sample_files() -> None:
    sources = load_sources(PROJECT_ROOT / "data" / "sources.yaml")
    assert isinstance(sources.training, FileSource)
    assert Path(sources.training.path) == SAMPLE.resolve()
    assert len(read_source(sources.golden)) > 0


def test_without_a_sources_file_the_default_is_the_sample(tmp_path: Path) -> None:
    sources = load_sources(tmp_path / "sources.yaml")
    assert isinstance(sources.training, FileSource)
    assert sources.training.path.endswith("train.csv")


def test_a_misspelled_key_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text("training:\n  path: a.csv\n  fromat: csv\ngolden:\n  path: b.csv\n")
    with pytest.raises(SourceError, match=r"training\.fromat"):
        load_sources(path)


def test_parquet_and_csv_stream_in_chunks(tmp_path: Path) -> None:
    frame = pd.read_csv(SAMPLE)
    parquet = tmp_path / "train.parquet"
    frame.to_parquet(parquet)
    for source in (parse_source(str(parquet)), parse_source(str(SAMPLE))):
        chunks = list(iter_source(source, 100))
        assert max(len(c) for c in chunks) <= 100
        assert sum(len(c) for c in chunks) == len(frame)
    assert read_source(parse_source(str(parquet))).equals(frame)


def test_a_sql_source_reads_the_url_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlalchemy

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    frame = pd.read_csv(SAMPLE).head(30)
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as connection:
        frame.to_sql("cases", connection, index=False)
    engine.dispose()
    source = parse_source("sql:CASES_DB:SELECT * FROM cases")
    assert isinstance(source, SqlSource)
    with pytest.raises(SourceError, match="CASES_DB"):
        read_source(source)
    monkeypatch.setenv("CASES_DB", url)
    assert len(read_source(source)) == 30
    assert [len(c) for c in iter_source(source, 12)] == [12, 12, 6]
    with pytest.raises(SourceError, match="the query failed"):
        read_source(parse_source("sql:CASES_DB:SELECT * FROM nowhere"))


def test_bad_command_line_sources_are_refused() -> None:
    with pytest.raises(SourceError, match="sql:<ENV_VAR>:<query>"):
        parse_source("sql:ONLY_A_NAME")
    with pytest.raises(SourceError, match="no such file"):
        read_source(parse_source("does-not-exist.csv"))
