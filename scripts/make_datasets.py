"""Regenerate datasets/: the sample data every generated repo ships, from datasets inside scikit-learn.

Run by the platform team only when the sample changes: `python scripts/make_datasets.py`.
Nothing is downloaded: breast cancer and diabetes ship inside scikit-learn.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import yaml
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parents[1] / "datasets"
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


def write(task: str, frame, target: str, contract_extra: dict, categorical: dict[str, list[int]]) -> None:
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


def main() -> None:
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


if __name__ == "__main__":
    main()
