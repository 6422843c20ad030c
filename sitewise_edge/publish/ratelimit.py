"""Token buckets for SiteWise's ingestion quotas (sitewise.md §8).

    limits = RateLimits(values_per_s=1000, requests_per_s=1000, entries_per_property_per_s=10)
    await limits.acquire(values=100, keys=["/plant/temp", ...])   # waits until the request may go

Three limits apply to every ``BatchPutAssetPropertyValue``: data points per second per account,
requests per second per account, and entries per second per asset property. Each is a token
bucket holding one second of its rate (the burst); a rate of 0 turns a limit off.

The buckets are GCRA-style: a bucket is a "theoretical arrival time" (when it is full again); a
request may go when that time is at most one burst ahead, and moves it on by ``cost / rate``. A
request bigger than the burst (100 values against a quota of 50/s) goes once the bucket is full
and leaves it in debt for the rest, so the next one waits: the rate holds whatever the request size.
Reservation is atomic (no await between checking and taking), so concurrent lanes never overdraw
a bucket; a caller that must wait has already reserved its tokens and sleeps until they are due.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable

from sitewise_edge.clock import SYSTEM_CLOCK


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` at once (default: one second's worth)."""

    def __init__(self, rate: float, burst: float | None = None,
                 clock: Callable[[], float] = SYSTEM_CLOCK.monotonic) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = rate
        self.burst = max(burst if burst is not None else rate, 1.0)
        self.clock = clock
        self._tat = clock()  # theoretical arrival time: when the bucket is full again

    def earliest(self, cost: float, now: float) -> float:
        """When ``cost`` tokens are there (a cost above the burst waits for a full bucket, no more)."""
        cost = min(cost, self.burst)
        return max(now, self._tat + (cost - self.burst) / self.rate)

    def take(self, cost: float, at: float) -> None:
        """Take ``cost`` tokens at time ``at`` (no earlier than ``earliest``).

        The whole cost, also above the burst: the bucket goes into debt, and the next request waits
        until it is paid off, so the rate holds for requests bigger than the burst too."""
        self._tat = max(self._tat, at) + cost / self.rate

    def reserve(self, cost: float = 1.0) -> float:
        """Take ``cost`` tokens; returns how long to wait before using them (0: at once)."""
        now = self.clock()
        at = self.earliest(cost, now)
        self.take(cost, at)
        return at - now


class KeyedBuckets:
    """One bucket per key (asset property), created on first use and forgotten once full again."""

    def __init__(self, rate: float, burst: float | None = None,
                 clock: Callable[[], float] = SYSTEM_CLOCK.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._next_prune = clock() + 10.0

    def bucket(self, key: str) -> TokenBucket:
        b = self._buckets.get(key)
        if b is None:
            b = self._buckets[key] = TokenBucket(self.rate, self.burst, self.clock)
        return b

    def prune(self, now: float) -> None:
        if now >= self._next_prune:  # full buckets carry no state: bound memory by the active properties
            self._buckets = {k: b for k, b in self._buckets.items() if b._tat > now}
            self._next_prune = now + 10.0

    def __len__(self) -> int:
        return len(self._buckets)


class RateLimits:
    """The account and per-property limits of one destination. Rates of 0 are off.

    A request takes its tokens from every bucket *at one time*, the earliest at which all of them
    have enough, so what the endpoint sees keeps every limit (not each limit at a different time)."""

    def __init__(self, values_per_s: float = 0, requests_per_s: float = 0, entries_per_property_per_s: float = 0,
                 clock: Callable[[], float] = SYSTEM_CLOCK.monotonic) -> None:
        self.clock = clock
        self.values = TokenBucket(values_per_s, clock=clock) if values_per_s > 0 else None
        self.requests = TokenBucket(requests_per_s, clock=clock) if requests_per_s > 0 else None
        self.properties = KeyedBuckets(entries_per_property_per_s, clock=clock) if entries_per_property_per_s > 0 \
            else None
        self.waited = 0.0  # seconds spent waiting for tokens, for the status

    def reserve(self, values: int, keys: Iterable[str]) -> float:
        """Reserve tokens for one request of ``values`` values, one entry per key; returns the wait."""
        now = self.clock()
        wants: list[tuple[TokenBucket, float]] = []
        if self.values is not None:
            wants.append((self.values, float(values)))
        if self.requests is not None:
            wants.append((self.requests, 1.0))
        if self.properties is not None:
            self.properties.prune(now)
            wants += [(self.properties.bucket(k), float(n)) for k, n in Counter(keys).items()]
        if not wants:
            return 0.0
        at = max(b.earliest(c, now) for b, c in wants)
        for b, c in wants:
            b.take(c, at)
        return at - now

    async def acquire(self, values: int, keys: Iterable[str]) -> None:
        delay = self.reserve(values, keys)
        if delay > 0:
            self.waited += delay
            await asyncio.sleep(delay)

    @property
    def enabled(self) -> bool:
        return self.values is not None or self.requests is not None or self.properties is not None
