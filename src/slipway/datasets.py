"""Regenerate datasets/: the sample data every generated repo ships, from datasets inside scikit-learn.

Run by the platform team only when the sample changes:

    uv run --with scikit-learn --with pandas python -m slipway datasets

Nothing is downloaded: breast cancer and diabetes ship inside scikit-learn (not a dependency of
slipway itself, hence `--with`).
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2] / "datasets"
SEED = 20261122


def snake(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def bound(lo: float, hi: float) -> tuple[float, float]:
    """Contract range: the observed range widened by 25% of its span, never below 0 for non-negative data."""
    pad = (hi - lo) * 0.25
    new_lo = lo - pad
    if lo >= 0:
        new_lo = max(0.0, new_lo)
    digits = max(0, 3 - int(math.floor(math.log10(max(abs(hi), 1e-9)))))
    return round(new_lo, digits), round(hi + pad, digits)


def write(
    task: str, frame: Any, target: str, contract_extra: dict, categorical: dict[str, list[int]]
) -> None:
    from sklearn.model_selection import train_test_split

    out = ROOT / task
    out.mkdir(parents=True, exist_ok=True)
    stratify = frame[target] if task == "classification" else None
    train, golden = train_test_split(frame, test_size=0.3, random_state=SEED, stratify=stratify)
    train.to_csv(out / "train.csv", index=False, float_format="%.6g")
    golden.to_csv(out / "golden.csv", index=False, float_format="%.6g")
    columns = []
    for col in frame.columns:
        if col == target:
            continue
        spec: dict = {"name": col, "dtype": "float", "nullable": False}
        if col in categorical:
            spec["allowed"] = categorical[col]
        else:
            spec["min"], spec["max"] = bound(float(frame[col].min()), float(frame[col].max()))
        columns.append(spec)
    contract = {"version": 1, "target": target, **contract_extra, "features": columns}
    header = (
        "# Data contract: enforced on training data (`make contract`, train) and on every request.\n"
        "# The use-case team owns this file; ranges are the sample's range widened by 25%.\n"
    )
    (out / "contract.yaml").write_text(header + yaml.safe_dump(contract, sort_keys=False))


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(
        prog="python -m slipway datasets", description=__doc__.splitlines()[0]
    ).parse_args(argv)
    from sklearn.datasets import load_breast_cancer, load_diabetes

    bc = load_breast_cancer(as_frame=True)
    frame = bc.frame.rename(columns=snake)
    write(
        "classification",
        frame,
        "target",
        {"target_dtype": "int", "classes": {0: "malignant", 1: "benign"}},
        {},
    )
    db = load_diabetes(as_frame=True, scaled=False)
    write("regression", db.frame, "target", {"target_dtype": "float"}, {"sex": [1, 2]})
    print(f"wrote {ROOT}/classification and {ROOT}/regression")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
