"""Adaptive concurrency for one destination: how many requests may be in flight (AIMD).

    limit = AdaptiveLimit(max_limit=8)
    async with limit.slot() as slot:       # waits while ``limit.in_flight`` is at the limit
        ...send...
        slot.throttled()                   # the endpoint said "slow down": the limit shrinks (x 0.9)
    # leaving without a throttle counts as an answer that passed: the limit grows (+1) if it was used

The rule is Netflix concurrency-limits' ``AIMDLimit``: each throttled answer multiplies the limit by
``backoff_ratio`` (0.9); each other answer adds 1 while at least half of the limit is in use. Only
throttling shrinks it (``ThrottlingException``, ``LimitExceededException``, HTTP 429), as botocore's
``adaptive`` retry mode does: a 503 or a broken connection says nothing about our rate, and a lane
already waits out its own back-off for those. Multiplying by 0.9 rather than halving keeps the limit
where it was under faults that do not depend on the load: with a share ``p`` of throttled answers the
limit settles near ``(1 - p) / (0.1 p)`` (15 at 40 %), capped at ``max_limit``, while a storm of
throttles (an account over its quota) brings it down to 1 in a few dozen answers.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class Slot:
    """One request in flight; :meth:`throttled` marks its answer as a throttle."""

    def __init__(self) -> None:
        self.was_throttled = False

    def throttled(self) -> None:
        self.was_throttled = True


class AdaptiveLimit:
    """An AIMD limit on requests in flight, between ``min_limit`` and ``max_limit`` (which it starts at)."""

    def __init__(self, max_limit: int, *, min_limit: int = 1, backoff_ratio: float = 0.9) -> None:
        if not 1 <= min_limit <= max_limit:
            raise ValueError(f"need 1 <= min_limit <= max_limit, got {min_limit}, {max_limit}")
        self.max_limit = max_limit
        self.min_limit = min_limit
        self.backoff_ratio = backoff_ratio
        self.limit = float(max_limit)
        self.in_flight = 0
        self.in_flight_max = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def allowed(self) -> int:
        """Requests that may be in flight now."""
        return max(self.min_limit, int(self.limit))

    def on_answer(self, throttled: bool, in_flight: int) -> None:
        """Adjust the limit for one answer; ``in_flight`` counts the answered request too."""
        if throttled:
            self.limit = max(float(self.min_limit), self.limit * self.backoff_ratio)
        elif 2 * in_flight >= self.limit:
            self.limit = min(float(self.max_limit), self.limit + 1.0)

    async def acquire(self) -> None:
        while self.in_flight >= self.allowed:
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self._wake()  # it was woken: pass the turn on
                raise
        self.in_flight += 1
        self.in_flight_max = max(self.in_flight_max, self.in_flight)

    def release(self, throttled: bool = False, answered: bool = True) -> None:
        """The request is over; ``answered=False`` (cancelled) leaves the limit as it is."""
        if answered:
            self.on_answer(throttled, self.in_flight)
        self.in_flight -= 1
        for _ in range(max(0, self.allowed - self.in_flight)):
            self._wake()

    def _wake(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[Slot]:
        await self.acquire()
        slot = Slot()
        try:
            yield slot
        except BaseException:
            self.release(answered=False)
            raise
        self.release(slot.was_throttled)
