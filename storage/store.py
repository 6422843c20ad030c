"""The historian: accept batches durably, compact them to Parquet, answer queries, feed publishers.

    store = Store(data_dir, storage_config)
    report = await store.open()          # recovers the WAL, cutting a torn tail
    seq = await store.append(batch)      # returns once the batch is durable (accepted)
    with store.reader() as r:            # in a worker thread
        r.history("/plant/temp", None, None)
    rows, pos = store.read(Position(0, 0), 1000)   # publishers: everything after a position
    await store.close()

One writer: appends are serialised by an asyncio lock and run in a worker thread.
WAL segments are deleted only when compacted *and* passed by every publisher's cursor,
so a long cloud outage is bridged by the log itself.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from sitewise_edge.config import StorageConfig
from sitewise_edge.errors import StoreError
from sitewise_edge.files import read_json, write_json_atomic
from sitewise_edge.samples import SCHEMA, concat
from storage import encoding, segments, wal
from storage.latest import LatestIndex
from storage.query import Reader, Snapshot

log = logging.getLogger(__name__)

LAYOUT_VERSION = 2  # 1: plain Parquet columns; 2: time series encodings (storage/encoding.py)
MERGE_FAN_IN = 8  # a day's files are merged eight at a time (size-tiered, consecutive ranges only)
LATEST_FILE = "latest.parquet"
COMPACT_ROWS = 1_000_000  # WAL-resident rows that start a compaction
MAX_RESIDENT_ROWS = 8_000_000  # ... and that make appends wait for it, so memory stays bounded
DISK_RESERVE = 256 * 2**20  # what the store leaves free on the file system, whatever its budget


@dataclass(frozen=True, order=True)
class Position:
    """A place in the log: the next row to read is row ``row`` of record ``seq``."""

    seq: int
    row: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"seq": self.seq, "row": self.row}


@dataclass
class StoreStats:
    values_accepted: int = 0
    batches_accepted: int = 0
    compactions: int = 0
    last_compaction: float | None = None
    values_expired: int = 0
    values_lost: int = 0
    disk_bytes: int = 0


class Store:
    def __init__(self, data_dir: Path, config: StorageConfig) -> None:
        self.data_dir = Path(data_dir)
        self.config = config
        self.wal_dir = self.data_dir / "wal"
        self.parquet_dir = self.data_dir / "parquet"
        self.cursor_dir = self.data_dir / "cursors"
        self.stats = StoreStats()
        self._lock = threading.Lock()  # guards _resident, _files, _seg_index
        self._resident: list[tuple[int, pa.RecordBatch]] = []
        self._resident_rows = 0
        self._files: list[Path] = []
        self._segments: list[wal.Segment] = []
        self._compacted_through = 0
        self._writer: wal.WalWriter | None = None
        self._append_lock = asyncio.Lock()
        self._data_waiters: list[asyncio.Future[None]] = []
        self._cursors: dict[str, Position] = {}
        self._duck: duckdb.DuckDBPyConnection | None = None
        self._latest = LatestIndex()
        self._visible_seq = 1
        self._graveyard: list[tuple[float, list[Path]]] = []  # (when, files) replaced by a merge
        self._tasks: list[asyncio.Task[None]] = []
        self._pending: list[tuple[int, pa.RecordBatch, asyncio.Future[None]]] = []
        self._compact_lock = asyncio.Lock()

    # --- life cycle -----------------------------------------------------------------

    async def open(self) -> wal.Recovery:
        self._duck = duckdb.connect(":memory:")
        report = await asyncio.to_thread(self._open_sync)
        self._tasks.append(asyncio.create_task(self._compactor(), name="store-compactor"))
        if self.config.fsync_interval is not None:
            self._tasks.append(asyncio.create_task(self._syncer(self.config.fsync_interval), name="store-fsync"))
        log.info("store open at %s: %s", self.data_dir, report.describe())
        return report

    def _open_sync(self) -> wal.Recovery:
        try:
            for d in (self.wal_dir, self.parquet_dir, self.cursor_dir):
                d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the data directory {self.data_dir}: {exc.strerror}") from None
        manifest_path = self.data_dir / "manifest.json"
        if manifest_path.exists():
            manifest = read_json(manifest_path)
            version = manifest.get("layout")
            if not isinstance(version, int) or not 1 <= version <= LAYOUT_VERSION:
                raise StoreError(
                    f"{self.data_dir} holds store layout {version}, newer than this gateway's "
                    f"{LAYOUT_VERSION}: upgrade sitewise-edge or use another data_dir"
                )
            self._compacted_through = int(manifest.get("compacted_through", 0))
            if version < LAYOUT_VERSION:
                log.info("upgrading the store at %s from layout %d to %d", self.data_dir, version, LAYOUT_VERSION)
                count = segments.migrate_v1(self.parquet_dir)
                log.info("rewrote %d Parquet files in layout %d", count, LAYOUT_VERSION)
                (self.parquet_dir / LATEST_FILE).unlink(missing_ok=True)
                write_json_atomic(manifest_path, {"layout": LAYOUT_VERSION,
                                                  "compacted_through": self._compacted_through})
        else:
            write_json_atomic(manifest_path, {"layout": LAYOUT_VERSION, "compacted_through": 0})
        segments.remove_orphans(self.parquet_dir, self._compacted_through)
        segments.remove_contained(self.parquet_dir)
        self._files = segments.list_files(self.parquet_dir)
        self._latest = self._load_latest()
        records, last_seq, report = wal.recover(self.wal_dir, decode_after=self._compacted_through)
        self._segments = wal.list_segments(self.wal_dir)
        for seq, batch in records:
            self._resident.append((seq, batch))
            self._resident_rows += batch.num_rows
            self._latest.update(seq, batch)
        for f in self.cursor_dir.glob("*.json"):
            data = read_json(f)
            self._cursors[f.stem] = Position(int(data["seq"]), int(data.get("row", 0)))
        # never reuse a sequence number a cursor or a compaction has already seen (a lost WAL tail)
        next_seq = max([last_seq + 1, self._compacted_through + 1, *(c.seq for c in self._cursors.values())])
        self._writer = wal.WalWriter(self.wal_dir, next_seq, self.config.segment_size)
        self._visible_seq = max(last_seq, self._compacted_through) + 1
        return report

    def _load_latest(self) -> LatestIndex:
        """The latest-value index as of the last compaction (WAL-resident rows are applied after)."""
        path = self.parquet_dir / LATEST_FILE
        if path.exists():
            index = LatestIndex.load(path)
            index.drop_newer_than(self._compacted_through)
            return index
        if not self._files:
            return LatestIndex()
        assert self._duck is not None
        log.info("building the latest-value index from %d Parquet files", len(self._files))
        with Reader(self._duck.cursor(), Snapshot(tuple(self._files), ())) as r:
            return LatestIndex.from_table(*r.latest_all_versioned())

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
        await self.sync()  # acknowledges what is pending (interval fsync) once it is durable
        await asyncio.to_thread(self._empty_graveyard, 0.0)
        async with self._append_lock:
            if self._writer is not None:
                await asyncio.to_thread(self._writer.close)
                self._writer = None
        if self._duck is not None:
            self._duck.close()
            self._duck = None

    # --- writing ----------------------------------------------------------------------

    async def append(self, batch: pa.RecordBatch) -> int:
        """Make ``batch`` durable and visible. Returns its sequence number once it is accepted.

        Raises StoreError when the WAL cannot be written; nothing of the batch is then kept.
        """
        if batch.num_rows == 0:
            return 0
        if batch.schema != SCHEMA:
            batch = batch.cast(SCHEMA)
        fsync_each = self.config.fsync_interval is None
        while self._resident_rows >= MAX_RESIDENT_ROWS:  # compaction fell behind: writers wait (back-pressure)
            await self.compact()
        async with self._append_lock:
            writer = self._writer
            if writer is None:
                raise StoreError("the store is closed")
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
        self._accepted(batch)
        return seq

    def _write_sync(self, writer: wal.WalWriter, batch: pa.RecordBatch, fsync: bool) -> int:
        before = writer.active_path
        seq = writer.append(batch)
        if writer.active_path != before and writer.active_path is not None:
            with self._lock:
                self._segments.append(wal.Segment(writer.active_path, seq))
        if fsync:
            writer.sync()
            self._publish([(seq, batch)])
        return seq

    def _publish(self, records: list[tuple[int, pa.RecordBatch]]) -> None:
        """Durable records become visible to queries and publishers."""
        with self._lock:
            for seq, batch in records:
                self._resident.append((seq, batch))
                self._resident_rows += batch.num_rows
                self._latest.update(seq, batch)
                self._visible_seq = max(self._visible_seq, seq + 1)

    def _accepted(self, batch: pa.RecordBatch) -> None:
        self.stats.values_accepted += batch.num_rows
        self.stats.batches_accepted += 1
        waiters, self._data_waiters = self._data_waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)
        if self._resident_rows >= COMPACT_ROWS and not self._compact_lock.locked():
            self._spawn(self.compact(), "store-compact")

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.append(task)

        def done(t: asyncio.Task[Any]) -> None:
            if t in self._tasks:
                self._tasks.remove(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("%s failed: %s", name, t.exception())

        task.add_done_callback(done)

    async def _syncer(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sync()
            except StoreError as exc:
                log.error("%s", exc)

    async def sync(self) -> None:
        """Group commit: fsync, then publish and acknowledge every batch written since the last sync."""
        async with self._append_lock:
            pending, self._pending = self._pending, []
            if not pending:
                return
            error: StoreError | None = None
            if self._writer is None:
                error = StoreError("the store closed before the batch was durable")
            else:
                try:
                    await asyncio.to_thread(self._writer.sync)
                except StoreError as exc:
                    error = exc
            if error is None:
                self._publish([(seq, batch) for seq, batch, _ in pending])
        for _, _, waiter in pending:
            if waiter.done():
                continue
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)

    # --- compaction and retention -----------------------------------------------------

    async def _compactor(self) -> None:
        while True:
            await asyncio.sleep(self.config.compact_interval)
            try:
                await self.compact()
                await self.merge_days()
                await self.apply_retention()
                await self.enforce_budget()
            except (OSError, StoreError, pa.ArrowException) as exc:
                log.error("compaction failed, will retry: %s", exc)

    async def compact(self) -> int:
        """Write every WAL-resident row to Parquet. Returns the number of rows compacted."""
        async with self._compact_lock:
            with self._lock:
                todo = list(self._resident)
            if not todo:
                return 0
            first, last = todo[0][0], todo[-1][0]
            started = time.monotonic()
            table = concat([b for _, b in todo])
            written = await asyncio.to_thread(segments.write_partitions, table, self.parquet_dir, first, last)
            await asyncio.to_thread(
                write_json_atomic, self.data_dir / "manifest.json",
                {"layout": LAYOUT_VERSION, "compacted_through": last},
            )
            with self._lock:
                latest = self._latest.copy()
            await asyncio.to_thread(latest.save, self.parquet_dir / LATEST_FILE)
            with self._lock:
                self._compacted_through = last
                self._files.extend(written)
                done = len(todo)
                self._resident = self._resident[done:]
                self._resident_rows -= table.num_rows
            self.stats.compactions += 1
            self.stats.last_compaction = time.time()
            log.info("compacted %d values (records %d..%d) into %d Parquet files in %.2fs",
                     table.num_rows, first, last, len(written), time.monotonic() - started)
            await asyncio.to_thread(self._drop_passed_segments)
            return table.num_rows

    def _drop_passed_segments(self) -> None:
        """Delete WAL segments that are compacted and behind every publisher's cursor."""
        with self._lock:
            horizon = self._compacted_through
            for pos in self._cursors.values():
                horizon = min(horizon, pos.seq - 1)
            active = self._writer.active_path if self._writer else None
            keep: list[wal.Segment] = []
            drop: list[wal.Segment] = []
            for i, seg in enumerate(self._segments):
                next_first = self._segments[i + 1].first_seq if i + 1 < len(self._segments) else None
                if seg.path != active and next_first is not None and next_first - 1 <= horizon:
                    drop.append(seg)
                else:
                    keep.append(seg)
            self._segments = keep
        for seg in drop:
            seg.path.unlink(missing_ok=True)
            log.debug("deleted WAL segment %s", seg.path.name)

    def _bury(self, paths: list[Path]) -> None:
        """Delete replaced files a little later: a query that took its snapshot before may still read them."""
        self._graveyard.append((time.monotonic(), paths))

    def _empty_graveyard(self, grace: float = 60.0) -> None:
        keep = []
        for buried_at, paths in self._graveyard:
            if time.monotonic() - buried_at < grace:
                keep.append((buried_at, paths))
                continue
            for path in paths:
                path.unlink(missing_ok=True)
        self._graveyard = keep

    async def merge_days(self) -> int:
        """Merge runs of small files of a day (size-tiered) so queries open few files. Returns merges done."""
        merges = 0
        await asyncio.to_thread(self._empty_graveyard)
        async with self._compact_lock:
            for folder in sorted(self.parquet_dir.glob("day=*")):
                while True:
                    with self._lock:
                        live = [f for f in self._files if f.parent == folder]  # not the buried ones
                    run = await asyncio.to_thread(_mergeable_run, live)
                    if not run:
                        break
                    merged = await asyncio.to_thread(segments.merge_files, run)
                    gone = set(run)
                    with self._lock:  # queries switch to the merged file before the sources go
                        self._files = [f for f in self._files if f not in gone] + [merged]
                    self._bury(run)
                    merges += 1
        return merges

    async def apply_retention(self, now_ns: int | None = None) -> int:
        """Delete Parquet days older than the retention period. Returns the files removed."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        cutoff = now_ns - int(self.config.retention * 1e9)
        async with self._compact_lock:
            expired = segments.days_before(self.parquet_dir, cutoff)
            if not expired:
                return 0
            gone = {f for folder in expired for f in folder.glob("*.parquet")}
            with self._lock:  # queries stop seeing the files before they go
                self._files = [f for f in self._files if f not in gone]
            await asyncio.to_thread(segments.remove_days, expired)
        log.info("retention: removed %d Parquet files older than %s days", len(gone), self.config.retention / 86400)
        return len(gone)

    def disk_usage(self) -> int:
        """Bytes the store occupies (WAL segments and Parquet files)."""
        total = 0
        for pattern in ("wal/*.wal", "parquet/day=*/*.parquet", f"parquet/{LATEST_FILE}"):
            for p in self.data_dir.glob(pattern):
                try:
                    total += p.stat().st_size
                except FileNotFoundError:
                    pass
        return total

    def budget(self) -> int:
        """``max_disk``, or less when the file system itself runs short (never fill the disk)."""
        used = self.disk_usage()
        free = shutil.disk_usage(self.data_dir).free
        return min(self.config.max_disk, used + free - DISK_RESERVE)

    async def enforce_budget(self) -> int:
        """Keep the store within its budget: the oldest history goes first, then the oldest data not yet
        forwarded, which is logged and counted as lost. Returns the bytes freed."""
        async with self._compact_lock:
            usage, budget = await asyncio.to_thread(lambda: (self.disk_usage(), self.budget()))
            self.stats.disk_bytes = usage
            if usage <= budget:
                return 0
            freed = 0
            today = segments.day_folder(time.time_ns() // segments.NS_PER_DAY * segments.NS_PER_DAY)
            for folder in sorted(self.parquet_dir.glob("day=*")):
                if usage - freed <= budget or folder.name >= today:
                    break
                files = list(folder.glob("*.parquet"))
                size = sum(f.stat().st_size for f in files)
                with self._lock:
                    self._files = [f for f in self._files if f not in set(files)]
                await asyncio.to_thread(segments.remove_days, [folder])
                freed += size
                log.warning("disk budget %s exceeded: removed the history of %s (%d bytes)",
                            self.config.max_disk, folder.name[4:], size)
            if usage - freed > budget:
                freed += await self._drop_unforwarded(usage - freed - budget)
            return freed

    async def _drop_unforwarded(self, excess: int) -> int:
        """Delete the oldest compacted WAL segments even though a publisher still needs them."""
        freed = 0
        while freed < excess:
            with self._lock:
                active = self._writer.active_path if self._writer else None
                candidates = [s for i, s in enumerate(self._segments)
                              if s.path != active and i + 1 < len(self._segments)
                              and self._segments[i + 1].first_seq - 1 <= self._compacted_through]
                if not candidates:
                    break
                seg = candidates[0]
                end = self._segments[self._segments.index(seg) + 1].first_seq
                self._segments.remove(seg)
            rows = await asyncio.to_thread(_count_rows, seg.path)
            size = seg.path.stat().st_size
            await asyncio.to_thread(seg.path.unlink)
            freed += size
            behind = [name for name, pos in self._cursors.items() if pos.seq < end]
            for name in behind:
                await asyncio.to_thread(self.save_cursor, name, Position(end, 0))
            if behind:
                self.stats.values_lost += rows
                log.error("disk budget %s exceeded: %d values not yet forwarded by %s were deleted (records %d..%d)",
                          self.config.max_disk, rows, ", ".join(behind), seg.first_seq, end - 1)
        return freed

    def retain_cursors(self, names: set[str]) -> None:
        """Forget the cursors of publishers that are no longer configured, so they hold no WAL back."""
        for name in list(self._cursors):
            if name not in names:
                log.warning("forgetting the cursor %s: no such publisher is configured", name)
                (self.cursor_dir / f"{name}.json").unlink(missing_ok=True)
                with self._lock:
                    del self._cursors[name]

    # --- reading ------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(tuple(self._files), tuple(self._resident))

    @staticmethod
    def decode_file(table: pa.Table) -> pa.Table:
        """The rows of a Parquet file of this store (its layout) as sample rows."""
        return encoding.decode(table)

    def latest(self, stream: str) -> pa.Table:
        """The value with the greatest timestamp of a stream (0 or 1 row), from memory."""
        with self._lock:
            return self._latest.get(stream)

    def latest_all(self) -> pa.Table:
        with self._lock:
            return self._latest.all()

    def reader(self) -> Reader:
        """A query reader over a consistent snapshot. Use from a worker thread; close it after."""
        if self._duck is None:
            raise StoreError("the store is not open")
        return Reader(self._duck.cursor(), self.snapshot())

    @property
    def visible_seq(self) -> int:
        """One past the last readable record: every record below it is durable and visible."""
        return self._visible_seq

    @property
    def next_seq(self) -> int:
        return self._writer.next_seq if self._writer else 0

    def read(self, position: Position, max_rows: int) -> tuple[pa.Table, Position]:
        """Rows after ``position`` in acceptance order, at most ``max_rows`` (blocking: use a thread)."""
        out: list[pa.RecordBatch] = []
        n = 0
        pos = position
        for seq, batch in self._records_from(position.seq):
            if seq < pos.seq:
                continue
            start = pos.row if seq == pos.seq else 0
            if start >= batch.num_rows:
                pos = Position(seq + 1, 0)
                continue
            take = min(batch.num_rows - start, max_rows - n)
            out.append(batch.slice(start, take))
            n += take
            pos = Position(seq, start + take) if start + take < batch.num_rows else Position(seq + 1, 0)
            if n >= max_rows:
                break
        return concat(out), pos

    def _records_from(self, seq: int) -> Iterator[tuple[int, pa.RecordBatch]]:
        with self._lock:
            resident = list(self._resident)
            segs = list(self._segments)
        first_resident = resident[0][0] if resident else self.next_seq
        if seq < first_resident:
            # behind memory: read the log from disk up to where memory starts
            starts = [s.first_seq for s in segs]
            i = max(0, bisect.bisect_right(starts, seq) - 1)
            for seg in segs[i:]:
                if seg.first_seq >= first_resident:
                    break
                try:
                    for s, batch in wal.read_segment(seg.path):
                        if s >= first_resident:
                            break
                        if s >= seq:
                            yield s, batch
                except FileNotFoundError:
                    raise StoreError(f"WAL segment {seg.path.name} was removed while a reader needed it") from None
        for s, batch in resident:
            if s >= seq:
                yield s, batch

    async def wait_for_data(self, max_wait: float) -> None:
        """Return when a batch is appended, or after ``max_wait`` seconds."""
        waiter = asyncio.get_running_loop().create_future()
        self._data_waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, max_wait)
        except TimeoutError:
            pass
        finally:
            if waiter in self._data_waiters:
                self._data_waiters.remove(waiter)

    # --- cursors ------------------------------------------------------------------------

    def cursor(self, name: str) -> Position:
        """The saved position of a publisher; a new publisher starts at the oldest data still in the log."""
        with self._lock:
            if name not in self._cursors:
                first = self._segments[0].first_seq if self._segments else self.next_seq
                self._cursors[name] = Position(max(first, 1), 0)
            return self._cursors[name]

    def save_cursor(self, name: str, position: Position) -> None:
        """Persist a publisher's position (blocking: call from a thread)."""
        write_json_atomic(self.cursor_dir / f"{name}.json", position.as_dict())
        with self._lock:
            self._cursors[name] = position

    def backlog(self, name: str) -> int:
        """Rows after a cursor still in memory or the active log (an estimate for metrics)."""
        pos = self.cursor(name)
        with self._lock:
            return sum(b.num_rows for s, b in self._resident if s >= pos.seq) - (
                pos.row if any(s == pos.seq for s, _ in self._resident) else 0
            )


def _count_rows(path: Path) -> int:
    return sum(b.num_rows for _, b in wal.read_segment(path))


def _mergeable_run(files: list[Path]) -> list[Path]:
    """The newest run of MERGE_FAN_IN consecutive files of the same size tier (rows, in powers of 8)."""
    files = sorted(files, key=lambda p: segments.seq_range(p)[0])
    if len(files) < MERGE_FAN_IN:
        return []
    tiers = [len(str(oct(max(segments.file_rows(p), 1)))) for p in files]
    run_end = len(files)
    for i in range(len(files) - 1, -1, -1):
        if tiers[i] != tiers[run_end - 1]:
            if run_end - (i + 1) >= MERGE_FAN_IN:
                break
            run_end = i + 1
        if run_end - i >= MERGE_FAN_IN:
            return files[i:run_end]
    return files[:run_end] if run_end >= MERGE_FAN_IN and len(set(tiers[:run_end])) == 1 else []
