"""Report-by-exception: which rows of a poll are handed over (pure, columnar).

A tag with a deadband is reported when its value moved more than the deadband from the value
last reported (for a number; any change for a bool or a string), when its quality changed, or
when ``heartbeat`` seconds passed since its last report. A tag without a deadband is reported
every poll. The first poll reports every tag.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


class ReportFilter:
    """The report state of the rows of one poll group."""

    def __init__(self, deadbands: Sequence[float | None], heartbeat: float | None) -> None:
        n = len(deadbands)
        self.deadband = np.array([np.nan if d is None else d for d in deadbands], dtype=np.float64)
        self.always = np.isnan(self.deadband)
        self.heartbeat = heartbeat
        self.active = not bool(self.always.all())
        self._number = np.full(n, np.nan)
        self._other: list[object] = [None] * n
        self._quality = np.full(n, -1, dtype=np.int16)
        self._reported_at = np.full(n, -np.inf)

    def select(self, double: pa.Array, integer: pa.Array, string: pa.Array, boolean: pa.Array,
               quality: np.ndarray, now: float) -> np.ndarray:
        """The rows to report at ``now`` (monotonic seconds), as a bool mask; remembers what it reports."""
        n = len(quality)
        if not self.active:
            return np.ones(n, dtype=np.bool_)
        number = pc.coalesce(double, integer.cast(pa.float64())).to_numpy(zero_copy_only=False)
        number = np.where(np.isnan(number.astype(np.float64)), np.nan, number).astype(np.float64)
        moved = np.abs(number - self._number) > self.deadband
        was_null = np.isnan(self._number) != np.isnan(number)
        report = self.always | moved | was_null | (quality != self._quality)
        if self.heartbeat is not None:
            report |= now - self._reported_at >= self.heartbeat
        others = np.flatnonzero(np.isnan(number) & ~self.always)
        if len(others):
            current = pc.coalesce(string, boolean.cast(pa.string())).to_pylist()
            for i in others:
                if current[i] != self._other[i]:
                    report[i] = True
                if report[i]:
                    self._other[i] = current[i]
        self._number[report] = number[report]
        self._quality[report] = quality[report]
        self._reported_at[report] = now
        return report
