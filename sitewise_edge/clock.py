"""Time, injected: components that read the clock take a :class:`Clock`, so a test or a benchmark can drive it.

    clock = SYSTEM_CLOCK
    clock.time_ns()       # the wall clock, nanoseconds since the epoch (UTC): timestamps, windows, retention, ages
    clock.time()          # the same in seconds (a float)
    clock.monotonic()     # seconds that never jump back: intervals, timeouts, back-off, rates

    fake = ManualClock(1_700_000_000 * NS_PER_S)
    fake.advance(90.0)    # both clocks move 90 s; nothing sleeps

Only this module reads the machine's clocks (``time.time_ns``, ``time.monotonic``); the simulators, which *are*
the plant's clock, and asyncio's own timers are the exceptions. Also the one home of the time constants.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["NS_PER_DAY", "NS_PER_MS", "NS_PER_S", "SYSTEM_CLOCK", "Clock", "ManualClock", "SystemClock"]

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_S


class Clock(Protocol):
    def time_ns(self) -> int:
        """Wall-clock nanoseconds since the epoch."""

    def time(self) -> float:
        """Wall-clock seconds since the epoch."""

    def monotonic(self) -> float:
        """Seconds of a clock that never goes back (its origin means nothing)."""


class SystemClock:
    """The machine's clocks."""

    def time_ns(self) -> int:
        return time.time_ns()

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


SYSTEM_CLOCK = SystemClock()


class ManualClock:
    """A clock that moves only when told to (tests): ``advance(seconds)`` or ``set_ns(ns)`` for the wall clock."""

    def __init__(self, start_ns: int = 1_700_000_000 * NS_PER_S) -> None:
        self._now_ns = start_ns
        self._mono = 0.0

    def time_ns(self) -> int:
        return self._now_ns

    def time(self) -> float:
        return self._now_ns / NS_PER_S

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back: use set_ns for the wall clock")
        self._now_ns += round(seconds * NS_PER_S)
        self._mono += seconds

    def set_ns(self, now_ns: int) -> None:
        """Set the wall clock (it may jump, as an NTP correction does); the monotonic clock does not move."""
        self._now_ns = now_ns
