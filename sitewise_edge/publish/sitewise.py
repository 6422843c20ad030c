"""The SiteWise publisher: forwards the store to ``BatchPutAssetPropertyValue`` from a durable cursor.

    task = SitewisePublisherTask(cfg, store, data_dir / "deadletter", exports=[s3_cfg])
    await task.run()            # until cancelled; task.status() for /health

Store first, forward second: the publisher reads what the store has accepted, never what the
connectors produce, so a cloud outage or a crash of this process loses nothing.

**Pipeline.** A *drain* reads the log in chunks from a position, filters and checks each chunk,
and turns it into requests (≤10 entries × ≤10 values, one stream per entry, time order per
stream). Every stream belongs to one of ``max_in_flight`` *lanes* (a stable hash of its name);
a lane sends its requests one after the other, the lanes run concurrently, so each stream's
values arrive in time order while ``max_in_flight`` requests are in flight. A drain reads ahead
a bounded window of chunks; a chunk is *acknowledged* when every request of it was answered
(delivered, or dead-lettered durably), and the cursor moves to the end of the longest run of
acknowledged chunks from the start of the window, saved by a background task (atomic write +
fsync). So the saved cursor never passes an undelivered value, and after a crash only the
window (at most ``WINDOW_CHUNKS`` chunks, plus what was acknowledged during the last cursor
save) is sent again: at-least-once.

**Live lane.** When the oldest unsent value is older than ``live_after`` and more is waiting
(``newest_first``: whenever more is waiting), the log is split at its head: the running drain
becomes the *backlog* drain and stops there; a new *live* drain sends from the head on, and the
lanes serve live requests before backlog ones. The live drain's position is kept in
``<data_dir>/publishers/<name>.json`` (with the split point); when the backlog drain reaches
the split point, the main cursor jumps to the live drain's position and the file goes. The two
ranges are disjoint, so nothing is sent twice; a stream's fresh values may reach SiteWise
before its older backlog values (SiteWise accepts out-of-order timestamps), and within each
range its values keep time order.

**Failures.** Whole-request throttling, 5xx, network and authentication errors pause every lane
with exponential back-off and jitter (``min_retry_interval`` doubling to ``max_retry_interval``);
a request refused whole as invalid is split into its entries to find the bad one. Per-entry
``errorEntries`` are retried (throttling, internal failure, ...) or are permanent; permanent ones
go to the dead-letter store with the reason (see ``deadletter.py``), except
``ResourceNotFoundException``, which is *parked* and tried again for ``park_unknown_for``.
Values SiteWise would never accept (outside its timestamp window, infinities, integers beyond 32
bits, long strings) are dead-lettered before sending; values older than ``cutoff`` (or 7 days) go
to an S3 export instead when one covers the stream.

**Limits.** Token buckets per account (values/s, requests/s) and per asset property (entries/s),
SiteWise's default quotas unless configured (``ratelimit.py``).
"""

from __future__ import annotations

import asyncio
import collections
import fnmatch
import json
import logging
import math
import random
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import boto3
import botocore.config
import botocore.exceptions
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from botocore import UNSIGNED

from sitewise_edge.config import S3Export, SitewisePublisher
from sitewise_edge.files import write_json_atomic
from sitewise_edge.publish.deadletter import DeadLetter, DeadLetterFilter, DeadLetterStore
from sitewise_edge.publish.ratelimit import RateLimits
from sitewise_edge.samples import QUALITY_NAMES

log = logging.getLogger(__name__)

MAX_ENTRIES = 10
MAX_VALUES = 10
REQUESTS_PER_LANE_CHUNK = 10
"""A chunk holds about this many full requests per lane: ``max_in_flight`` × 1,000 values."""
WINDOW_CHUNKS = 3
"""Chunks a drain reads ahead of its cursor (unacknowledged at most)."""
MAX_CHUNK_ROWS = 50_000
"""With many streams a chunk grows (up to this) until it holds 20 values per stream: full entries."""
MAX_AGE_S = 7 * 86_400
MAX_FUTURE_S = 5 * 60  # the gateway documentation's window, stricter than the API's 10 minutes
AGE_MARGIN_S = 60  # values this close to the 7-day limit would expire in flight
RETRYABLE_CODES = frozenset({
    "ThrottlingException", "LimitExceededException", "InternalFailureException",
    "ServiceUnavailableException", "ConflictingOperationException",
})
AUTH_ERRORS = frozenset({
    "AccessDeniedException", "UnauthorizedException", "UnrecognizedClientException", "ExpiredTokenException",
    "InvalidSignatureException", "MissingAuthenticationTokenException", "IncompleteSignature",
})
THROTTLING = frozenset({"ThrottlingException", "LimitExceededException", "TooManyRequestsException"})
PARKED_CODE = "ResourceNotFoundException"
SYNTHETIC_PREFIX = "asset:"
NS = 1_000_000_000


class LogSource(Protocol):
    """What the publisher needs of the store."""

    def read(self, position: Any, max_rows: int) -> tuple[pa.Table, Any]: ...
    def cursor(self, name: str) -> Any: ...
    def save_cursor(self, name: str, position: Any) -> None: ...
    async def wait_for_data(self, max_wait: float) -> None: ...
    @property
    def next_seq(self) -> int: ...


