"""The row rules of a batch: what the API checks per request, applied per row, on both engines.

`check` sorts each row of a chunk into scoreable or refused (with its reason), using the data
contract and the serving guardrails (`serving/guardrails.py`: ranges, allowed values, abstain)
rather than restating them; `finish` turns the model's raw output for the scoreable rows into
the output columns. The local engine calls both on every chunk; the Spark engine calls them in
`mapInPandas` around the model's Spark UDF, so the two engines share one definition of a row's
outcome. No row is ever dropped: a refused row is written with `status = "refused"` and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..data.contract import DataContract
from ..serving.guardrails import RangeGuard, abstain_mask
from ..slo import SLO

if TYPE_CHECKING:
    import pandas as pd

# Rows per chunk of the local engine unless --chunk-rows says otherwise.
DEFAULT_CHUNK_ROWS = 50_000
# Outcomes of a row: the API's three, plus `refused` (the API answers 422 for those).
PREDICTED, FLAGGED, ABSTAIN, REFUSED = "predicted", "flagged", "abstain", "refused"
STATUSES = (PREDICTED, FLAGGED, ABSTAIN, REFUSED)
# Output columns added to the input's own (in this order, after them).
ROW, STATUS, REASON = "row", "status", "reason"
LABEL, LABEL_NAME, CONFIDENCE, VALUE = "label", "label_name", "confidence", "value"
MODEL_NAME, MODEL_VERSION, RUN_ID, INPUT_DIGEST = (
    "model_name",
    "model_version",
    "run_id",
    "input_digest",
)
PROVENANCE = (MODEL_NAME, MODEL_VERSION, RUN_ID, INPUT_DIGEST)


@dataclass(frozen=True)
class Checked:
    """A chunk after the row checks: features in contract order, a status and reasons per row."""

    features: np.ndarray
    status: np.ndarray  # object array of STATUSES (PREDICTED until scored)
    reasons: list[list[str]]

    @property
    def scoreable(self) -> np.ndarray:
        return np.asarray(self.status != REFUSED)


class RowRules:
    def __init__(self, contract: DataContract, slo: SLO, classes: list[int] | None) -> None:
        self.contract = contract
        self.slo = slo
        self.names = contract.feature_names
        self.guard = RangeGuard(contract)
        self.nullable = np.array([f.nullable for f in contract.features], dtype=bool)
        # The model's class order (pipeline.classes_): column j of predict_proba is classes[j].
        self.classes = classes
        self.classification = slo.model_task == "classification"

    def output_columns(self) -> list[str]:
        scores = [LABEL, LABEL_NAME, CONFIDENCE] if self.classification else [VALUE]
        return [ROW, STATUS, REASON, *scores, *PROVENANCE]

    def missing_columns(self, columns: list[str]) -> list[str]:
        return [name for name in self.names if name not in columns]

    def check(self, frame: pd.DataFrame) -> Checked:
        """Refuse rows the API would refuse (not a finite number, null where the contract says
        non-nullable, out of range or not allowed under `guardrails.out_of_range: reject`);
        flag the out-of-range ones under `flag`."""
        import pandas as pd

        rows = len(frame)
        reasons: list[list[str]] = [[] for _ in range(rows)]
        columns = []
        for name, nullable in zip(self.names, self.nullable, strict=True):
            raw = frame[name]
            present = raw.notna().to_numpy()
            numbers = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            for row in np.nonzero(np.isnan(numbers) & present)[0]:
                reasons[row].append(f"{name}: not a number")
            for row in np.nonzero(np.isinf(numbers))[0]:
                reasons[row].append(f"{name}: not a finite number")
                numbers[row] = np.nan
            if not nullable:
                for row in np.nonzero(~present)[0]:
                    reasons[row].append(f"{name}: null in a non-nullable column")
            columns.append(numbers)
        features = np.column_stack(columns) if columns else np.empty((rows, 0))
        refused = np.array([bool(r) for r in reasons], dtype=bool)
        status = np.full(rows, PREDICTED, dtype=object)
        flag = self.slo.guardrails.out_of_range == "flag"
        for violation in self.guard.check(features):
            reasons[violation.row].append(f"{violation.feature}: {violation.message}")
            if flag and not refused[violation.row]:
                status[violation.row] = FLAGGED
            else:
                refused[violation.row] = True
        status[refused] = REFUSED
        # Refused rows never reach the model: zeros in place of whatever they held.
        features[refused] = 0.0
        return Checked(features, status, reasons)

    def finish(
        self,
        frame: pd.DataFrame,
        checked: Checked,
        raw: np.ndarray,
        provenance: dict[str, str],
        first_row: int,
    ) -> pd.DataFrame:
        """The output chunk: the input's columns, then the row's outcome, scores and provenance.

        `raw` is the model's output for the scoreable rows, in order: predict_proba rows for a
        classifier, predictions for a regressor; `first_row` numbers the chunk's rows in the
        input (the `row` column)."""
        import pandas as pd

        rows = len(frame)
        ok = checked.scoreable
        status = checked.status.copy()
        reasons = [list(r) for r in checked.reasons]
        out = frame.copy()
        if self.classification:
            confidence = np.full(rows, np.nan)
            labels = np.full(rows, -1, dtype=np.int64)
            if ok.any():
                probabilities = np.asarray(raw, dtype=float).reshape(int(ok.sum()), -1)
                classes = np.asarray(self.classes)
                confidence[ok] = probabilities.max(axis=1)
                labels[ok] = classes[probabilities.argmax(axis=1)]
                abstain = np.zeros(rows, dtype=bool)
                abstain[ok] = abstain_mask(probabilities, self.slo.guardrails.min_confidence)
                for row in np.nonzero(abstain)[0]:
                    reasons[row].append(
                        f"confidence {confidence[row]:.3f} is below the minimum "
                        f"{self.slo.guardrails.min_confidence:g}"
                    )
                status[abstain] = ABSTAIN
            has_label = (status == PREDICTED) | (status == FLAGGED)
            names = self.contract.classes
            out[LABEL] = pd.array(np.where(has_label, labels, 0), dtype="Int64")
            out.loc[~has_label, LABEL] = pd.NA
            out[LABEL_NAME] = pd.array(
                [
                    names.get(int(v)) if keep else None
                    for v, keep in zip(labels, has_label, strict=True)
                ],
                dtype="string",
            )
            out[CONFIDENCE] = confidence
        else:
            values = np.full(rows, np.nan)
            if ok.any():
                values[ok] = np.asarray(raw, dtype=float).reshape(-1)
            broken = ok & ~np.isfinite(values)
            for row in np.nonzero(broken)[0]:
                reasons[row].append("the model predicted a non-finite value")
            status[broken] = REFUSED
            values[broken] = np.nan
            out[VALUE] = values
        out[ROW] = np.arange(first_row, first_row + rows, dtype=np.int64)
        out[STATUS] = pd.array(status, dtype="string")
        out[REASON] = pd.array(["; ".join(r) for r in reasons], dtype="string")
        for key in PROVENANCE:
            out[key] = pd.array([provenance[key]] * rows, dtype="string")
        return out[[*frame.columns, *self.output_columns()]]


def counts(status: Any) -> dict[str, int]:
    """Rows per outcome of an output chunk's `status` column."""
    values = np.asarray(status, dtype=object)
    return {name: int((values == name).sum()) for name in STATUSES}
