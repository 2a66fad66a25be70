"""Live drift: the last N feature rows the service predicted on, and their PSI at scrape time.

A PSI over a few hundred rows is biased upwards by sampling noise alone: with b bins and n rows its
expected value on in-distribution data is about (b - 1) / n, and its 99.9th percentile about
chi2_0.999(b - 1) / n. On the template's golden set replayed as traffic, the decile PSI (10 bins)
of the worst of 30 features reached 0.17 against a 0.2 alert threshold. The live window therefore
(1) folds the training deciles pairwise into quintiles (5 bins: half the noise), (2) smooths the
live proportions with PRIOR_ROWS pseudo-rows distributed as in training (a Dirichlet prior: a
few hundred rows cannot move the estimate far, a full window of shifted rows still does),
(3) subtracts the remaining sampling bias (b - 1) / (n + PRIOR_ROWS), and (4) exports nothing
before DRIFT_MIN_SAMPLES rows. Measured by tests/test_drift.py on the golden set replayed as
traffic (default answers, window 1000, 2026-12-02): worst PSI at any scrape 0.067 (was 0.125 with
raw deciles), while a shift of half a standard deviation of one feature scores 0.30 > 0.2 (the
test asserts a one-standard-deviation shift is caught, for every answer set's data).
The offline report (`<pkg> drift`, a whole file at once) keeps the reference's deciles.
"""

from __future__ import annotations

import threading

import numpy as np

from ...artifact import ReferenceProfile, bin_proportions

# chi2_0.999(4) / 200 - 4 / 200 = 0.07: below this many rows the PSI is mostly noise. A window
# smaller than this exports once it is full.
DRIFT_MIN_SAMPLES = 200
# Adjacent training bins folded into one live bin (deciles -> quintiles).
FOLD = 2
# Strength of the prior (in rows) that smooths the live proportions towards training's.
PRIOR_ROWS = 200
EPSILON = 1e-4


def live_psi(reference: ReferenceProfile, rows: np.ndarray) -> dict[str, float]:
    """Smoothed, bias-corrected PSI per feature of `rows` on the reference's bins folded by FOLD."""
    result = {}
    for index, name in enumerate(reference.features):
        column = rows[:, index]
        column = column[~np.isnan(column)]  # nulls of nullable columns are not a bin
        if not len(column):
            continue
        expected = np.asarray(reference.proportions[index], dtype=float)
        actual = bin_proportions(column, np.asarray(reference.edges[index], dtype=float))
        groups = np.minimum(np.arange(len(expected)) // FOLD, max(len(expected) - 1, 0) // FOLD)
        expected = np.bincount(groups, weights=expected)
        n = len(column)
        counts = np.bincount(groups, weights=actual) * n
        actual = (counts + PRIOR_ROWS * expected) / (n + PRIOR_ROWS)
        expected, actual = np.maximum(expected, EPSILON), np.maximum(actual, EPSILON)
        psi = float(np.sum((actual - expected) * np.log(actual / expected)))
        result[name] = max(0.0, psi - (len(expected) - 1) / (n + PRIOR_ROWS))
    return result


class DriftWindow:
    """The last `size` feature rows the service predicted on, in a ring buffer."""

    def __init__(self, reference: ReferenceProfile, size: int) -> None:
        self.reference = reference
        self.size = size
        self._rows = np.empty((size, len(reference.features)), dtype=float)
        self._count = 0
        self._next = 0
        self._seen = 0
        self._cached: tuple[int, dict[str, float]] = (-1, {})
        self._lock = threading.Lock()

    def observe(self, rows: np.ndarray) -> None:
        n = len(rows)
        with self._lock:
            if n >= self.size:
                self._rows[:] = rows[-self.size :]
                self._next = 0
            else:
                first = min(n, self.size - self._next)
                self._rows[self._next : self._next + first] = rows[:first]
                self._rows[: n - first] = rows[first:]
                self._next = (self._next + n) % self.size
            self._count = min(self._count + n, self.size)
            self._seen += n

    def psi(self) -> dict[str, float]:
        """PSI per feature over the window (empty until enough rows); cached until new rows."""
        with self._lock:
            if self._cached[0] == self._seen:
                return self._cached[1]
            seen, count = self._seen, self._count
            rows = self._rows[:count].copy()
        enough = count >= min(DRIFT_MIN_SAMPLES, self.size)
        result = live_psi(self.reference, rows) if enough else {}
        self._cached = (seen, result)
        return result
