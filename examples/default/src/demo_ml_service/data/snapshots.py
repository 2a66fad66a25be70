"""Snapshots: what `ingest` writes and `train` / `evaluate` read (never a live source).

    data/snapshots/training-<digest16>.parquet   immutable, content-addressed (read-only file)
    data/snapshots/training.json                 the current snapshot's manifest (below)

The digest is the sha256 of the data itself (column names, dtypes and every value, row order
included), not of the Parquet bytes: the same rows give the same digest whatever wrote them.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .contract import ContractViolation, DataContract
from .sources import FileSource, SqlSource, load_sources, read_source

if TYPE_CHECKING:
    import pandas as pd

Kind = Literal["training", "golden"]
KINDS: tuple[Kind, ...] = ("training", "golden")


@dataclass(frozen=True)
class Snapshot:
    kind: str
    file: str  # the Parquet file's name, in the snapshots folder
    sha256: str
    rows: int
    source: str  # a path/URL, or sql:<ENV_VAR> (never the database URL itself)
    query: str | None
    created_at: str  # UTC, ISO 8601: when the source was read (the data's age starts here)

    def path(self, folder: Path) -> Path:
        return folder / self.file

    @property
    def created_epoch(self) -> float:
        return float(calendar.timegm(time.strptime(self.created_at, "%Y-%m-%dT%H:%M:%SZ")))

    @classmethod
    def read(cls, manifest: Path) -> Snapshot:
        data = json.loads(manifest.read_text(encoding="utf-8"))
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})


def frame_digest(frame: pd.DataFrame) -> str:
    import pandas as pd

    digest = hashlib.sha256()
    digest.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def write_snapshot(
    frame: pd.DataFrame, kind: str, source: FileSource | SqlSource, folder: Path
) -> Snapshot:
    """Write `frame` as an immutable snapshot (reused when the same data was ingested before)
    and make it the current one of `kind`."""
    frame = frame.reset_index(drop=True)
    digest = frame_digest(frame)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{kind}-{digest[:16]}.parquet"
    if not target.exists():
        staged = folder / f".{target.name}.tmp"
        frame.to_parquet(staged, index=False)
        staged.chmod(0o444)
        staged.replace(target)
    snapshot = Snapshot(
        kind=kind,
        file=target.name,
        sha256=digest,
        rows=len(frame),
        source=source.describe(),
        query=source.query if isinstance(source, SqlSource) else None,
        created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    manifest = folder / f"{kind}.json"
    staged_manifest = folder / f".{kind}.json.tmp"
    staged_manifest.write_text(json.dumps(asdict(snapshot), indent=2), encoding="utf-8")
    staged_manifest.replace(manifest)
    return snapshot


def ingest(
    sources_path: Path,
    contract: DataContract,
    folder: Path,
    overrides: dict[str, FileSource | SqlSource] | None = None,
) -> dict[str, Snapshot]:
    """Read every source (data/sources.yaml, or `overrides` per kind), validate each against the
    contract, and snapshot them. Every failing source is reported, not only the first; nothing
    is written unless all pass."""
    sources = load_sources(sources_path)
    chosen = {"training": sources.training, "golden": sources.golden, **(overrides or {})}
    frames: dict[str, pd.DataFrame] = {}
    problems: list[str] = []
    for kind in KINDS:
        source = chosen[kind]
        frame = read_source(source)
        try:
            contract.validate_frame(frame, source=kind)
        except ContractViolation as error:
            problems += [f"{kind} ({source.describe()}): {p}" for p in error.problems]
            continue
        frames[kind] = frame
    if problems:
        raise ContractViolation("the ingested data", problems)
    return {kind: write_snapshot(frames[kind], kind, chosen[kind], folder) for kind in KINDS}


def current(folder: Path, kind: str) -> Snapshot | None:
    """The current snapshot of `kind`, or None before the first `ingest`."""
    manifest = folder / f"{kind}.json"
    if not manifest.exists():
        return None
    snapshot = Snapshot.read(manifest)
    if not snapshot.path(folder).exists():
        raise FileNotFoundError(
            f"{manifest} names {snapshot.file}, which is missing: run `ingest` again"
        )
    return snapshot


def describe_snapshot(data: Mapping[str, Any]) -> str:
    """A recorded training snapshot in one line, for reports and the model card."""
    if not data:
        return "not recorded"
    query = f", query `{data['query']}`" if data.get("query") else ""
    return (
        f"`{data.get('source')}`{query}, {data.get('rows')} rows, sha256 `{data.get('sha256')}`, "
        f"ingested {data.get('created_at')}"
    )
