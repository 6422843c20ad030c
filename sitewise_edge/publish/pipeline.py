"""The SiteWise publisher's pipeline: drains read the log from a durable cursor, lanes send.

    pipeline = Pipeline(config, store, stats, prepare, deliver, cursor_name="publisher-cloud",
                        state_path=data_dir / "publishers" / "cloud.json", endpoint="http://cloud:8080")
    await pipeline.run(helpers=[requeue_task])   # until cancelled; raises what a lane, drain or helper raised
    pipeline.oldest_ns                           # the oldest value not yet acknowledged, for the status

**Drains and lanes.** A drain reads the log in chunks from its position; ``prepare`` (in a worker
thread) filters and checks a chunk. Rows then *gather* across chunks (:func:`~sitewise_edge.publish.
requests.gather`): a stream's values go out once they fill entries of 10, so requests carry 10 entries
× 10 values whenever a backlog exists, also with thousands of streams; a partial entry waits at most
``batch_interval`` (or until its chunk is the oldest of a full window) and then goes as it is. Every
stream belongs to one of ``max_in_flight`` lanes; a lane sends its requests in order through
``deliver``, the lanes run concurrently. A drain reads ahead at most ``WINDOW_CHUNKS`` chunks; a
chunk is acknowledged when its last row has left the gatherer and every request holding one of its
rows was delivered (or dead-lettered durably), and the cursor moves to the end of the longest run of
acknowledged chunks, saved by a background task (one save at a time). So the saved cursor never
passes an undelivered value: at-least-once, and after a crash only the window is sent again.

**Live lane.** When the oldest unsent value is older than ``live_after`` and more is waiting
(``newest_first``: whenever more is waiting), the log is split at its head: the running drain
becomes the backlog drain and stops there; a live drain sends from the head on, and lanes serve
live requests first. The split point and the live drain's position are kept in ``state_path``;
when the backlog drain reaches the split point, the cursor jumps to the live drain's position
and the file goes. The ranges are disjoint: the split sends nothing twice.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sitewise_edge.clock import NS_PER_S, SYSTEM_CLOCK, Clock
from sitewise_edge.config import SitewisePublisher
from sitewise_edge.files import write_json_atomic
from sitewise_edge.publish.base import LogSource, P
from sitewise_edge.publish.requests import (
    CHUNK,
    MAX_ENTRIES,
    MAX_VALUES,
    Entry,
    StreamTypes,
    build_requests,
    entry_key,
    gather,
)
from sitewise_edge.publish.stats import SitewiseStats

log = logging.getLogger(__name__)

REQUESTS_PER_LANE_CHUNK = 10
"""A chunk holds about this many full requests per lane: ``max_in_flight`` × 1,000 values."""
WINDOW_CHUNKS = 6
"""Chunks a drain reads ahead of its cursor (unacknowledged at most); rows gather over all but the newest."""
MAX_CHUNK_ROWS = 50_000
"""With many streams a chunk grows (up to this) until it holds 20 values per stream."""
QUEUED_PER_LANE = 2
"""A drain reads no more while the lanes hold this many requests per lane not yet started."""
LIVE_READS = 4
"""Caught up, a drain reads about this many times per ``batch_interval``: rows gather between reads."""


@dataclass
class Prepared:
    """One chunk, ready to send: the rows that go to SiteWise, and what was taken out of it before."""

    table: pa.Table | None = None
    rejected: int = 0
    to_s3: int = 0
    oldest_ns: int | None = None
    streams: int = 0


Prepare = Callable[[pa.Table], Prepared]
"""Filter and check the rows of one chunk (blocking: runs in a worker thread)."""
Deliver = Callable[[list[Entry]], Awaitable[None]]
"""Send one request until every value is delivered, parked or dead-lettered."""


@dataclass
class _Chunk(Generic[P]):
    end: P
    pending: int  # request groups holding its rows, +1 while rows of it wait in the gatherer
    oldest_ns: int | None
    id: int = 0
    read_at: float = 0.0  # monotonic


@dataclass
class _Group(Generic[P]):
    """The requests of one gathering step, over all lanes: its chunks are told once all are done."""

    drain: _Drain[P]
    chunks: list[_Chunk[P]]
    left: int


@dataclass
class _Job(Generic[P]):
    group: _Group[P]
    entries: list[Entry]
    keys: list[tuple[int, str]]  # (drain, stream) of every entry


class _Lane(Generic[P]):
    """Sends its requests in order, several at a time; live work before backlog work.

    A request starts once no earlier unfinished request of its drain holds one of its streams, so the
    requests of a stream go one after the other (time order per stream), while a request waiting out a
    back-off lets the others of the lane go on. At most ``parallel`` requests of a lane are under way;
    how many are on the wire at once is the publisher's adaptive limit."""

    def __init__(self, deliver: Deliver, parallel: int) -> None:
        self.deliver = deliver
        self.parallel = parallel
        self.live: collections.deque[_Job[P]] = collections.deque()
        self.backlog: collections.deque[_Job[P]] = collections.deque()
        self.busy: dict[tuple[int, str], int] = {}  # streams of the requests under way, with their count
        self.running = 0
        self.wake = asyncio.Event()

    def put(self, drain: _Drain[P], group: _Group[P], requests: list[list[Entry]]) -> None:
        queue = self.live if drain.live else self.backlog
        d = id(drain)
        queue.extend(_Job(group, entries, [(d, entry_key(e)) for e in entries]) for entries in requests)
        self.wake.set()

    def _next(self) -> _Job[P] | None:
        if self.running >= self.parallel:
            return None
        for queue in (self.live, self.backlog):  # the drains' ranges are disjoint: one never waits for the other
            if queue and not any(k in self.busy for k in queue[0].keys):
                return queue.popleft()
        return None

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:  # a failed request raises here; a cancel cancels them all
            while True:
                job = self._next()
                if job is None:
                    self.wake.clear()
                    await self.wake.wait()
                    continue
                self.running += 1
                for k in job.keys:
                    self.busy[k] = self.busy.get(k, 0) + 1
                tasks.create_task(self._send(job))

    async def _send(self, job: _Job[P]) -> None:
        await self.deliver(job.entries)
        self.running -= 1
        for k in job.keys:
            n = self.busy[k] - 1
            if n:
                self.busy[k] = n
            else:
                del self.busy[k]
        group = job.group
        group.left -= 1
        if group.left == 0:
            for chunk in group.chunks:
                group.drain.done(chunk)
        group.drain._changed.set()  # a request less queued: the drain may read again
        self.wake.set()


