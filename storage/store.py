"""The historian: accept batches durably, compact them to Parquet, answer queries, feed publishers.

    store = Store(data_dir, storage_config)
    report = await store.open()          # recovers the WAL, cutting a torn tail
    seq = await store.append(batch)      # returns once the batch is durable (accepted)
    with store.reader() as r:            # in a worker thread
        r.history("/plant/temp", None, None)
        r.points(["/plant/temp"], start_ns, end_ns)     # GOOD points of streams in (start, end]
    rows, pos = store.read(Position(0, 0), 1000)   # publishers: everything after a position
    store.save_cursor("publisher-cloud", pos)      # ... once the destination acknowledged
    await store.delete_stream("/plant/temp")       # DeleteTimeSeries: a durable tombstone (storage/tombstones.py)
    snap = store.snapshot()              # the S3 export: Parquet files + resident records
    await store.close()

A thin front over the parts, which share one :class:`~storage.state.StoreState`:

- :mod:`storage.layout`: the data directory, its manifest and layout version, checked on open;
- :mod:`storage.writer`: the single writer (WAL appends, fsync or group commit, visibility);
- :mod:`storage.compaction`: resident rows to Parquet, merging a day's files, the graveyard;
- :mod:`storage.retention`: retention by age, the disk budget;
- :mod:`storage.cursors`: the publishers' cursors and the log read from them;
- :mod:`storage.query`: the :class:`~storage.query.Reader`, DuckDB over a snapshot.

WAL segments are deleted only when compacted *and* passed by every publisher's cursor,
so a long cloud outage is bridged by the log itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from sitewise_edge.clock import SYSTEM_CLOCK, Clock
from sitewise_edge.config import StorageConfig
from sitewise_edge.errors import DiskFull, StoreError
from sitewise_edge.samples import Sample
from storage import aggregates, encoding, layout
from storage.compaction import Compaction
from storage.cursors import Cursors, LogReader
from storage.layout import LAYOUT_VERSION
from storage.query import Reader
from storage.recovery import Quarantined, Recovery
from storage.retention import Retention
from storage.snapshot import ROW_BITS, Snapshot
from storage.state import Position, StoreState, StoreStats, free_bytes
from storage.tombstones import Tombstones
from storage.writer import LogWriter

__all__ = ["LAYOUT_VERSION", "Position", "Store", "StoreStats"]

log = logging.getLogger(__name__)

COMPACT_ROWS = 1_000_000  # WAL-resident rows that start a compaction
MAX_RESIDENT_ROWS = 8_000_000  # ... and that make appends wait for it, so memory stays bounded


class Store:
    """The store of one data directory; see the module docstring for its use."""

    def __init__(self, data_dir: Path, config: StorageConfig, clock: Clock = SYSTEM_CLOCK,
                 free_space: Callable[[Path], int] = free_bytes) -> None:
        # shared by the parts; read-only from outside storage/. ``free_space``: the file system's free bytes
        self.state = StoreState(Path(data_dir), config, clock, free_space=free_space)
        self.data_dir = self.state.data_dir
        self.wal_dir = self.state.wal_dir
        self.parquet_dir = self.state.parquet_dir
        self.cursor_dir = self.state.cursor_dir
        self._writer = LogWriter(self.state)
        self._compaction = Compaction(self.state)
        self._cursors = Cursors(self.state)
        self._log = LogReader(self.state)
        self._retention = Retention(self.state, self._cursors)
        self._duck: duckdb.DuckDBPyConnection | None = None
        self._tasks: list[asyncio.Task[Any]] = []

    @property
    def config(self) -> StorageConfig:
        return self.state.config

    @config.setter
    def config(self, config: StorageConfig) -> None:
        self.state.config = config

    @property
    def stats(self) -> StoreStats:
        return self.state.stats

    @property
    def quarantine(self) -> list[Quarantined]:
        """Every damage of the WAL found so far, kept in ``data_dir/quarantine`` until the operator removes it."""
        return list(self.state.quarantine)

    # --- life cycle -----------------------------------------------------------------

    async def open(self) -> Recovery:
        self._duck = duckdb.connect(":memory:")
        report = await asyncio.to_thread(self._open_sync)
        self._tasks.append(asyncio.create_task(self._maintain(), name="store-compactor"))
        if self.config.fsync_interval is not None:
            self._tasks.append(asyncio.create_task(self._writer.run_syncer(self.config.fsync_interval),
                                                   name="store-fsync"))
        (log.error if report.damage else log.info)("store open at %s: %s", self.data_dir, report.describe())
        return report

    def _open_sync(self) -> Recovery:
        assert self._duck is not None
        state = self.state
        layout.open_parquet(state, self._duck)
        state.tombstones = Tombstones.load(state.data_dir)
        report, last_seq = self._writer.recover()
        self._cursors.load()
        # never reuse a sequence number a cursor or a compaction has already seen (a lost WAL tail)
        next_seq = max([last_seq + 1, state.compacted_through + 1, *(c.seq for c in state.cursors.values())])
        self._writer.start(next_seq)
        state.disk.used = state.stats.disk_bytes = self._retention.disk_usage()
        self._retention.probe()
        state.visible_seq = max(last_seq, state.compacted_through) + 1
        for stream, before in state.tombstones.marks.items():
            self._forget_latest(stream, before)
        return report

    async def close(self) -> None:
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        for t in tasks:
            try:
                await t
            except asyncio.CancelledError:
                pass
            except (OSError, StoreError, pa.ArrowException) as exc:
                log.error("store task %s had failed: %s", t.get_name(), exc)
        self._tasks.clear()
        await self._writer.sync()  # acknowledges what is pending (interval fsync) once it is durable
        await asyncio.to_thread(self._compaction.empty_graveyard, 0.0)
        await self._writer.close()
        if self._duck is not None:
            self._duck.close()
            self._duck = None

    # --- writing ----------------------------------------------------------------------

    async def append(self, batch: pa.RecordBatch | pa.Table) -> int:
        """Make ``batch`` durable and visible. Returns its sequence number once it is accepted.

        Concurrent appends share WAL frames and fsyncs (storage/writer.py): the returned number is the
        frame's, so several appends may return the same one.

        Raises StoreError when the WAL cannot be written; nothing of the batch is then kept.
        """
        if batch.num_rows == 0:
            return 0
        while self.state.resident_rows >= MAX_RESIDENT_ROWS:  # compaction fell behind: writers wait (back-pressure)
            await self.compact()
        await self._retention.check_writable()  # DiskFull under storage.disk_reserve
        try:
            seq = await self._writer.append(batch)
        except DiskFull:
            self.state.disk.checked_at = None  # the file system is full: probe again on the next append
            raise
        self.stats.values_accepted += batch.num_rows
        self.stats.batches_accepted += 1
        self._log.notify()
        if self.state.resident_rows >= COMPACT_ROWS and not self._compaction.busy:
            self._spawn(self.compact(), "store-compact")
        return seq

    async def sync(self) -> None:
        """Group commit: fsync, then publish and acknowledge every batch written since the last sync."""
        await self._writer.sync()

    @property
    def unsynced(self) -> int:
        """Batches written and waiting for the group commit (``fsync`` as an interval)."""
        return self._writer.unsynced

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.append(task)

        def done(t: asyncio.Task[Any]) -> None:
            if t in self._tasks:
                self._tasks.remove(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("%s failed: %s", name, t.exception())

        task.add_done_callback(done)

    # --- compaction and retention -----------------------------------------------------

    async def _maintain(self) -> None:
        while True:
            await asyncio.sleep(self.config.compact_interval)
            try:
                await self.compact()
                await self.merge_days()
                await self.refresh_aggregates()
                await self.apply_retention()
                await self.enforce_budget()
            except (OSError, StoreError, pa.ArrowException) as exc:
                log.error("compaction failed, will retry: %s", exc)

    async def compact(self) -> int:
        """Write every WAL-resident row to Parquet. Returns the number of rows compacted."""
        return await self._compaction.compact()

    async def merge_days(self) -> int:
        """Merge runs of small files of a day (size-tiered) so queries open few files. Returns merges done."""
        return await self._compaction.merge_days()

    async def refresh_aggregates(self) -> int:
        """Build the precomputed aggregates of past days that have none or whose files changed (the compactor
        runs it after each merge). Returns the days built."""
        return await self._compaction.refresh_aggregates()

    async def apply_retention(self, now_ns: int | None = None) -> int:
        """Delete Parquet days older than the retention period. Returns the files removed."""
        return await self._retention.apply_retention(now_ns)

    def disk_usage(self) -> int:
        """Bytes the store occupies (WAL segments and Parquet files)."""
        return self._retention.disk_usage()

    def budget(self) -> int:
        """``max_disk``: the bytes the store may occupy."""
        return self._retention.budget()

    async def enforce_budget(self) -> int:
        """Keep the store within ``max_disk`` (oldest history first, then unforwarded data, counted as lost) and
        the file system above ``disk_reserve`` (oldest history only; then writes are refused)."""
        return await self._retention.enforce_budget()

    def disk_status(self) -> dict[str, object]:
        """The disk as the store saw it last: used, free, the limits, and why writes are refused (if they are)."""
        return self.state.disk.as_dict(self.config.max_disk, self.config.disk_reserve)

    # --- deleting -------------------------------------------------------------------------

    async def delete_stream(self, stream: str, client_token: str | None = None) -> int:
        """Delete the stream's values accepted so far (DeleteTimeSeries): reads no longer see them, values
        written from now on form a new series, and the rows leave the disk when their files are next rewritten.
        Durable on return. Returns the first record sequence number that survives. ``client_token``: see
        :meth:`deleted_by`."""
        async with self.state.maintenance:  # no compaction or merge reads the marks halfway
            with self.state.lock:
                before = self.state.visible_seq  # every record below is published; later ones survive
            await asyncio.to_thread(self.state.tombstones.add, stream, before, client_token)
            await asyncio.to_thread(self._forget_latest, stream, before)
        return before

    def deleted_by(self, client_token: str) -> str | None:
        """The stream a delete with this ``clientToken`` deleted (a retry answers as the first request did)."""
        return self.state.tombstones.tokens.get(client_token)

    def _forget_latest(self, stream: str, before_seq: int) -> None:
        """Drop a deleted stream's latest value; a value written after the delete takes its place (blocking)."""
        with self.state.lock:
            if not self.state.latest.forget(stream, before_seq << ROW_BITS):
                return
        if self._duck is None:
            return
        with Reader(self._duck.cursor(), self.snapshot()) as r:
            table, version = r.latest_versioned(stream)
        if version is not None:
            with self.state.lock:
                self.state.latest.update(version >> ROW_BITS, table.combine_chunks().to_batches()[0])

    # --- reading ------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The Parquet files and resident records at this moment (what a query sees)."""
        return self.state.snapshot()

    @staticmethod
    def decode_file(table: pa.Table) -> pa.Table:
        """The rows of a Parquet file of this store (its layout) as sample rows."""
        return encoding.decode(table)

    def latest(self, stream: str) -> pa.Table:
        """The value with the greatest timestamp of a stream (0 or 1 row), from memory."""
        with self.state.lock:
            return self.state.latest.get(stream)

    def latest_value(self, stream: str) -> Sample | None:
        """The stream's latest value as Python scalars (None without one), from memory: no table is built."""
        with self.state.lock:
            return self.state.latest.value(stream)

    def latest_all(self) -> pa.Table:
        """The latest value of every stream, from memory, ordered by stream."""
        with self.state.lock:
            return self.state.latest.all()

    def reader(self) -> Reader:
        """A query reader over a consistent snapshot. Use from a worker thread; close it after."""
        if self._duck is None:
            raise StoreError("the store is not open", path=self.data_dir)
        snap = self.snapshot()
        with self.state.lock:
            catalog = dict(self.state.aggregates)
        # a sidecar answers only for a day whose files in this snapshot are the ones it was built from
        return Reader(self._duck.cursor(), snap, aggregates.usable(catalog, snap.files))

    @property
    def visible_seq(self) -> int:
        """One past the last readable record: every record below it is durable and visible."""
        return self.state.visible_seq

    @property
    def next_seq(self) -> int:
        return self.state.next_seq

    def read(self, position: Position, max_rows: int) -> tuple[pa.Table, Position]:
        """Rows after ``position`` in acceptance order, at most ``max_rows`` (blocking: use a thread)."""
        return self._log.read(position, max_rows)

    async def wait_for_data(self, max_wait: float) -> None:
        """Return when a batch is appended, or after ``max_wait`` seconds."""
        await self._log.wait_for_data(max_wait)

    # --- cursors ------------------------------------------------------------------------

    def cursor(self, name: str) -> Position:
        """The saved position of a publisher; a new publisher starts at the oldest data still in the log."""
        return self._cursors.get(name)

    def save_cursor(self, name: str, position: Position) -> None:
        """Persist a publisher's position (blocking: call from a thread)."""
        self._cursors.save(name, position)

    def backlog(self, name: str) -> int:
        """Rows after a cursor still in memory or the active log (an estimate for metrics)."""
        return self._cursors.backlog(name)

    def retain_cursors(self, names: set[str]) -> None:
        """Forget the cursors of publishers that are no longer configured, so they hold no WAL back."""
        self._cursors.retain(names)
