"""Cost: instance cost accrued since start and the cost of one prediction at recent throughput."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

# Throughput behind the per-prediction cost estimate is measured over this many seconds.
COST_WINDOW_SECONDS = 300


class CostMeter:
    """Instance cost accrued since start, and the cost of one prediction at recent throughput.

    cost per prediction = hourly price / 3600 x window seconds / predictions in the window
    """

    def __init__(
        self,
        hourly_price_usd: float,
        clock: Callable[[], float] = time.monotonic,
        window_seconds: int = COST_WINDOW_SECONDS,
    ) -> None:
        self.per_second = hourly_price_usd / 3600.0
        self.clock = clock
        self.window = window_seconds
        self.started = clock()
        self._seconds: deque[list[int]] = deque()  # [whole second, predictions in it]
        self._lock = threading.Lock()

    def add(self, predictions: int) -> None:
        second = int(self.clock())
        with self._lock:
            if self._seconds and self._seconds[-1][0] == second:
                self._seconds[-1][1] += predictions
            else:
                self._seconds.append([second, predictions])
                while len(self._seconds) > self.window + 2:
                    self._seconds.popleft()

    def snapshot(self) -> tuple[float, float]:
        """(cumulative cost in USD, estimated USD per prediction; NaN without predictions)."""
        now = self.clock()
        elapsed = max(now - self.started, 0.0)
        window = min(float(self.window), elapsed)
        oldest = math.floor(now - window)
        with self._lock:
            while self._seconds and self._seconds[0][0] < oldest:
                self._seconds.popleft()
            predictions = sum(count for _, count in self._seconds)
        per_prediction = self.per_second * window / predictions if predictions else math.nan
        return self.per_second * elapsed, per_prediction
