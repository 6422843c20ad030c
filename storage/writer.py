"""The store's single writer: batches into the WAL, made durable (fsync per batch or group commit), then visible.

    writer = LogWriter(state)
    report, last_seq = writer.recover()      # blocking: the WAL read back, a torn tail cut, damage quarantined
    writer.start(next_seq)                   # blocking: the log opens for appends
    seq = await writer.append(batch)         # returns once the batch is durable and visible
    await writer.sync()                      # group commit (``fsync: 100ms``): acknowledges what is pending
    await writer.close()

Appends are serialised by an asyncio lock and written in a worker thread: the WAL writer has one owner.
With ``fsync: batch`` each append is fsynced before it returns; with an interval, appends wait for the
next :meth:`LogWriter.sync` (run by :meth:`LogWriter.run_syncer`), which acknowledges every batch written
since the last one, or fails them all if the fsync fails.
"""

from __future__ import annotations

import asyncio
import logging

import pyarrow as pa

from sitewise_edge.errors import StoreError
from sitewise_edge.samples import SCHEMA
from storage import wal
from storage.recovery import Recovery, load_quarantine, recover
from storage.snapshot import Record
from storage.state import StoreState

log = logging.getLogger(__name__)


class LogWriter:
    """Owns the WAL of a store: recovery, appends, group commit and visibility."""

    def __init__(self, state: StoreState) -> None:
        self.state = state
        self._lock = asyncio.Lock()
        self._pending: list[tuple[int, pa.RecordBatch, asyncio.Future[None]]] = []

    @property
    def unsynced(self) -> int:
        """Batches written to the WAL and waiting for the group commit that makes them durable."""
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

    async def append(self, batch: pa.RecordBatch) -> int:
        """Make ``batch`` durable and visible. Returns its sequence number once it is accepted.

        Raises StoreError when the WAL cannot be written; nothing of the batch is then kept.
        """
        if batch.schema != SCHEMA:
            batch = batch.cast(SCHEMA)
        fsync_each = self.state.config.fsync_interval is None
        async with self._lock:
            writer = self.state.log
            if writer is None:
                raise StoreError("the store is closed", path=self.state.data_dir)
            work = asyncio.ensure_future(asyncio.to_thread(self._write_sync, writer, batch, fsync_each))
            try:
                seq = await asyncio.shield(work)
            except asyncio.CancelledError:
                await work  # the writer is not shared: hold the lock until the thread is done
                raise
            waiter: asyncio.Future[None] | None = None
            if not fsync_each:
                waiter = asyncio.get_running_loop().create_future()
                self._pending.append((seq, batch, waiter))
        if waiter is not None:
            await waiter
        return seq

    def _write_sync(self, writer: wal.WalWriter, batch: pa.RecordBatch, fsync: bool) -> int:
        before = writer.active_path
        seq = writer.append(batch)
        if writer.active_path != before and writer.active_path is not None:
            with self.state.lock:
                self.state.segments.append(wal.Segment(writer.active_path, seq))
        if fsync:
            writer.sync()
            self.state.publish([Record(seq, batch)])
        return seq

    async def run_syncer(self, interval: float) -> None:
        """Group commit every ``interval`` seconds, until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sync()
            except StoreError as exc:
                log.error("%s", exc)

    async def sync(self) -> None:
        """Group commit: fsync, then publish and acknowledge every batch written since the last sync."""
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
                    await asyncio.to_thread(writer.sync)
                except StoreError as exc:
                    error = exc
            if error is None:
                self.state.publish(Record(seq, batch) for seq, batch, _ in pending)
        for _, _, waiter in pending:
            if waiter.done():
                continue
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)

    async def close(self) -> None:
        """Acknowledge what is pending once it is durable, then close the log."""
        await self.sync()
        async with self._lock:
            if self.state.log is not None:
                await asyncio.to_thread(self.state.log.close)
                self.state.log = None
