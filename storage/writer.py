"""The store's single writer: batches into the WAL, made durable (fsync per frame or group commit), then visible.

    writer = LogWriter(state)
    report, last_seq = writer.recover()      # blocking: the WAL read back, a torn tail cut, damage quarantined
    writer.start(next_seq)                   # blocking: the log opens for appends
    seq = await writer.append(batch)         # returns once the batch is durable and visible
    await writer.sync()                      # group commit (``fsync: 100ms``): acknowledges what is pending
    await writer.close()

Every append joins a queue. The append that holds the writer's lock drains everything queued (up to
:data:`FRAME_ROWS` rows) into **one** WAL frame, written (and, with ``fsync: batch``, fsynced) in one
hop to the writer's own thread; the appends that queued meanwhile are acknowledged by that one fsync. So concurrent
writers (sources, BatchPut requests, transforms) share frames and fsyncs instead of taking turns:
the fsync rate caps frames per second, not batches per second. All batches of a frame get the frame's
sequence number; their rows keep the order they were appended in (a later write of a key wins).

With an interval (``fsync: 100ms``), frames are written as above but acknowledged by the next
:meth:`LogWriter.sync` (run by :meth:`LogWriter.run_syncer`), which makes every frame written since the
last one durable, or fails them all if the fsync fails.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import pyarrow as pa

from sitewise_edge.errors import StoreError
from sitewise_edge.samples import SCHEMA
from storage import wal
from storage.recovery import Recovery, load_quarantine, recover
from storage.snapshot import Record
from storage.state import StoreState

log = logging.getLogger(__name__)
T = TypeVar("T")

FRAME_ROWS = 262_144  # rows drained into one frame (a single larger batch is still one frame of its own)


@dataclass(eq=False)
class _Request:
    batch: pa.RecordBatch | pa.Table
    done: asyncio.Future[int]
    taken: bool = field(default=False)


def _retrieve(fut: asyncio.Future[int]) -> None:
    """A waiter cancelled meanwhile never reads its result: mark a failure as seen (no 'never retrieved')."""
    if not fut.cancelled():
        fut.exception()


class LogWriter:
    """Owns the WAL of a store: recovery, appends, group commit and visibility."""

    def __init__(self, state: StoreState) -> None:
        self.state = state
        self._lock = asyncio.Lock()
        self._thread: ThreadPoolExecutor | None = None
        self._queue: list[_Request] = []  # appended, not yet in a frame
        self._pending: list[tuple[Record, list[_Request]]] = []  # written, waiting for the group commit
        self.frames = 0  # frames written this run (each holds every batch queued when it was cut)

    def _run(self, fn: Callable[..., T], *args: object) -> asyncio.Future[T]:
        """``fn(*args)`` in the writer's own thread. Not the default executor: reads (API queries, publishers)
        run there, and with them all busy a WAL write waited for a free thread: ingest stalled behind readers."""
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="store-writer")
        return asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    @property
    def unsynced(self) -> int:
        """Frames written to the WAL and waiting for the group commit that makes them durable."""
        return len(self._pending)

    def recover(self) -> tuple[Recovery, int]:
        """Read the WAL back (blocking): uncompacted records become resident, damage is quarantined
        (storage/recovery.py). Returns the report and the last seq."""
        state = self.state
        records, last_seq, report = recover(state.wal_dir, state.quarantine_dir, decode_after=state.compacted_through,
                                            now=state.clock.time())
        state.stats.values_lost += report.values_lost
        state.quarantine = load_quarantine(state.quarantine_dir)
        state.segments = wal.list_segments(state.wal_dir)
        state.publish(Record(seq, batch) for seq, batch in records)
        return report, last_seq

    def start(self, next_seq: int) -> None:
        """Open the log for appends from ``next_seq`` on."""
        self.state.log = wal.WalWriter(self.state.wal_dir, next_seq, self.state.config.segment_size)

    async def append(self, batch: pa.RecordBatch | pa.Table) -> int:
        """Make ``batch`` durable and visible. Returns the sequence number of its frame once it is accepted.

        Raises StoreError when the WAL cannot be written; nothing of the batch is then kept.
        """
        if batch.schema != SCHEMA:
            batch = batch.cast(SCHEMA)
        request = _Request(batch, asyncio.get_running_loop().create_future())
        request.done.add_done_callback(_retrieve)
        self._queue.append(request)
        async with self._lock:
            while not request.taken:  # the appends queued meanwhile go into the frame this one writes
                await self._write_queued()
        return await request.done

    def _take(self) -> list[_Request]:
        """The oldest queued requests, up to FRAME_ROWS rows (at least one)."""
        rows, count = 0, 0
        for request in self._queue:
            if count and rows + request.batch.num_rows > FRAME_ROWS:
                break
            rows += request.batch.num_rows
            count += 1
        taken, self._queue = self._queue[:count], self._queue[count:]
        for request in taken:
            request.taken = True
        return taken

    async def _write_queued(self) -> None:
        """Write the queued requests as one frame (holding the lock); resolve or park their futures."""
        taken = self._take()
        writer = self.state.log
        if writer is None:
            _fail(taken, StoreError("the store is closed", path=self.state.data_dir))
            return
        fsync_each = self.state.config.fsync_interval is None
        batches = [r.batch for r in taken]
        work = asyncio.ensure_future(self._run(self._write_sync, writer, batches, fsync_each))
        cancelled = False
        try:
            await asyncio.shield(work)
        except asyncio.CancelledError:
            cancelled = True
            if not work.done():
                await asyncio.wait({work})  # the writer is not shared: hold the lock until the thread is done
        except Exception:  # each appender reads the failure from its own future
            pass
        error = work.exception()
        if error is not None:
            _fail(taken, error)
        else:
            record: Record = work.result()
            self.frames += 1
            if fsync_each:
                for r in taken:
                    if not r.done.done():
                        r.done.set_result(record.seq)
            else:
                self._pending.append((record, taken))
        if cancelled:
            raise asyncio.CancelledError

    def _write_sync(self, writer: wal.WalWriter, batches: list[pa.RecordBatch | pa.Table], fsync: bool) -> Record:
        if len(batches) == 1 and isinstance(batches[0], pa.RecordBatch):
            batch = batches[0]
        else:
            table = pa.concat_tables([pa.table(b) if isinstance(b, pa.RecordBatch) else b for b in batches])
            batch = table.unify_dictionaries().combine_chunks().to_batches()[0]
        before = writer.active_path
        seq = writer.append(batch)
        if writer.active_path != before and writer.active_path is not None:
            with self.state.lock:
                self.state.segments.append(wal.Segment(writer.active_path, seq))
        record = Record(seq, batch)
        if fsync:
            writer.sync()
            self.state.publish([record])
        return record

    async def run_syncer(self, interval: float) -> None:
        """Group commit every ``interval`` seconds, until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sync()
            except StoreError as exc:
                log.error("%s", exc)

    async def sync(self) -> None:
        """Group commit: fsync, then publish and acknowledge every frame written since the last sync."""
        async with self._lock:
            pending, self._pending = self._pending, []
            if not pending:
                return
            error: StoreError | None = None
            writer = self.state.log
            if writer is None:
                error = StoreError("the store closed before the batch was durable", path=self.state.data_dir)
            else:
                try:
                    await self._run(writer.sync)
                except StoreError as exc:
                    error = exc
            if error is None:
                self.state.publish(record for record, _ in pending)
        for record, requests in pending:
            if error is None:
                for r in requests:
                    if not r.done.done():
                        r.done.set_result(record.seq)
            else:
                _fail(requests, error)

    async def close(self) -> None:
        """Acknowledge what is pending once it is durable, then close the log."""
        await self.sync()
        async with self._lock:
            if self.state.log is not None:
                await self._run(self.state.log.close)
                self.state.log = None
            if self._thread is not None:
                self._thread.shutdown(wait=True)
                self._thread = None


def _fail(requests: list[_Request], error: BaseException) -> None:
    for r in requests:
        if not r.done.done():
            r.done.set_exception(error)