Failure = tuple[dict[str, Any], str, str]
"""A permanent per-entry failure: (the entry with the failed values, error code, message)."""


@dataclass
class PublisherStats:
    values_sent: int = 0
    requests_sent: int = 0
    retries: int = 0
    values_rejected: int = 0
    values_parked: int = 0
    values_to_s3: int = 0
    values_replayed: int = 0
    throttled: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    last_success: float | None = None
    last_error: str | None = None
    state: str = "starting"
    oldest_unsent_ns: int | None = None
    live_lane: bool = False
    rate: float = 0.0
    rate_wait_s: float = 0.0

    def as_dict(self) -> dict[str, object]:
        age = None if self.oldest_unsent_ns is None else max(0.0, time.time() - self.oldest_unsent_ns / NS)
        return {
            "state": self.state, "valuesSent": self.values_sent, "requestsSent": self.requests_sent,
            "retries": self.retries, "valuesRejected": self.values_rejected, "valuesParked": self.values_parked,
            "valuesToS3": self.values_to_s3, "valuesReplayed": self.values_replayed, "throttled": self.throttled,
            "errors": dict(self.errors), "lastSuccess": self.last_success, "lastError": self.last_error,
            "valuesPerSecond": round(self.rate, 1), "oldestUnsentAgeSeconds": None if age is None else round(age, 1),
            "liveLane": self.live_lane, "rateLimitWaitSeconds": round(self.rate_wait_s, 1),
        }


# --- pure parts: targets, checks, request building ----------------------------------------


def entry_target(stream: str) -> dict[str, str]:
    """How an entry names its data stream: by alias, or by asset and property id for unaliased properties."""
    if stream.startswith(SYNTHETIC_PREFIX):
        asset_id, _, property_id = stream[len(SYNTHETIC_PREFIX):].partition("/")
        return {"assetId": asset_id, "propertyId": property_id}
    return {"propertyAlias": stream}


def entry_key(entry: dict[str, Any]) -> str:
    """The asset property an entry writes to (for the per-property rate limit)."""
    alias = entry.get("propertyAlias")
    return alias if alias is not None else f"{entry.get('assetId')}/{entry.get('propertyId')}"


def sitewise_rejections(table: pa.Table, now_s: float | None = None) -> np.ndarray:
    """Why SiteWise will never accept each row ("" for rows it will), found before sending.

    With ``now_s``, timestamps outside SiteWise's window (older than 7 days less a margin, more
    than 5 minutes ahead) are refused too."""
    n = table.num_rows
    bad = np.zeros(n, dtype=bool)
    reasons = np.full(n, "", dtype=object)

    def mark(mask: Any, reason: str) -> None:
        m = np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool) & ~bad
        reasons[m] = reason
        bad[:] |= m

    seconds = pc.divide(table.column("time").cast(pa.int64()), pa.scalar(NS, pa.int64()))
    mark(pc.less(seconds, 1), "InvalidRequestException: timestamp before 1970-01-01T00:00:01Z")
    if now_s is not None:
        mark(pc.less(seconds, int(now_s) - MAX_AGE_S + AGE_MARGIN_S),
             "TimestampOutOfRangeException: older than 7 days (SiteWise never accepts it)")
        mark(pc.greater(seconds, int(now_s) + MAX_FUTURE_S),
             "TimestampOutOfRangeException: more than 5 minutes in the future")
    double = table.column("double")
    mark(pc.is_inf(double), "InvalidRequestException: SiteWise does not accept an infinite double")
    integer = table.column("integer")
    mark(pc.or_(pc.less(integer, -(2**31)), pc.greater(integer, 2**31 - 1)),
         "InvalidRequestException: integerValue outside the 32-bit range SiteWise stores")
    mark(pc.greater(pc.binary_length(table.column("string")), 1024),
         "InvalidRequestException: stringValue longer than 1024 bytes")
    return reasons