class _Drain(Generic[P]):
    """Reads the log from ``position`` (up to ``stop``, if set) and feeds the lanes chunk by chunk."""

    def __init__(self, pipe: Pipeline[P], position: P, save: Callable[[P], None], live: bool) -> None:
        self.pipe = pipe
        self.position = position  # next row to read
        self.acked = position  # every row before it is delivered or accounted for
        self.saved: P | None = position
        self.stop: P | None = None
        self.live = live
        self.save = save
        self.window: collections.deque[_Chunk[P]] = collections.deque()
        self.behind = False  # the last read was full: more is waiting
        self.held: pa.Table | None = None  # rows waiting in the gatherer for more of their stream
        self.held_chunks: dict[int, _Chunk[P]] = {}  # the chunks with rows in ``held``
        self._next_id = 0
        self.finished = asyncio.Event()
        self._changed = asyncio.Event()
        self._dirty = asyncio.Event()
        self._save_lock = asyncio.Lock()  # one save at a time, so a later position is never overwritten
        self._saving: asyncio.Future[None] | None = None  # the save in a worker thread (it outlives a cancel)
        self.tasks: list[asyncio.Task[None]] = []

    @property
    def oldest_ns(self) -> int | None:
        stamps = [c.oldest_ns for c in self.window if c.oldest_ns is not None]
        return min(stamps) if stamps else None

    def start(self, name: str) -> None:
        self.tasks = [asyncio.create_task(self.run(), name=f"{name}-drain"),
                      asyncio.create_task(self.saver(), name=f"{name}-saver")]

    def done(self, chunk: _Chunk[P]) -> None:
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
                self._saving = asyncio.ensure_future(asyncio.to_thread(self.save, pos))
                await asyncio.shield(self._saving)
                self.saved = pos

    async def settle(self) -> None:
        """After a cancel: wait for a save still running in its thread, then save what was acknowledged
        (two saves at once would race on the same temporary file)."""
        if self._saving is not None:
            await asyncio.gather(self._saving, return_exceptions=True)
        if self.acked != self.saved:
            await asyncio.to_thread(self.save, self.acked)
            self.saved = self.acked

    async def _wait_changed(self) -> None:
        self._changed.clear()
        await self._changed.wait()

    async def run(self) -> None:
        pipe = self.pipe
        rows = pipe.chunk_rows
        while True:
            if self.stop is not None and self.position >= self.stop:
                await self._gather(None, flush=True)  # the end of the range: what waits goes as it is
                while self.window:  # wait until the rest of the range is acknowledged
                    await self._wait_changed()
                await self.flush()
                self.finished.set()
                return
            # read once the window has room and the lanes little queued: while the endpoint is the bound, the log
            # fills meanwhile and the next read is a full chunk, so entries fill instead of going out by age
            while len(self.window) >= WINDOW_CHUNKS or pipe.queued(self.live) >= QUEUED_PER_LANE * len(pipe.lanes):
                await self._wait_changed()
            table, next_pos = await asyncio.to_thread(self._read, self.position, rows)
            if table.num_rows == 0:
                self.behind = False
                if self.stop is not None:  # nothing left before the split point (or it was lost)
                    self.position = max(self.position, self.stop)
                    continue
                if self.held_chunks:
                    await self._gather(None)  # what waited long enough goes
                if not self.window:
                    pipe.stats.state = "idle"
                await pipe.store.wait_for_data(self._wait_for_more())
                continue
            self.behind = table.num_rows >= rows
            if pipe.stats.state in ("starting", "idle"):  # a failing state stays until a request passes
                pipe.stats.state = "sending"
            prepared = await asyncio.to_thread(pipe.prepare, table)
            pipe.stats.values_rejected += prepared.rejected
            pipe.stats.values_to_s3 += prepared.to_s3
            pipe.stats.values_read += table.num_rows
            pipe.stats.values_forwardable += 0 if prepared.table is None else prepared.table.num_rows
            if self.behind:  # a backlog: chunks big enough for full entries (10 values of a stream)
                rows = min(MAX_CHUNK_ROWS, max(pipe.chunk_rows, 2 * MAX_VALUES * prepared.streams))
            self.position = next_pos
            chunk = _Chunk(next_pos, 1, prepared.oldest_ns, self._next_id, pipe.clock.monotonic())
            self._next_id += 1
            self.window.append(chunk)
            self.held_chunks[chunk.id] = chunk
            await self._gather(prepared.table, flush=self.stop is not None and self.position >= self.stop)
            if not self.behind:  # caught up: let values gather between reads, so entries fill
                await asyncio.sleep(self.hold() / LIVE_READS)

    def hold(self) -> float:
        """How long a partial entry waits for more values of its stream: ``batch_interval``; for the live drain
        while a backlog drains (``oldest_first``), half of ``live_after``.

        Its lanes look idle to the live drain whenever no live request waits, so with the short hold it sent
        entries of one value each (10 values a request) ahead of the backlog's full ones: with an endpoint
        bound by requests/s, the drain fell from ~5,000 to 5-800 values/s for 20 s after the split. Held
        longer, sparse streams gather several values per entry, and fresh data still arrives within
        ``live_after``."""
        cfg = self.pipe.config
        if self.live and len(self.pipe.drains) == 2 and cfg.publishing_order == "oldest_first":
            return max(cfg.batch_interval, cfg.live_after / 2)
        return cfg.batch_interval

    def _wait_for_more(self) -> float:
        """How long to wait for new data: at most until the oldest waiting row is due."""
        interval = self.hold()
        if not self.held_chunks:
            return interval
        first = min(c.read_at for c in self.held_chunks.values())
        floor = interval / LIVE_READS if self.pipe.queued(self.live) else 0.0  # overdue rows wait for idle lanes
        return max(floor, min(interval, first + interval - self.pipe.clock.monotonic()))

    async def _gather(self, new: pa.Table | None, flush: bool = False) -> None:
        """Join the new rows to those waiting, send the full entries and what is due, keep the rest."""
        pipe = self.pipe
        ids = sorted(self.held_chunks)
        force_below = ids[-1] - (WINDOW_CHUNKS - 2) if ids else 0  # the oldest chunk of a full window goes
        if not self.behind and pipe.queued(self.live) == 0:  # partial entries go by age only to idle lanes
            due = pipe.clock.monotonic() - self.hold()
            force_below = max(force_below, *(i + 1 for i in ids if self.held_chunks[i].read_at <= due), 0)
        chunk_id = ids[-1] if new is not None and ids else -1
        lanes, sent_ids, left_ids, self.held = await asyncio.to_thread(
            _gather_requests, self.held, new, chunk_id, force_below, flush, len(pipe.lanes), pipe.types)
        if lanes:
            chunks = [self.held_chunks[i] for i in sent_ids]
            requests = [r for lane in lanes for r in lane]
            group = _Group(self, chunks, len(requests))
            for c in chunks:
                c.pending += 1
            for i, reqs in enumerate(lanes):
                if reqs:
                    pipe.lanes[i].put(self, group, reqs)
        for i in ids:  # chunks whose last row left the gatherer (or that had none to send)
            if i not in left_ids:
                self.done(self.held_chunks.pop(i))

    def _read(self, position: P, rows: int) -> tuple[pa.Table, P]:
        """``store.read``, but never past ``stop`` (found by bisection on the row count: rare)."""
        store = self.pipe.store
        table, next_pos = store.read(position, rows)
        stop = self.stop
        if stop is None or next_pos <= stop:
            return table, next_pos
        lo, hi = 0, table.num_rows  # the largest row count that ends at or before stop
        while lo < hi:
            mid = (lo + hi + 1) // 2
            _, p = store.read(position, mid)
            if p <= stop:
                lo = mid
            else:
                hi = mid - 1
        return store.read(position, lo) if lo else (table.slice(0, 0), position)


