"""The recorded champion, kept in git (data/baseline.json): what the gate compares against when
the registry has no champion (a CI run with a fresh embedded registry, a new tracking server).

`promote` rewrites it with the new champion's golden-set metrics and feature set; commit it with
the promotion (the retrain pull request carries it). The shipped file says `"bootstrap": true`:
no model was ever promoted, so the first one is gated on the quality floor alone, and the report
says so. A missing or unreadable file with no champion in the registry fails the gate.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RegistryError


class BaselineError(RegistryError):
    """data/baseline.json is missing or unreadable while the registry has no champion."""


@dataclass(frozen=True)
class Baseline:
    bootstrap: bool = False
    model: str | None = None
    version: str | None = None
    promoted_at: str | None = None
    metric: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    golden_sha256: str | None = None
    features: str | None = None  # the feature signature (training.train.feature_signature)
    training_data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> Baseline:
        if not path.exists():
            raise BaselineError(
                f"no champion in the registry and no recorded baseline {path}: the gate has "
                "nothing to compare with. Restore the file from git (promote writes it), point "
                "MLFLOW_TRACKING_URI at the registry holding the champion, or, for a first model "
                'only, write {"bootstrap": true} to gate on the quality floor alone'
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
            baseline = cls(**known)
        except (ValueError, TypeError) as error:
            raise BaselineError(f"{path}: not a baseline file ({error})") from error
        if not baseline.bootstrap and not baseline.metrics:
            raise BaselineError(f"{path}: no metrics recorded and not a bootstrap baseline")
        return baseline

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.__dict__, indent=2, sort_keys=True) + "\n", "utf-8")


def record_promotion(path: Path, report: dict[str, Any], version: str) -> Baseline | None:
    """After `promote`: the new champion's metrics from its eval report (reports/eval.json),
    written to `path`. None (nothing written) when the report is of another version."""
    model = report.get("model", {})
    if str(model.get("version")) != str(version):
        return None
    baseline = Baseline(
        bootstrap=False,
        model=model.get("name"),
        version=str(version),
        promoted_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        metric=report.get("slo", {}).get("metric"),
        metrics={k: float(v) for k, v in report.get("metrics", {}).items()},
        golden_sha256=report.get("dataset", {}).get("sha256"),
        features=model.get("features"),
        training_data=model.get("training_data") or {},
    )
    baseline.write(path)
    return baseline
