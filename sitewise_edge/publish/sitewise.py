"""The SiteWise publisher: forwards the store to ``BatchPutAssetPropertyValue`` from a durable cursor.

    task = SitewisePublisherTask(config, store, data_dir / "deadletter", exports=[s3_cfg])
    await task.run()            # until cancelled; task.status() for /health

Store first, forward second: the publisher reads what the store has accepted, never what the
connectors produce, so a cloud outage or a crash of this process loses nothing; delivery is
at-least-once, in time order per stream. Its parts:

- :mod:`~sitewise_edge.publish.pipeline`: drains read the log in chunks from the cursor, lanes send
  (``max_in_flight`` requests in flight, each stream in one lane), the live lane, cursor saves;
- :mod:`~sitewise_edge.publish.requests`: pure request building (≤10 entries × ≤10 values);
- :mod:`~sitewise_edge.publish.routing`: old values to S3, values SiteWise refuses to the dead
  letters, parking, requeue and replay;
- :mod:`~sitewise_edge.publish.retry`: the retry policy (whole-request errors, ``errorEntries``);
- :mod:`~sitewise_edge.publish.ratelimit`: token buckets for SiteWise's quotas.

This module is the publisher itself: it sends one request until nothing retryable is left
(:meth:`SitewisePublisherTask.send`) within an adaptive limit of requests in flight (AIMD), backs off
the lane of a failed request alone, splits a request refused whole as invalid to find the bad entry,
and keeps the stats.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Generic

import pyarrow as pa

from sitewise_edge.clock import NS_PER_S, SYSTEM_CLOCK, Clock
from sitewise_edge.config import S3Export, SitewisePublisher
from sitewise_edge.publish.base import LogSource, P
from sitewise_edge.publish.clients import SitewiseClient, endpoint_name, sitewise_client
from sitewise_edge.publish.concurrency import AdaptiveLimit
from sitewise_edge.publish.deadletter import DeadLetter, DeadLetterFilter, DeadLetterStore
from sitewise_edge.publish.pipeline import Pipeline, Prepared
from sitewise_edge.publish.quota import values_quota, verdict
from sitewise_edge.publish.ratelimit import RateLimits
from sitewise_edge.publish.requests import Entry, entry_key, entry_values
from sitewise_edge.publish.retry import REQUEST_ERRORS, Failure, FailureStreak, RequestFailure, sitewise_policy
from sitewise_edge.publish.routing import Router
from sitewise_edge.publish.stats import SitewiseStats

log = logging.getLogger(__name__)

LOUD_STREAK = 8
"""Failures in a row from which every power of two is logged, and the recovery too (an outage)."""


class SitewisePublisherTask(Generic[P]):
    """Runs one SiteWise destination until cancelled: a :class:`~sitewise_edge.publish.base.Publisher`,
    with dead letters (``deadletters``, :meth:`replay`, :meth:`wake_requeue`)."""

    def __init__(self, config: SitewisePublisher, store: LogSource[P], deadletter_dir: Path,
                 client: SitewiseClient | None = None, skip: Callable[[], set[str]] | None = None, *,
                 state_dir: Path | None = None, exports: Sequence[S3Export] = (), clock: Clock = SYSTEM_CLOCK,
                 accepted: Callable[[], int] | None = None) -> None:
        """``accepted``: the count of values the store accepted so far (the ingest rate for the quota check)."""
        self.config = config
        self.accepted = accepted
        self.clock = clock
        self.name = config.name
        self.store = store
        self.client = client
        self.endpoint = endpoint_name("IoT SiteWise", config.endpoint_url, config.region)
        self.stats = SitewiseStats()
        self.deadletter_path = deadletter_dir / f"{config.name}.jsonl"
        self.deadletters = DeadLetterStore(self.deadletter_path, config.name, config.deadletter_max_size, clock)
        self.state_path = (state_dir or deadletter_dir.parent / "publishers") / f"{config.name}.json"
        self.cursor_name = f"publisher-{config.name}"
        self.limits = RateLimits(config.rate_limit_values, config.rate_limit_requests,
                                 config.rate_limit_entries_per_property,
                                 clock=clock.monotonic)
        self.retry = sitewise_policy(config.min_retry_interval, config.max_retry_interval)
        self.streak = FailureStreak(self.retry.backoff)
        self.concurrency = AdaptiveLimit(config.max_in_flight)
        self.router = Router(config, self.deadletters, self.stats, self.send, lanes=config.max_in_flight,
                             exports=exports, skip=skip, clock=clock)
        self.pipeline: Pipeline[P] | None = None
        self._quiet_until = 0.0
        self._answered = asyncio.Event()  # set (and replaced) when an answer ends an outage: the waits end
        self._probing = False  # one request waiting out a back-off waits at most probe_interval
        self.woken = 0  # requests whose back-off an answer ended (after outages)
        self.quota, self.quota_source = values_quota(config)
        self._pool: ThreadPoolExecutor | None = None

    # --- running ------------------------------------------------------------------------

    async def run(self) -> None:
        if self.client is None:
            self.client = await asyncio.to_thread(sitewise_client, self.config)  # reads credentials: not on the loop
        # a restart after a failure starts clean: requests queued by the last run are read again from the cursor
        self.streak = FailureStreak(self.retry.backoff)
        self.concurrency = AdaptiveLimit(self.config.max_in_flight)
        self.pipeline = Pipeline(self.config, self.store, self.stats, self.prepare, self.deliver,
                                 cursor_name=self.cursor_name, state_path=self.state_path, endpoint=self.endpoint,
                                 clock=self.clock)
        if self.quota is not None:
            log.info("publisher %s: quota %s values/s (%s; SiteWise's default: 1,000 data points/s per account)",
                     self.name, f"{self.quota:,.0f}", self.quota_source)
        helpers = [asyncio.create_task(self.router.requeue_loop(), name=f"{self.name}-requeue"),
                   asyncio.create_task(self._status_loop(), name=f"{self.name}-status")]
        # a thread per request in flight, and one for the requeue pass
        self._pool = ThreadPoolExecutor(self.config.max_in_flight + 1, f"ThreadPoolExecutor-sitewise-{self.name}")
        try:
            await self.pipeline.run(helpers)
        finally:
            self._pool.shutdown(wait=False)  # a request still on the wire ends by its timeout
            self._pool = None

    def prepare(self, table: pa.Table) -> Prepared:
        """Filter, check and build the requests of one chunk (worker thread); see :class:`Router`."""
        return self.router.prepare(table)

    # --- sending ------------------------------------------------------------------------

    async def deliver(self, entries: list[Entry]) -> None:
        """Send one request of the log until every value is delivered, parked or dead-lettered."""
        failures = await self.send(entries)
        if failures:
            await self.router.dead_letter(failures)

    async def send(self, entries: list[Entry]) -> list[Failure]:
        """Send until nothing retryable is left; returns the permanent per-entry failures.

        A failure makes this sender alone wait (its lane): the other lanes go on, within the adaptive
        limit of requests in flight, which throttling shrinks."""
        attempt = 0
        pending = entries
        failures: list[Failure] = []
        while pending:
            async with self.concurrency.slot() as slot:
                await self.limits.acquire(entry_values(pending), [entry_key(e) for e in pending])
                self.stats.rate_wait_s = self.limits.waited
                try:
                    response = await self._call(pending)
                except REQUEST_ERRORS as exc:
                    failure = self.retry.classify_error(exc)
                    if failure.throttled:
                        slot.throttled()
                    response = None
            if response is None:
                self.stats.requests_failed += 1
                self.stats.failed(failure)
                if not failure.retryable:  # refused whole: never as it is
                    return failures + await self._split_invalid(pending, failure.message)
                attempt += 1
                self.stats.retries += 1
                await self._wait(self._backoff(failure), failure)
                continue
            self._recovered()
            outcome = self.retry.classify_response(pending, response)
            for code in outcome.codes:
                self.stats.count(code)
            self.stats.throttled += outcome.throttled
            self.stats.values_sent += outcome.delivered
            self.stats.requests_sent += 1
            self.stats.last_success = self.clock.time()
            failures += outcome.failures
            pending = outcome.retry
            if pending:  # some values again, after a back-off of this request's own
                attempt += 1
                self.stats.retries += 1
                if outcome.throttled:
                    self.concurrency.on_answer(True, self.concurrency.in_flight + 1)
                await asyncio.sleep(self.retry.backoff.delay(attempt))
        return failures

    async def _call(self, entries: list[Entry]) -> dict[str, Any]:
        """One request in a thread of the publisher's own pool (the loop's default pool has cpu + 4 threads,
        shared with the store: it capped the requests in flight at about 6)."""
        call = functools.partial(self._client().batch_put_asset_property_value, entries=entries,
                                 enablePartialEntryProcessing=True)
        if self._pool is None:
            return await asyncio.to_thread(call)
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    def _client(self) -> SitewiseClient:
        if self.client is None:
            raise RuntimeError(f"publisher {self.name}: send() before run() made a client")
        return self.client

    async def _split_invalid(self, entries: list[Entry], message: str) -> list[Failure]:
        """A request refused whole: send its entries one by one so only the bad one is dead-lettered."""
        if len(entries) == 1:
            return [Failure(entries[0], message.partition(":")[0], message)]
        out: list[Failure] = []
        for e in entries:
            out += await self.send([{**e, "entryId": "e0"}])
        return out

    def _backoff(self, failure: RequestFailure) -> float:
        """A whole request failed with something that passes: how long its lane waits (the others go on)."""
        delay = self.streak.failed(self.concurrency.allowed)
        if failure.throttled:
            self.stats.state = "throttled"
        else:
            self.stats.state = "auth-error" if failure.auth else "retrying"
        # the first failure of a streak and every power of two, but the short streaks of a steady share of
        # failures (partial throttling) only once per status interval: the status line gives the success rate
        now = self.clock.monotonic()
        if self.streak.worth_logging and (self.streak.failures >= LOUD_STREAK or now >= self._quiet_until):
            self._quiet_until = now + self.config.status_log_interval
            log.warning("publisher %s: %s; retrying in %.1fs (%d failures in a row)", self.name, failure.message,
                        delay, self.streak.failures)
        return delay

    async def _wait(self, delay: float, failure: RequestFailure) -> None:
        """Wait out a back-off: ``delay``, or until an answer ends the outage (:meth:`_recovered`).

        After an outage every sender waits up to ``max_retry_interval``: without the wake-up the backlog
        drained at a trickle for a minute (each request at the end of its own back-off). One waiting
        request is the probe and tries again within ``probe_interval``. A throttled request waits its
        whole back-off: the endpoint answers, and asked it to slow down."""
        if failure.throttled:
            await asyncio.sleep(delay)
            return
        answered = self._answered
        probe = not self._probing
        if probe:
            self._probing = True
            delay = min(delay, self.config.probe_interval)
        try:
            async with asyncio.timeout(delay):
                await answered.wait()
            self.woken += 1
        except TimeoutError:
            pass
        finally:
            if probe:
                self._probing = False

    def _recovered(self) -> None:
        ended = self.streak.succeeded()
        if ended:
            if ended >= LOUD_STREAK:
                # an outage ended: whatever waits out a back-off goes now, within the limit of requests in flight
                self._answered.set()
                self._answered = asyncio.Event()
                log.info("publisher %s: the endpoint answers again after %d failed requests; the waiting "
                         "requests go now", self.name, ended)
            if self.stats.state in ("retrying", "auth-error", "throttled"):
                self.stats.state = "sending"

    # --- dead letters -------------------------------------------------------------------

    def replay(self, flt: DeadLetterFilter, rewrite_alias: str | None = None) -> list[DeadLetter]:
        """Mark dead letters for sending again (blocking: call from a thread); then :meth:`wake_requeue`."""
        return self.router.replay(flt, rewrite_alias)

    def wake_requeue(self) -> None:
        self.router.wake()

    # --- status ---------------------------------------------------------------------------

    def status(self) -> dict[str, object]:
        """The stats, with the backlog after the cursor (``backlogRecords``, ``backlogValuesInMemory``)."""
        backlog = max(0, self.store.next_seq - self.store.cursor(self.cursor_name).seq)
        return self._snapshot() | {"backlogRecords": backlog,
                                "backlogValuesInMemory": self.store.backlog(self.cursor_name)}

    def _snapshot(self) -> dict[str, object]:
        self.stats.oldest_unsent_ns = self.pipeline.oldest_ns if self.pipeline is not None else None
        self.stats.in_flight_limit = self.concurrency.limit
        return self.stats.as_dict(self.clock.time())

    def _backlog_age(self) -> float | None:
        oldest = self.pipeline.oldest_ns if self.pipeline is not None else None
        return None if oldest is None else max(0.0, self.clock.time() - oldest / NS_PER_S)

    async def _status_loop(self) -> None:
        """Values/s over the last 10 s, and a summary line every ``status_log_interval``."""
        samples: collections.deque[tuple[float, int, int, int, int | None]] = collections.deque(maxlen=11)
        next_log = self.clock.monotonic() + self.config.status_log_interval
        next_verdict = 0.0
        logged = (-1, -1)
        while True:
            await asyncio.sleep(1.0)
            now = self.clock.monotonic()
            st = self.stats
            accepted = self.accepted() if self.accepted is not None else None
            samples.append((now, st.values_sent, st.requests_tried, st.requests_sent, accepted))
            t0, v0, tried0, sent0, a0 = samples[0]
            st.rate = (st.values_sent - v0) / (now - t0) if now > t0 else 0.0
            if accepted is not None and a0 is not None and now - t0 >= 5.0:
                share = st.values_forwardable / st.values_read if st.values_read else 1.0
                st.ingest_rate = (accepted - a0) / (now - t0) * share
                v = verdict(st.ingest_rate, self.quota, st.rate, self._backlog_age(), self.quota_source)
                st.catch_up_s = v.catch_up
                # the reason's figures change every second: refresh its text at the status interval, not more
                if (v.warning is None) != (st.quota_warning is None) or (v.warning and now >= next_verdict):
                    st.quota_warning = v.warning
                    next_verdict = now + self.config.status_log_interval
            tried = st.requests_tried - tried0
            st.success_rate = (st.requests_sent - sent0) / tried if tried else None
            answered = st.requests_sent - sent0
            st.values_per_request = (st.values_sent - v0) / answered if answered else None
            if now >= next_log:
                next_log = now + self.config.status_log_interval
                s = self._snapshot()
                mark = (self.stats.values_sent, self.stats.values_rejected + self.stats.retries)
                if mark != logged or s["oldestUnsentAgeSeconds"] is not None:
                    logged = mark
                    log.info("publisher %s: %s, %d values sent (%.0f/s), oldest unsent %s, %d retries, "
                             "success rate %s, %d in flight at most, %d dead-lettered, %d parked, %d to S3, "
                             "errors %s%s%s", self.name, s["state"],
                             self.stats.values_sent, self.stats.rate, _age(s["oldestUnsentAgeSeconds"]),
                             self.stats.retries, _pct(self.stats.success_rate), self.concurrency.allowed,
                             self.stats.values_rejected, self.stats.values_parked,
                             self.stats.values_to_s3, self.stats.errors or "none",
                             ", live lane on" if self.stats.live_lane else "", _catch_up(self.stats.catch_up_s))


def _catch_up(seconds: float | None) -> str:
    return "" if seconds is None else f", backlog sent in ~{seconds:,.0f}s at the current rates"


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{share:.0%}"


def _age(seconds: object) -> str:
    return f"{seconds:.0f}s ago" if isinstance(seconds, float) else "none"
