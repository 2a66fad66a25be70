"""Live drift: the last N feature rows the service predicted on, and their PSI at scrape time."""

from __future__ import annotations

import threading

import numpy as np

from ...artifact import ReferenceProfile

# PSI on a handful of rows is noise: exported once the window holds this many (or is full).
DRIFT_MIN_SAMPLES = 100


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
        result = self.reference.psi(rows) if count >= min(DRIFT_MIN_SAMPLES, self.size) else {}
        self._cached = (seen, result)
        return result