def _gather_requests(held: pa.Table | None, new: pa.Table | None, chunk_id: int, force_below: int, flush: bool,
                     lanes: int, types: StreamTypes | None = None
                     ) -> tuple[list[list[list[Entry]]], set[int], set[int], pa.Table | None]:
    """One gathering step (worker thread): requests per lane, the chunk ids sent from and still waiting,
    the rows that wait."""
    parts = [] if held is None else [held]
    if new is not None and new.num_rows:
        parts.append(new.append_column(CHUNK, pa.array(np.full(new.num_rows, chunk_id, dtype=np.int64))))
    if not parts:
        return [], set(), set(), None
    table = pa.concat_tables(parts, promote_options="permissive") if len(parts) > 1 else parts[0]
    if table.num_rows == 0:
        return [], set(), set(), None
    now, wait = gather(table, force_below, flush)
    sent = set(pc.unique(now.column(CHUNK)).to_pylist()) if now.num_rows else set()
    left = set(pc.unique(wait.column(CHUNK)).to_pylist()) if wait.num_rows else set()
    lanes_out = build_requests(now.drop_columns([CHUNK]), lanes, types) if now.num_rows else []
    return lanes_out, sent, left, wait if wait.num_rows else None


class Pipeline(Generic[P]):
    """The drains and lanes of one SiteWise destination, for one run (a restart builds a new one)."""

    def __init__(self, config: SitewisePublisher, store: LogSource[P], stats: SitewiseStats, prepare: Prepare,
                 deliver: Deliver, *, cursor_name: str, state_path: Path, endpoint: str,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.config = config
        self.clock = clock
        self.endpoint = endpoint
        self.name = config.name
        self.store = store
        self.stats = stats
        self.prepare = prepare
        self.cursor_name = cursor_name
        self.state_path = state_path
        self.chunk_rows = config.max_in_flight * REQUESTS_PER_LANE_CHUNK * MAX_ENTRIES * MAX_VALUES
        self.lanes: list[_Lane[P]] = [_Lane(deliver, 2 * config.max_in_flight) for _ in range(config.max_in_flight)]
        self.drains: list[_Drain[P]] = []
        self.types = StreamTypes()  # each stream's value type, for its nulls

    def queued(self, live: bool) -> int:
        """Requests of the live (or the backlog) drain waiting in the lanes, not yet started."""
        return sum(len(lane.live if live else lane.backlog) for lane in self.lanes)

    @property
    def oldest_ns(self) -> int | None:
        """The time of the oldest value read but not yet acknowledged."""
        oldest = [d.oldest_ns for d in self.drains if d.oldest_ns is not None]
        return min(oldest) if oldest else None

    async def run(self, helpers: Sequence[asyncio.Task[None]] = ()) -> None:
        """Send from the cursor until cancelled. ``helpers`` are supervised along (their failure raises
        here) and cancelled at the end; what was acknowledged is saved, even when cancelled."""
        tasks = [*helpers]
        tasks += [asyncio.create_task(lane.run(), name=f"{self.name}-lane{i}") for i, lane in enumerate(self.lanes)]
        try:
            main_pos = self.store.cursor(self.cursor_name)
            log.info("publisher %s: forwarding to %s from %s", self.name, self.endpoint, main_pos)
            self.drains = await self._resume(main_pos)
            await self._supervise(tasks)
        finally:
            for t in tasks:
                t.cancel()
            drain_tasks = [t for d in self.drains for t in d.tasks]
            for t in drain_tasks:
                t.cancel()
            await asyncio.gather(*tasks, *drain_tasks, return_exceptions=True)
            # keep what was acknowledged: the next start sends less again (a cancelled task may still await)
            for d in self.drains:
                await asyncio.shield(d.settle())

    async def _resume(self, main_pos: P) -> list[_Drain[P]]:
        """The drains to start with: one from the cursor, and a live one when a split was saved."""
        live = await asyncio.to_thread(self._load_live, type(main_pos))
        if live is not None and live[0].seq > self.store.visible_seq:
            # the log lost its tail in a crash after the split: new records will reuse those numbers,
            # so forget the live lane; the backlog drain sends from its cursor (at least once)
            log.warning("publisher %s: the live lane began at record %s, beyond the recovered log; "
                        "resending from %s", self.name, live[0], main_pos)
            await asyncio.to_thread(self._drop_live_file)
            live = None
        if live is not None and main_pos >= live[0]:  # the backlog was done: merge
            main_pos = max(main_pos, live[1])
            await asyncio.to_thread(self._merge, main_pos)
            live = None
        head = _Drain(self, main_pos, self._save_main, live=False)
        if live is None:
            return [head]
        head.stop = live[0]
        return [head, _Drain(self, live[1], self._save_live_with(live[0]), live=True)]

    async def _supervise(self, tasks: list[asyncio.Task[None]]) -> None:
        """Runs the drains; splits off a live drain when a backlog builds up, merges when it is done."""
        for d in self.drains:
            d.start(self.name)
        while True:
            backlog = self.drains[0] if len(self.drains) == 2 else None
            waits = [*tasks, *(t for d in self.drains for t in d.tasks)]
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
                await self._backlog_done(backlog, self.drains[1])
            elif backlog is None and self._should_split(self.drains[0]):
                await self._split(self.drains[0])

    async def _backlog_done(self, backlog: _Drain[P], live: _Drain[P]) -> None:
        """The backlog reached the split point: the live drain's position becomes the cursor."""
        for t in backlog.tasks:
            t.cancel()
        live.save = self._save_main
        live.saved = None
        await live.flush()
        await asyncio.to_thread(self._drop_live_file)
        live.live = False  # now the only drain
        self.drains = [live]
        self.stats.live_lane = False
        log.info("publisher %s: backlog drained; the live lane is the only lane again", self.name)

    def _should_split(self, d: _Drain[P]) -> bool:
        if not d.behind:
            return False
        if self.config.publishing_order == "newest_first":
            return True
        oldest = d.oldest_ns
        return oldest is not None and self.clock.time() - oldest / NS_PER_S > self.config.live_after

    async def _split(self, d: _Drain[P]) -> None:
        split_at = type(d.position)(self.store.visible_seq, 0)  # every record below it is readable
        if split_at <= d.position:
            return
        await asyncio.to_thread(self._save_live, split_at, split_at)
        d.stop = split_at
        live = _Drain(self, split_at, self._save_live_with(split_at), live=True)
        self.drains = [d, live]
        live.start(self.name)
        self.stats.live_lane = True
        log.info("publisher %s: a backlog is draining (oldest unsent value %s); fresh data goes by a live lane "
                 "from record %s", self.name, _iso(d.oldest_ns), split_at)

    # --- cursors (blocking: called in worker threads) --------------------------------------

    def _save_main(self, pos: P) -> None:
        self.store.save_cursor(self.cursor_name, pos)

    def _save_live_with(self, split_at: P) -> Callable[[P], None]:
        return lambda pos: self._save_live(split_at, pos)

    def _save_live(self, split_at: P, pos: P) -> None:
        write_json_atomic(self.state_path, {"splitAt": split_at.as_dict(), "live": pos.as_dict()})

    def _load_live(self, position_type: type[P]) -> tuple[P, P] | None:
        if not self.state_path.exists():
            return None
        try:
            d = json.loads(self.state_path.read_text())
            return position_type(**d["splitAt"]), position_type(**d["live"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            log.error("publisher %s: %s unreadable (%s); the backlog drain will send the live range again",
                      self.name, self.state_path, exc)
            return None

    def _merge(self, pos: P) -> None:
        self.store.save_cursor(self.cursor_name, pos)
        self._drop_live_file()

    def _drop_live_file(self) -> None:
        self.state_path.unlink(missing_ok=True)


def _iso(ns: int | None) -> str:
    return "none" if ns is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns / NS_PER_S))
