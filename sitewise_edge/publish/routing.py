"""Where values go that SiteWise does not (or not yet) take: an S3 export, parking, the dead letters.

    router = Router(config, deadletters, stats, send, exports=[s3_cfg], skip=gateway.not_forwarded)
    prepared = router.prepare(table)     # before sending (worker thread): filters, old values, checks
    await router.dead_letter(failures)   # after sending: parked or dead, durable before the cursor moves
    await router.requeue_loop()          # until cancelled: parked records when due, replays at once
    router.replay(DeadLetterFilter(alias="/old/*"), rewrite_alias="/new")   # then router.wake()

**Before sending.** Streams the gateway keeps at the edge (``skip``) and streams the destination's
filters exclude are dropped; values older than ``cutoff`` (or SiteWise's 7 days) go to an S3 export
whose filters cover the stream (the export uploads them with their day), else to the dead
letters; values SiteWise would refuse (:func:`~sitewise_edge.publish.requests.sitewise_rejections`)
are dead-lettered with the reason.

**After sending.** A permanent per-entry failure is dead-lettered, except
``ResourceNotFoundException`` (an alias nobody has mapped yet), which is *parked*: tried again
every ``park_retry_interval`` until ``park_unknown_for`` has passed, then dead.

**Requeue.** One pass sends every due record (parked ones whose time has come, replayed ones), one
request each, through the publisher's limits and retries; what is refused again is parked once more
or dead-lettered anew. The pass ends with one rewrite of the dead-letter file (the records sent
out, the refused ones in): a crash before it sends the pass again (at least once), never loses a
record nor keeps one twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from sitewise_edge.clock import NS_PER_S, SYSTEM_CLOCK, Clock
from sitewise_edge.config import S3Export, SitewisePublisher
from sitewise_edge.publish.deadletter import DeadLetter, DeadLetterFilter, DeadLetterStore
from sitewise_edge.publish.pipeline import Prepared
from sitewise_edge.publish.requests import (
    AGE_MARGIN_S,
    MAX_AGE_S,
    Entry,
    build_entries,
    entry_values,
    sitewise_rejections,
)
from sitewise_edge.publish.retry import Failure
from sitewise_edge.publish.stats import SitewiseStats
from sitewise_edge.publish.streams import stream_filter

log = logging.getLogger(__name__)

PARKED_CODE = "ResourceNotFoundException"
CACHE_LIMIT = 100_000  # stream names remembered per filter: bounded memory with unbounded names

Send = Callable[[list[Entry]], Awaitable[list[Failure]]]
"""The publisher's send: until nothing retryable is left; returns the permanent failures."""


