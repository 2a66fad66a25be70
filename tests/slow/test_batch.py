"""Slow: `batch-score` in a generated repo with `batch_scoring` on (shared regression-gitlab project).

The local engine on inputs 10x and 1 000x the training sample: peak RSS (the summary's
`peak_rss_mib`, ru_maxrss of the run's process) must stay flat, i.e. the large run holds chunks,
not the input. The Spark engine (`uv sync --group spark`: pyspark from PyPI, Java from Debian's
openjdk-17-jre-headless, installed by `./dev test`) on local[2] against the local engine's output
for the same input, refused rows included: same rows, outcomes, reasons and provenance, and the
same scores. A memory bound, not a timing: the durations are printed for the report only.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.commands import run
from tests.support.generated import GeneratedProject

# Rows per chunk of the local runs; the 1 000x input is ~100 chunks of it.
CHUNK_ROWS = 5_000
# Peak RSS of the 1 000x run relative to the 10x run. Measured 2026-12-02 (regression repo, 5 000-row
# chunks): 358 -> 436 MiB (x1.22), while the 1 000x output alone is 180 MiB in memory. The growth
# rises with the row width (41 MiB without the text column): not yet explained, see
# docs/batch-scoring.md; the bound below holds it to under half of the output.
MAX_PEAK_RATIO = 1.35

MAKE_INPUTS = """
import sys
import numpy as np, pandas as pd
train = pd.read_csv("data/train.csv").drop(columns=["target"])
out = sys.argv[1]
for times in (10, 1000):
    frame = pd.concat([train] * times, ignore_index=True)
    frame.insert(0, "entity_id", np.arange(len(frame)))
    # A free-text column passed through, as real batch inputs carry: ~330 bytes a row.
    frame["note"] = [f"account note {i:012d} " + "x" * 300 for i in range(len(frame))]
    if times == 10:  # rows the rules refuse: out of range, null, in both engines
        first = frame.columns[1]
        frame.loc[3, first] = 1e9
        frame.loc[7, frame.columns[2]] = None
    frame.to_parquet(f"{out}/in-{times}x.parquet", index=False, row_group_size=20_000)
print(len(train))
"""

COMPARE = """
import json, sys
import numpy as np, pandas as pd
a = pd.read_parquet(sys.argv[1]).sort_values("row").reset_index(drop=True)
b = pd.read_parquet(sys.argv[2]).sort_values("row").reset_index(drop=True)
score = "confidence" if "confidence" in a.columns else "value"
exact = [c for c in a.columns if c != score and c != "label"]
report = {
    "rows": [len(a), len(b)],
    "columns_equal": list(a.columns) == list(b.columns),
    "mismatched": [c for c in exact if not a[c].astype(str).equals(b[c].astype(str))],
    "refused": int((a["status"] == "refused").sum()),
    "max_abs_score_diff": float(np.nanmax(np.abs(a[score] - b[score]))),
    "bitwise_equal_scores": int((a[score].to_numpy() == b[score].to_numpy()).sum()),
    "scores_close": bool(np.allclose(a[score], b[score], rtol=1e-12, atol=1e-12, equal_nan=True)),
    "full_output_mib": float(pd.read_parquet(sys.argv[3]).memory_usage(deep=True).sum() / 2**20),
}
print(json.dumps(report))
"""


def batch(
    project: GeneratedProject, tmp: Path, name: str, source: str, *args: str
) -> dict[str, object]:
    started = time.perf_counter()
    project.cli(
        "batch-score",
        "--input",
        str(tmp / f"in-{source}.parquet"),
        "--output",
        str(tmp / f"out-{name}"),
        "--report-dir",
        str(tmp / f"report-{name}"),
        *args,
        timeout=900,
    )
    summary: dict[str, object] = json.loads((tmp / f"report-{name}" / "summary.json").read_text())
    print(
        f"{name}: {summary['rows']} rows in {time.perf_counter() - started:.1f}s wall, "
        f"peak RSS {summary['peak_rss_mib']} MiB"
    )
    return summary


def test_local_memory_stays_flat_and_spark_gives_the_same_scores(
    generated_project: Callable[[str], GeneratedProject], tmp_path: Path
) -> None:
    project = generated_project("regression-gitlab")
    assert project.answers["batch_scoring"] is True
    uv = shutil.which("uv")
    assert uv
    started = time.perf_counter()
    run([uv, "sync", "--frozen", "--group", "spark"], project.path, timeout=1200)
    print(f"uv sync --group spark: {time.perf_counter() - started:.0f}s")
    sample_rows = int(
        run([str(project.python), "-c", MAKE_INPUTS, str(tmp_path)], project.path).stdout
    )

    chunk = ("--chunk-rows", str(CHUNK_ROWS))
    small = batch(project, tmp_path, "10x", "10x", *chunk)
    large = batch(project, tmp_path, "1000x", "1000x", *chunk)
    assert small["rows"] == 10 * sample_rows and large["rows"] == 1000 * sample_rows
    assert small["refused"] == 2 and large["refused"] == 0
    assert large["chunks"] == -(-1000 * sample_rows // CHUNK_ROWS)
    growth = float(large["peak_rss_mib"]) - float(small["peak_rss_mib"])  # type: ignore[arg-type]

    started = time.perf_counter()
    spark = batch(
        project, tmp_path, "10x-spark", "10x", "--engine", "spark", "--master", "local[2]"
    )
    spark_seconds = time.perf_counter() - started
    compared = json.loads(
        run(
            [
                str(project.python),
                "-c",
                COMPARE,
                str(tmp_path / "out-10x"),
                str(tmp_path / "out-10x-spark"),
                str(tmp_path / "out-1000x"),
            ],
            project.path,
        ).stdout
    )
    print(
        f"peak RSS growth 10x -> 1000x: {growth:.1f} MiB; full 1000x output in memory: "
        f"{compared['full_output_mib']:.0f} MiB; spark local[2] {spark_seconds:.0f}s; {compared}"
    )
    assert float(large["peak_rss_mib"]) < MAX_PEAK_RATIO * float(small["peak_rss_mib"])  # type: ignore[arg-type]
    assert growth < compared["full_output_mib"] / 2  # never holds even half of its output
    assert spark["rows"] == small["rows"] and spark["refused"] == small["refused"]
    assert compared["rows"] == [small["rows"]] * 2 and compared["columns_equal"]
    assert compared["mismatched"] == [] and compared["refused"] == 2
    assert compared["scores_close"], compared