def property_values(table: pa.Table) -> list[dict[str, Any]]:
    """Rows -> SiteWise ``AssetPropertyValue`` dicts for boto3 (NaN as a float): the one per-value loop."""
    t = table.column("time").cast(pa.int64()).to_numpy()
    secs = (t // NS).tolist()
    nanos = (t % NS).tolist()
    quality = [QUALITY_NAMES[q] for q in table.column("quality").to_pylist()]
    n = table.num_rows
    variants: list[Any] = [None] * n
    filled = np.zeros(n, dtype=bool)
    for name, key in (("double", "doubleValue"), ("integer", "integerValue"), ("string", "stringValue"),
                      ("boolean", "booleanValue")):
        col = table.column(name)
        if col.null_count == n:
            continue
        valid = np.asarray(pc.is_valid(col).to_numpy(zero_copy_only=False), dtype=bool) & ~filled
        if valid.all():
            variants = [{key: v} for v in col.to_pylist()]
            filled[:] = True
            break
        for i, v in zip(np.flatnonzero(valid).tolist(), col.filter(pa.array(valid)).to_pylist(), strict=True):
            variants[i] = {key: v}
        filled |= valid
    if not filled.all():
        for i in np.flatnonzero(~filled).tolist():
            variants[i] = {"nullValue": {"valueType": "U"}}
    return [{"value": v, "timestamp": {"timeInSeconds": s, "offsetInNanos": ns}, "quality": q}
            for v, s, ns, q in zip(variants, secs, nanos, quality, strict=True)]


def build_requests(table: pa.Table, lanes: int = 1) -> list[list[list[dict[str, Any]]]]:
    """Rows -> lanes of requests: ≤10 entries × ≤10 values, one stream per entry, time order per stream.

    Every stream goes to one lane (by a stable hash of its name), so each stream's values go out in
    time order when the requests of a lane are sent one after the other. Empty lanes are kept (the
    list has ``lanes`` items) unless the table is empty.
    """
    if table.num_rows == 0:
        return []
    streams_col = table.column("stream").cast(pa.string())
    keys = pa.table({"s": streams_col, "t": table.column("time")})
    order = pc.sort_indices(keys, [("s", "ascending"), ("t", "ascending")])
    table = table.take(order)
    streams = np.asarray(table.column("stream").cast(pa.string()).to_numpy(zero_copy_only=False))
    values = property_values(table)
    n = len(streams)
    # entry boundaries: where the stream changes, and every 10 values within a stream
    change = np.flatnonzero(streams[1:] != streams[:-1]) + 1
    run_starts = np.concatenate([[0], change])
    run_ends = np.concatenate([change, [n]])
    lengths = run_ends - run_starts
    per_run = -(-lengths // MAX_VALUES)
    starts = np.repeat(run_starts, per_run) + MAX_VALUES * (np.arange(per_run.sum()) - np.repeat(
        np.cumsum(per_run) - per_run, per_run))
    ends = np.minimum(starts + MAX_VALUES, np.repeat(run_ends, per_run))
    run_names = streams[run_starts].tolist()
    run_lane = [zlib.crc32(s.encode()) % lanes for s in run_names]
    targets = [entry_target(s) for s in run_names]
    lane_entries: list[list[dict[str, Any]]] = [[] for _ in range(lanes)]
    run_of = np.repeat(np.arange(len(run_names)), per_run).tolist()
    for r, a, b in zip(run_of, starts.tolist(), ends.tolist(), strict=True):
        lane_entries[run_lane[r]].append({**targets[r], "propertyValues": values[a:b]})
    out = []
    for entries in lane_entries:
        requests = []
        for i in range(0, len(entries), MAX_ENTRIES):
            group = entries[i:i + MAX_ENTRIES]
            for j, e in enumerate(group):
                e["entryId"] = f"e{j}"
            requests.append(group)
        out.append(requests)
    return out


def build_entries(table: pa.Table) -> list[dict[str, Any]]:
    """Rows -> entries (any number), for the dead-letter store."""
    return [entry for lane in build_requests(table) for request in lane for entry in request]


def stream_filter(include: Sequence[str], exclude: Sequence[str]) -> Callable[[str], bool]:
    def allowed(stream: str) -> bool:
        return any(fnmatch.fnmatchcase(stream, p) for p in include) and not any(
            fnmatch.fnmatchcase(stream, p) for p in exclude)

    return allowed


def classify_client_error(exc: botocore.exceptions.ClientError) -> tuple[str, bool, str]:
    """(error kind for the counters, retryable, message) of a whole-request error."""
    code = exc.response.get("Error", {}).get("Code", "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    message = exc.response.get("Error", {}).get("Message", str(exc))
    # credentials can be fixed while we wait: never dead-letter a whole backlog for them
    retryable = code in RETRYABLE_CODES or code in AUTH_ERRORS or status in (401, 403, 408, 429) or status >= 500
    kind = code or f"HTTP {status}"
    return kind, retryable, f"{kind}: {message}"


def make_client(cfg: SitewisePublisher) -> Any:
    """A boto3 ``iotsitewise`` client; credentials from the standard AWS chain, never from the config."""
    session = boto3.session.Session()
    kwargs: dict[str, Any] = {"region_name": cfg.region}
    options: dict[str, Any] = {"retries": {"mode": "standard", "total_max_attempts": 1},  # we retry, not botocore
                               "connect_timeout": 5, "read_timeout": 30,
                               "max_pool_connections": max(10, 2 * cfg.max_in_flight)}
    if cfg.endpoint_url:
        kwargs["endpoint_url"] = cfg.endpoint_url
        options["inject_host_prefix"] = False
        if session.get_credentials() is None:
            log.info("publisher %s: no AWS credentials found; sending unsigned requests to %s",
                     cfg.name, cfg.endpoint_url)
            options["signature_version"] = UNSIGNED
    client = session.client("iotsitewise", config=botocore.config.Config(**options), **kwargs)
    if cfg.token:
        token = cfg.token

        def add_token(request: Any, **_: Any) -> None:
            request.headers["x-api-token"] = token

        client.meta.events.register("before-sign.iotsitewise.*", add_token)
    return client


# --- the pipeline -------------------------------------------------------------------------


@dataclass
class _Chunk:
    end: Any
    pending: int
    oldest_ns: int | None


@dataclass
class _Prepared:
    lanes: list[list[list[dict[str, Any]]]]
    rejected: int = 0
    to_s3: int = 0
    oldest_ns: int | None = None
    streams: int = 0


class _Lane:
    """Sends its requests one after the other; live work before backlog work."""

    def __init__(self) -> None:
        self.live: collections.deque[tuple[_Drain, _Chunk, list[list[dict[str, Any]]]]] = collections.deque()
        self.backlog: collections.deque[tuple[_Drain, _Chunk, list[list[dict[str, Any]]]]] = collections.deque()
        self.wake = asyncio.Event()

    def put(self, drain: _Drain, chunk: _Chunk, requests: list[list[dict[str, Any]]]) -> None:
        (self.live if drain.live else self.backlog).append((drain, chunk, requests))
        self.wake.set()

    async def run(self, pub: SitewisePublisherTask) -> None:
        while True:
            while not self.live and not self.backlog:
                self.wake.clear()
                await self.wake.wait()
            drain, chunk, requests = (self.live or self.backlog).popleft()
            for entries in requests:
                await pub.deliver(entries)
            drain.done(chunk)


class _Drain:
    """Reads the log from ``position`` (up to ``stop``, if set) and feeds the lanes chunk by chunk."""

    def __init__(self, pub: SitewisePublisherTask, position: Any, save: Callable[[Any], None], live: bool) -> None:
        self.pub = pub
        self.position = position  # next row to read
        self.acked = position  # every row before it is delivered or accounted for
        self.saved = position
        self.stop: Any = None
        self.live = live
        self.save = save
        self.window: collections.deque[_Chunk] = collections.deque()
        self.behind = False  # the last read was full: more is waiting
        self.finished = asyncio.Event()
        self._changed = asyncio.Event()
        self._dirty = asyncio.Event()
        self._save_lock = asyncio.Lock()  # one save at a time, so a later position is never overwritten
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def oldest_ns(self) -> int | None:
        stamps = [c.oldest_ns for c in self.window if c.oldest_ns is not None]
        return min(stamps) if stamps else None

    def done(self, chunk: _Chunk) -> None:
        chunk.pending -= 1
        if chunk.pending > 0:
            return
        while self.window and self.window[0].pending <= 0:
            self.acked = self.window.popleft().end
        self._dirty.set()
        self._changed.set()

    async def saver(self) -> None:
        """Saves the acknowledged position in the background, coalescing (one fsync at a time)."""
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            await self.flush()

    async def flush(self) -> None:
        async with self._save_lock:
            pos = self.acked
            if pos != self.saved:
                await asyncio.to_thread(self.save, pos)
                self.saved = pos

    async def run(self) -> None:
        pub = self.pub
        rows = pub.chunk_rows
        while True:
            if self.stop is not None and self.position >= self.stop:
                while self.window:  # wait until the rest of the range is acknowledged
                    self._changed.clear()
                    await self._changed.wait()
                await self.flush()
                self.finished.set()
                return
            while len(self.window) >= WINDOW_CHUNKS:
                self._changed.clear()
                await self._changed.wait()
            table, next_pos = await asyncio.to_thread(self._read, self.position, rows)
            if table.num_rows == 0:
                self.behind = False
                if self.stop is not None:  # nothing left before the split point (or it was lost)
                    self.position = max(self.position, self.stop)
                    continue
                if not self.window:
                    pub.stats.state = "idle"
                await pub.store.wait_for_data(pub.cfg.batch_interval)
                continue
            if table.num_rows < MAX_VALUES * MAX_ENTRIES and not self.window and self.stop is None:
                # little is waiting: wait a moment for more, so requests go out full
                await pub.store.wait_for_data(pub.cfg.batch_interval)
                table, next_pos = await asyncio.to_thread(self._read, self.position, rows)
            self.behind = table.num_rows >= rows
            pub.stats.state = "sending"
            prepared = await asyncio.to_thread(pub.prepare, table)
            pub.account(prepared)
            if self.behind:  # a backlog: chunks big enough for full entries (10 values of a stream)
                rows = min(MAX_CHUNK_ROWS, max(pub.chunk_rows, 2 * MAX_VALUES * prepared.streams))
            self.position = next_pos
            busy = [lane for lane in prepared.lanes if lane]
            chunk = _Chunk(next_pos, len(busy) + 1, prepared.oldest_ns)
            self.window.append(chunk)
            for i, requests in enumerate(prepared.lanes):
                if requests:
                    pub.lanes[i].put(self, chunk, requests)
            self.done(chunk)  # the +1: a chunk with nothing to send is acknowledged here

    def _read(self, position: Any, rows: int) -> tuple[pa.Table, Any]:
        """``store.read``, but never past ``stop`` (found by bisection on the row count: rare)."""
        table, next_pos = self.pub.store.read(position, rows)
        stop = self.stop
        if stop is None or next_pos <= stop:
            return table, next_pos
        lo, hi = 0, table.num_rows  # the largest row count that ends at or before stop
        while lo < hi:
            mid = (lo + hi + 1) // 2
            _, p = self.pub.store.read(position, mid)
            if p <= stop:
                lo = mid
            else:
                hi = mid - 1
        return self.pub.store.read(position, lo) if lo else (table.slice(0, 0), position)


class SitewisePublisherTask:
    """Runs one destination until cancelled."""

    def __init__(self, cfg: SitewisePublisher, store: LogSource, deadletter_dir: Path, client: Any = None,
                 skip: Callable[[], set[str]] | None = None, *, state_dir: Path | None = None,
                 exports: Sequence[S3Export] = ()) -> None:
        self.cfg = cfg
        self.skip = skip
        self.name = cfg.name
        self.store = store
        self.stats = PublisherStats()
        self.deadletter_path = deadletter_dir / f"{cfg.name}.jsonl"
        self.deadletters = DeadLetterStore(self.deadletter_path, cfg.name, cfg.deadletter_max_size)
        self.state_path = (state_dir or deadletter_dir.parent / "publishers") / f"{cfg.name}.json"
        self.cursor_name = f"publisher-{cfg.name}"
        self.client = client
        self.limits = RateLimits(cfg.rate_limit_values, cfg.rate_limit_requests, cfg.rate_limit_entries_per_property)
        self.chunk_rows = cfg.max_in_flight * REQUESTS_PER_LANE_CHUNK * MAX_ENTRIES * MAX_VALUES
        self.lanes = [_Lane() for _ in range(cfg.max_in_flight)]
        self._allowed = stream_filter(cfg.include, cfg.exclude)
        self._filtered = cfg.include != ["*"] or bool(cfg.exclude)
        self._exports = [stream_filter(e.include, e.exclude) for e in exports]
        self._allowed_cache: dict[str, bool] = {}
        self._s3_cache: dict[str, bool] = {}
        self._pause_until = 0.0
        self._fail_streak = 0
        self._requeue_wake = asyncio.Event()
        self.drains: list[_Drain] = []

    # --- running ------------------------------------------------------------------------

    async def run(self) -> None:
        if self.client is None:
            self.client = await asyncio.to_thread(make_client, self.cfg)  # reads credentials: not on the loop
        # a restart after a failure starts clean: requests queued by the last run are read again from the cursor
        self.lanes = [_Lane() for _ in range(self.cfg.max_in_flight)]
        self._pause_until = 0.0
        main_pos = self.store.cursor(self.cursor_name)
        log.info("publisher %s: forwarding to %s from %s", self.name, self.cfg.endpoint_url or
                 f"AWS IoT SiteWise in {self.cfg.region}", main_pos)
        tasks = [asyncio.create_task(lane.run(self), name=f"{self.name}-lane{i}") for i, lane in enumerate(self.lanes)]
        self._requeue_wake.set()  # a first pass at once: replays marked while the gateway was stopped
        tasks.append(asyncio.create_task(self._requeue_loop(), name=f"{self.name}-requeue"))
        tasks.append(asyncio.create_task(self._status_loop(), name=f"{self.name}-status"))
        try:
            live = await asyncio.to_thread(self._load_live, type(main_pos))
            if live is not None and live[0].seq > self.store.visible_seq:
                # the log lost its tail in a crash after the split: new records will reuse those numbers,
                # so forget the live lane; the backlog drain sends from its cursor (at least once)
                log.warning("publisher %s: the live lane began at record %s, beyond the recovered log; "
                            "resending from %s", self.name, live[0], main_pos)
                await asyncio.to_thread(self.state_path.unlink, True)
                live = None
            if live is not None and main_pos >= live[0]:  # the backlog was done: merge
                main_pos = max(main_pos, live[1])
                await asyncio.to_thread(self._merge, main_pos)
                live = None
            head = _Drain(self, main_pos, self._save_main, live=False)
            if live is not None:
                head.stop = live[0]
                self.drains = [head, _Drain(self, live[1], self._save_live_with(live[0]), live=True)]
            else:
                self.drains = [head]
            await self._supervise(tasks)
        finally:
            for t in tasks:
                t.cancel()
            drain_tasks = [t for d in self.drains for t in d._tasks]
            for t in drain_tasks:
                t.cancel()
            await asyncio.gather(*tasks, *drain_tasks, return_exceptions=True)
            # keep what was acknowledged: the next start sends less again (a cancelled task may still await)
            for d in self.drains:
                if d.acked != d.saved:
                    await asyncio.shield(asyncio.to_thread(d.save, d.acked))

    async def _supervise(self, tasks: list[asyncio.Task[Any]]) -> None:
        """Runs the drains; splits off a live drain when a backlog builds up, merges when it is done."""
        for d in self.drains:
            self._start(d)
        while True:
            backlog = self.drains[0] if len(self.drains) == 2 else None
            waits = [*tasks, *(t for d in self.drains for t in d._tasks)]
            if backlog is not None:
                fin = asyncio.create_task(backlog.finished.wait())
                done, _ = await asyncio.wait([*waits, fin], timeout=0.25, return_when=asyncio.FIRST_COMPLETED)
                fin.cancel()
            else:
                done, _ = await asyncio.wait(waits, timeout=0.25, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                if t in waits:
                    t.result()  # a crashed lane or drain: raise to the runtime's supervisor
            if backlog is not None and backlog.finished.is_set():
                live = self.drains[1]
                for t in backlog._tasks:
                    t.cancel()
                live.save = self._save_main
                live.saved = None
                await live.flush()
                await asyncio.to_thread(self._drop_live_file)
                live.live = False  # now the only drain
                self.drains = [live]
                self.stats.live_lane = False
                log.info("publisher %s: backlog drained; the live lane is the only lane again", self.name)
            elif backlog is None and self._should_split(self.drains[0]):
                await self._split(self.drains[0])

    def _start(self, d: _Drain) -> None:
        d._tasks = [asyncio.create_task(d.run(), name=f"{self.name}-drain"),
                    asyncio.create_task(d.saver(), name=f"{self.name}-saver")]

    def _should_split(self, d: _Drain) -> bool:
        if not d.behind:
            return False
        if self.cfg.publishing_order == "newest_first":
            return True
        oldest = d.oldest_ns
        return oldest is not None and time.time() - oldest / NS > self.cfg.live_after

    async def _split(self, d: _Drain) -> None:
        split_at = type(d.position)(self.store.visible_seq, 0)  # every record below it is readable
        if split_at <= d.position:
            return
        await asyncio.to_thread(self._save_live(split_at, split_at))
        d.stop = split_at
        live = _Drain(self, split_at, self._save_live_with(split_at), live=True)
        self.drains = [d, live]
        self._start(live)
        self.stats.live_lane = True
        log.info("publisher %s: a backlog is draining (oldest unsent value %s); fresh data goes by a live lane "
                 "from record %s", self.name, _iso(d.oldest_ns), split_at)

    # --- cursors ------------------------------------------------------------------------

    def _save_main(self, pos: Any) -> None:
        self.store.save_cursor(self.cursor_name, pos)

    def _save_live_with(self, split_at: Any) -> Callable[[Any], None]:
        return lambda pos: self._save_live(split_at, pos)()

    def _save_live(self, split_at: Any, pos: Any) -> Callable[[], None]:
        def save() -> None:
            write_json_atomic(self.state_path, {"splitAt": split_at.as_dict(), "live": pos.as_dict()})
        return save

    def _load_live(self, position_type: Any) -> tuple[Any, Any] | None:
        if not self.state_path.exists():
            return None
        try:
            d = json.loads(self.state_path.read_text())
            return position_type(**d["splitAt"]), position_type(**d["live"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            log.error("publisher %s: %s unreadable (%s); the backlog drain will send the live range again",
                      self.name, self.state_path, exc)
            return None

    def _merge(self, pos: Any) -> None:
        self.store.save_cursor(self.cursor_name, pos)
        self._drop_live_file()

    def _drop_live_file(self) -> None:
        self.state_path.unlink(missing_ok=True)

    # --- preparing a chunk (worker thread) ---------------------------------------------

    def prepare(self, table: pa.Table) -> _Prepared:
        """Filter, check and build the requests of one chunk; dead-letter (fsynced) what cannot go."""
        streams = table.column("stream")
        drop = self.skip() if self.skip else set()
        if drop or self._filtered:
            names = pc.unique(streams.cast(pa.string())).to_pylist()
            keep = [s for s in names if s not in drop and self._cached(self._allowed_cache, self._allowed, s)]
            if len(keep) < len(names):
                table = table.filter(pc.is_in(streams.cast(pa.string()), pa.array(keep, pa.string())))
        out = _Prepared([])
        if table.num_rows == 0:
            return out
        out.streams = len(pc.unique(table.column("stream")))
        now = time.time()
        if self.cfg.cutoff is not None or self._exports:
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
            out.lanes = build_requests(table, len(self.lanes))
        return out

    def _route_old(self, table: pa.Table, now: float) -> tuple[pa.Table, int, int]:
        """Values older than the cutoff (or SiteWise's 7 days): to an S3 export covering them, else dead letters."""
        limit = MAX_AGE_S - AGE_MARGIN_S if self.cfg.cutoff is None else min(self.cfg.cutoff, MAX_AGE_S - AGE_MARGIN_S)
        old = pc.less(table.column("time").cast(pa.int64()), int((now - limit) * NS))
        if not pc.any(old).as_py():
            return table, 0, 0
        old_rows = table.filter(old)
        names = pc.unique(old_rows.column("stream").cast(pa.string())).to_pylist()
        covered = [s for s in names if self._cached(self._s3_cache, self._covered, s)]
        in_s3 = pc.is_in(old_rows.column("stream").cast(pa.string()), pa.array(covered, pa.string()))
        n_s3 = int(pc.sum(in_s3).as_py() or 0)
        dead = old_rows.filter(pc.invert(in_s3))
        if dead.num_rows:
            why = (f"older than the cutoff ({self.cfg.cutoff:g}s) and no S3 export covers the stream"
                   if self.cfg.cutoff is not None else
                   "TimestampOutOfRangeException: older than 7 days and no S3 export covers the stream")
            self.deadletters.append(build_entries(dead), why)
            log.error("publisher %s: %d values dead-lettered: %s", self.name, dead.num_rows, why)
        return table.filter(pc.invert(old)), n_s3, dead.num_rows

    def _covered(self, stream: str) -> bool:
        return any(f(stream) for f in self._exports)

    @staticmethod
    def _cached(cache: dict[str, bool], fn: Callable[[str], bool], stream: str) -> bool:
        hit = cache.get(stream)
        if hit is None:
            if len(cache) > 100_000:
                cache.clear()
            hit = cache[stream] = fn(stream)
        return hit

    def account(self, p: _Prepared) -> None:
        self.stats.values_rejected += p.rejected
        self.stats.values_to_s3 += p.to_s3

    # --- sending ------------------------------------------------------------------------

    async def deliver(self, entries: list[dict[str, Any]]) -> None:
        """Send one request of the log until every value is delivered, parked or dead-lettered."""
        failures = await self.send(entries)
        if failures:
            await self._dead_letter(failures)

    async def send(self, entries: list[dict[str, Any]]) -> list[Failure]:
        """Send until nothing retryable is left; returns the permanent per-entry failures."""
        attempt = 0
        pending = entries
        failures: list[Failure] = []
        while pending:
            await self._wait_pause()
            await self.limits.acquire(sum(len(e["propertyValues"]) for e in pending),
                                      [entry_key(e) for e in pending])
            self.stats.rate_wait_s = self.limits.waited
            try:
                response = await asyncio.to_thread(self.client.batch_put_asset_property_value,
                                                   entries=pending, enablePartialEntryProcessing=True)
            except botocore.exceptions.ParamValidationError as exc:  # botocore refuses to send it: never will
                self._count("ParamValidationError")
                failures += await self._split_invalid(pending, f"InvalidRequestException: {exc}")
                return failures
            except botocore.exceptions.ClientError as exc:
                kind, retryable, message = classify_client_error(exc)
            except (botocore.exceptions.BotoCoreError, OSError) as exc:
                kind, retryable, message = type(exc).__name__, True, f"{type(exc).__name__}: {exc}"
            else:
                self._recovered()
                pending, failed = self._handle_response(pending, response)
                failures += failed
                if pending:
                    attempt += 1
                    self.stats.retries += 1
                    await asyncio.sleep(self._backoff(attempt))
                continue
            self._count(kind)
            self.stats.last_error = message
            if not retryable:
                failures += await self._split_invalid(pending, message)
                return failures
            attempt += 1
            self.stats.retries += 1
            self._failed(kind, message)
        return failures

    async def _split_invalid(self, entries: list[dict[str, Any]], message: str) -> list[Failure]:
        """A request refused whole: send its entries one by one so only the bad one is dead-lettered."""
        if len(entries) == 1:
            return [(entries[0], message.partition(":")[0], message)]
        out: list[Failure] = []
        for e in entries:
            out += await self.send([{**e, "entryId": "e0"}])
        return out

    async def _wait_pause(self) -> None:
        while (delay := self._pause_until - time.monotonic()) > 0:  # noqa: ASYNC110 - a deadline that may move on
            await asyncio.sleep(delay)

    def _failed(self, kind: str, message: str) -> None:
        """A whole request failed with something that passes: every lane pauses (shared back-off)."""
        self._fail_streak += 1
        if kind in THROTTLING or "429" in kind:
            self.stats.throttled += 1
            self.stats.state = "throttled"
        else:
            self.stats.state = "auth-error" if kind in AUTH_ERRORS else "retrying"
        delay = self._backoff(self._fail_streak)
        self._pause_until = max(self._pause_until, time.monotonic() + delay)
        if self._fail_streak == 1 or math.log2(self._fail_streak).is_integer():
            log.warning("publisher %s: %s; retrying in %.1fs (%d failures in a row)", self.name, message, delay,
                        self._fail_streak)

    def _recovered(self) -> None:
        if self._fail_streak:
            log.info("publisher %s: the endpoint answers again after %d failed requests", self.name,
                     self._fail_streak)
            self._fail_streak = 0
            if self.stats.state in ("retrying", "auth-error", "throttled"):
                self.stats.state = "sending"

    def _backoff(self, attempt: int) -> float:
        base = self.cfg.min_retry_interval * 2 ** min(attempt - 1, 20)
        return min(self.cfg.max_retry_interval, base) * random.uniform(0.5, 1.0)

    def _handle_response(self, sent: list[dict[str, Any]], response: dict[str, Any]
                         ) -> tuple[list[dict[str, Any]], list[Failure]]:
        """Account for a 200 response: (entries to send again, permanent failures)."""
        by_id = {e["entryId"]: e for e in sent}
        retry: list[dict[str, Any]] = []
        failures: list[Failure] = []
        failed_values = 0
        for err_entry in response.get("errorEntries", []):
            entry = by_id.get(err_entry["entryId"])
            if entry is None:
                continue
            for err in err_entry.get("errors", []):
                stamps = {(t["timeInSeconds"], t.get("offsetInNanos", 0)) for t in err.get("timestamps", [])}
                values = [v for v in entry["propertyValues"]
                          if not stamps or (v["timestamp"]["timeInSeconds"], v["timestamp"]["offsetInNanos"]) in stamps]
                if not values:
                    continue
                failed_values += len(values)
                part = {**entry, "propertyValues": values}
                code = err["errorCode"]
                self._count(code)
                if code in RETRYABLE_CODES:
                    retry.append(part)
                    if code in THROTTLING:
                        self.stats.throttled += 1
                else:
                    failures.append((part, code, f"{code}: {err.get('errorMessage', '')}"))
        total = sum(len(e["propertyValues"]) for e in sent)
        self.stats.values_sent += total - failed_values
        self.stats.requests_sent += 1
        self.stats.last_success = time.time()
        for i, e in enumerate(retry):
            e["entryId"] = f"r{i}"
        return retry, failures

    def _count(self, kind: str) -> None:
        self.stats.errors[kind] = self.stats.errors.get(kind, 0) + 1

    async def _dead_letter(self, failures: list[Failure]) -> None:
        """Park what may pass later, dead-letter the rest; durable before the caller acknowledges."""
        now = time.time()
        parked = [f for f in failures if f[1] == PARKED_CODE and self.cfg.park_unknown_for > 0]
        dead = [f for f in failures if f not in parked]
        if parked:
            n = sum(len(e["propertyValues"]) for e, _, _ in parked)
            self.stats.values_parked += n
            for reason in sorted({r for _, _, r in parked}):
                await asyncio.to_thread(self.deadletters.append, [e for e, _, r in parked if r == reason], reason,
                                        "parked", now + self.cfg.park_unknown_for,
                                        now + self.cfg.park_retry_interval)
            log.warning("publisher %s: %d values parked for %gs (%s); tried again every %gs", self.name, n,
                        self.cfg.park_unknown_for, parked[0][2], self.cfg.park_retry_interval)
            self._requeue_wake.set()
        if dead:
            n = sum(len(e["propertyValues"]) for e, _, _ in dead)
            self.stats.values_rejected += n
            for reason in sorted({r for _, _, r in dead}):
                await asyncio.to_thread(self.deadletters.append, [e for e, _, r in dead if r == reason], reason)
            log.error("publisher %s: %d values rejected permanently (%s); kept in %s", self.name, n, dead[0][2],
                      self.deadletter_path)

    # --- parked and replayed dead letters -------------------------------------------------

    async def _requeue_loop(self) -> None:
        """Sends parked records when due and replayed ones at once; removes them once accounted for."""
        while True:
            try:
                await asyncio.wait_for(self._requeue_wake.wait(), self.cfg.park_retry_interval)
            except TimeoutError:
                pass
            self._requeue_wake.clear()
            due, expired = await asyncio.to_thread(self.deadletters.due, time.time())
            if expired:
                n = sum(r.values for r in expired)
                self.stats.values_rejected += n
                log.error("publisher %s: %d parked values still refused after %gs: dead-lettered (%s)", self.name,
                          n, self.cfg.park_unknown_for, expired[0].reason)
            for i in range(0, len(due), MAX_ENTRIES):
                await self._requeue(due[i:i + MAX_ENTRIES])

    def wake_requeue(self) -> None:
        self._requeue_wake.set()

    async def _requeue(self, records: list[DeadLetter]) -> None:
        values = sum(r.values for r in records)
        # one record per request: send() renames entries as it splits and retries them, so a failure is
        # matched to its record by the request it came from, not by an entry id
        results = [(r, await self.send([{"entryId": "d0", **r.entry}])) for r in records]
        now = time.time()
        delivered = 0  # counted per record: other lanes send at the same time
        for record, failures in results:
            delivered += record.values - sum(len(entry["propertyValues"]) for entry, _, _ in failures)
            for entry, code, reason in failures:
                await self._refile(record, entry, code, reason, now)
        await asyncio.to_thread(self.deadletters.remove, {r.id for r in records})
        self.stats.values_replayed += delivered
        if delivered:
            log.info("publisher %s: %d of %d parked or replayed values delivered", self.name, delivered, values)

    async def _refile(self, record: DeadLetter, entry: dict[str, Any], code: str, reason: str, now: float) -> None:
        """A replayed value refused again: parked once more while its parking lasts, else dead."""
        if code == PARKED_CODE and record.state == "parked" and (record.parked_until or 0) > now:
            await asyncio.to_thread(self.deadletters.append, [entry], record.reason, "parked",
                                    record.parked_until, now + self.cfg.park_retry_interval)
        else:
            self.stats.values_rejected += len(entry["propertyValues"])
            await asyncio.to_thread(self.deadletters.append, [entry], reason)

    def replay(self, flt: DeadLetterFilter, rewrite_alias: str | None = None) -> list[DeadLetter]:
        """Mark dead letters for sending again (blocking: call from a thread); the requeue loop sends them."""
        return self.deadletters.mark_replay(flt, rewrite_alias)

    # --- status ---------------------------------------------------------------------------

    def status(self) -> dict[str, object]:
        oldest = [d.oldest_ns for d in self.drains if d.oldest_ns is not None]
        self.stats.oldest_unsent_ns = min(oldest) if oldest else None
        return self.stats.as_dict()

    async def _status_loop(self) -> None:
        """Values/s over the last 10 s, and a summary line every ``status_log_interval``."""
        samples: collections.deque[tuple[float, int]] = collections.deque(maxlen=11)
        next_log = time.monotonic() + self.cfg.status_log_interval
        logged = (-1, -1)
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            samples.append((now, self.stats.values_sent))
            t0, v0 = samples[0]
            self.stats.rate = (self.stats.values_sent - v0) / (now - t0) if now > t0 else 0.0
            if now >= next_log:
                next_log = now + self.cfg.status_log_interval
                s = self.status()
                mark = (self.stats.values_sent, self.stats.values_rejected + self.stats.retries)
                if mark != logged or s["oldestUnsentAgeSeconds"] is not None:
                    logged = mark
                    log.info("publisher %s: %s, %d values sent (%.0f/s), oldest unsent %s, %d retries, %d "
                             "dead-lettered, %d parked, %d to S3, errors %s%s", self.name, s["state"],
                             self.stats.values_sent, self.stats.rate, _age(s["oldestUnsentAgeSeconds"]),
                             self.stats.retries, self.stats.values_rejected, self.stats.values_parked,
                             self.stats.values_to_s3, self.stats.errors or "none",
                             ", live lane on" if self.stats.live_lane else "")


def _age(seconds: object) -> str:
    return "none" if seconds is None else f"{float(seconds):.0f}s ago"  # type: ignore[arg-type]


def _iso(ns: int | None) -> str:
    return "none" if ns is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns / NS))