class Router:
    """Routes the values of one SiteWise destination that are not simply delivered."""

    def __init__(self, config: SitewisePublisher, deadletters: DeadLetterStore, stats: SitewiseStats, send: Send,
                 *, lanes: int, exports: Sequence[S3Export] = (), skip: Callable[[], set[str]] | None = None,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.config = config
        self.clock = clock
        self.name = config.name
        self.deadletters = deadletters
        self.stats = stats
        self.send = send
        self.lanes = lanes
        self.skip = skip
        self._allowed = stream_filter(config.include, config.exclude)
        self._filtered = config.include != ["*"] or bool(config.exclude)
        self._exports = [stream_filter(e.include, e.exclude) for e in exports]
        self._allowed_cache: dict[str, bool] = {}
        self._s3_cache: dict[str, bool] = {}
        self._wake = asyncio.Event()

    # --- before sending (worker thread) ----------------------------------------------------

    def prepare(self, table: pa.Table) -> Prepared:
        """Filter and check the rows of one chunk; dead-letter (fsynced) what cannot go."""
        streams = table.column("stream")
        drop = self.skip() if self.skip else set()
        if drop or self._filtered:
            names = pc.unique(streams.cast(pa.string())).to_pylist()
            keep = [s for s in names if s not in drop and _cached(self._allowed_cache, self._allowed, s)]
            if len(keep) < len(names):
                table = table.filter(pc.is_in(streams.cast(pa.string()), pa.array(keep, pa.string())))
        out = Prepared()
        if table.num_rows == 0:
            return out
        out.streams = len(pc.unique(table.column("stream")))
        now = self.clock.time()
        if self.config.cutoff is not None or self._exports:
            table, out.to_s3, dead = self._route_old(table, now)
            out.rejected += dead
        reasons = sitewise_rejections(table, now)
        if (reasons != "").any():
            for reason in sorted(set(reasons.tolist()) - {""}):
                part = table.filter(pa.array(reasons == reason))
                self.deadletters.append(build_entries(part), reason)
                log.error("publisher %s: %d values dead-lettered: %s", self.name, part.num_rows, reason)
                out.rejected += part.num_rows
            table = table.filter(pa.array(reasons == ""))
        if table.num_rows:
            out.oldest_ns = pc.min(table.column("time").cast(pa.int64())).as_py()
            out.table = table
        return out

    def _route_old(self, table: pa.Table, now: float) -> tuple[pa.Table, int, int]:
        """Values older than the cutoff (or SiteWise's 7 days): to an S3 export covering them, else dead letters."""
        ceiling = MAX_AGE_S - AGE_MARGIN_S
        limit = ceiling if self.config.cutoff is None else min(self.config.cutoff, ceiling)
        old = pc.less(table.column("time").cast(pa.int64()), int((now - limit) * NS_PER_S))
        if not pc.any(old).as_py():
            return table, 0, 0
        old_rows = table.filter(old)
        names = pc.unique(old_rows.column("stream").cast(pa.string())).to_pylist()
        covered = [s for s in names if _cached(self._s3_cache, self._covered, s)]
        in_s3 = pc.is_in(old_rows.column("stream").cast(pa.string()), pa.array(covered, pa.string()))
        n_s3 = int(pc.sum(in_s3).as_py() or 0)
        dead = old_rows.filter(pc.invert(in_s3))
        if dead.num_rows:
            why = (f"older than the cutoff ({self.config.cutoff:g}s) and no S3 export covers the stream"
                   if self.config.cutoff is not None else
                   "TimestampOutOfRangeException: older than 7 days and no S3 export covers the stream")
            self.deadletters.append(build_entries(dead), why)
            log.error("publisher %s: %d values dead-lettered: %s", self.name, dead.num_rows, why)
        return table.filter(pc.invert(old)), n_s3, dead.num_rows

    def _covered(self, stream: str) -> bool:
        return any(f(stream) for f in self._exports)

    # --- after sending ------------------------------------------------------------------------

    async def dead_letter(self, failures: list[Failure]) -> None:
        """Park what may pass later, dead-letter the rest; durable before the caller acknowledges."""
        now = self.clock.time()
        parked = [f for f in failures if f.code == PARKED_CODE and self.config.park_unknown_for > 0]
        dead = [f for f in failures if f not in parked]
        if parked:
            n = entry_values([f.entry for f in parked])
            self.stats.values_parked += n
            for reason in sorted({f.reason for f in parked}):
                await asyncio.to_thread(self.deadletters.append, [f.entry for f in parked if f.reason == reason],
                                        reason, "parked", now + self.config.park_unknown_for,
                                        now + self.config.park_retry_interval)
            log.warning("publisher %s: %d values parked for %gs (%s); tried again every %gs", self.name, n,
                        self.config.park_unknown_for, parked[0].reason, self.config.park_retry_interval)
            self._wake.set()
        if dead:
            n = entry_values([f.entry for f in dead])
            self.stats.values_rejected += n
            for reason in sorted({f.reason for f in dead}):
                await asyncio.to_thread(self.deadletters.append, [f.entry for f in dead if f.reason == reason],
                                        reason)
            log.error("publisher %s: %d values rejected permanently (%s); kept in %s", self.name, n, dead[0].reason,
                      self.deadletters.path)

    # --- parked and replayed records ----------------------------------------------------------

    def wake(self) -> None:
        """Start a requeue pass now (after a replay was marked)."""
        self._wake.set()

    def replay(self, flt: DeadLetterFilter, rewrite_alias: str | None = None) -> list[DeadLetter]:
        """Mark dead letters for sending again (blocking: call from a thread); the requeue loop sends them."""
        return self.deadletters.mark_replay(flt, rewrite_alias)

    async def requeue_loop(self) -> None:
        """Sends parked records when due and replayed ones at once; removes them once accounted for.

        The first pass starts at once: replays marked while the gateway was stopped."""
        self._wake.set()
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.config.park_retry_interval)
            except TimeoutError:
                pass
            self._wake.clear()
            due, expired = await asyncio.to_thread(self.deadletters.due, self.clock.time())
            if expired:
                n = sum(r.values for r in expired)
                self.stats.values_rejected += n
                log.error("publisher %s: %d parked values still refused after %gs: dead-lettered (%s)", self.name,
                          n, self.config.park_unknown_for, expired[0].reason)
            if due:
                await self._requeue(due)

    async def _requeue(self, records: list[DeadLetter]) -> None:
        """One request per record: send() renames entries as it splits and retries them, so a failure is
        matched to its record by the request it came from, not by an entry id."""
        sent: set[str] = set()
        refused: list[DeadLetter] = []
        delivered = 0  # counted per record: other lanes send at the same time
        try:
            for record in records:
                failures = await self.send([{"entryId": "d0", **record.entry}])
                now = self.clock.time()
                refused += [self._refile(record, f, now) for f in failures]
                sent.add(record.id)
                n = record.values - entry_values([f.entry for f in failures])
                delivered += n
                self.stats.values_replayed += n
        finally:  # also when cancelled: what was sent is settled, so the next start does not send it again
            if sent:
                await asyncio.shield(asyncio.to_thread(self.deadletters.settle, sent, refused))
        if delivered:
            log.info("publisher %s: %d of %d parked or replayed values delivered", self.name, delivered,
                     sum(r.values for r in records))

    def _refile(self, record: DeadLetter, failure: Failure, now: float) -> DeadLetter:
        """A record refused again: parked once more while its parking lasts, else dead."""
        if failure.code == PARKED_CODE and record.state == "parked" and (record.parked_until or 0) > now:
            (again,) = self.deadletters.new([failure.entry], record.reason, "parked", record.parked_until,
                                            now + self.config.park_retry_interval)
            return again
        self.stats.values_rejected += entry_values([failure.entry])
        (dead,) = self.deadletters.new([failure.entry], failure.reason)
        return dead


def _cached(cache: dict[str, bool], fn: Callable[[str], bool], stream: str) -> bool:
    hit = cache.get(stream)
    if hit is None:
        if len(cache) > CACHE_LIMIT:
            cache.clear()
        hit = cache[stream] = fn(stream)
    return hit
