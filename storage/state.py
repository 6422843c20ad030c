"""The state the parts of a store share: resident records, files, WAL segments, cursors, one lock.

    state = StoreState(data_dir, config)
    with state.lock:                      # every field below the lock line is read and changed under it
        state.files ...
    state.publish([Record(seq, batch)])   # durable records become visible to queries and publishers
    snap = state.snapshot()               # what a query sees

One object per store, handed to its parts (storage/writer.py, compaction.py, retention.py, cursors.py),
never a global. ``lock`` is a threading lock because queries, compactions and publishers read the state
from worker threads; ``maintenance`` is the asyncio lock that keeps compaction, merging, retention and
the disk budget from changing the file list at the same time.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from sitewise_edge.clock import SYSTEM_CLOCK, Clock
from sitewise_edge.config import StorageConfig
from storage import wal
from storage.latest import LatestIndex
from storage.recovery import Quarantined
from storage.snapshot import QUERY_SCHEMA, Record, Snapshot, query_batch
from storage.tombstones import TOMBSTONES_FILE, Tombstones


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
    values_lost: int = 0  # this run: WAL damage and the disk budget
    values_lost_to_budget: int = 0  # of those, not yet forwarded values deleted past max_disk
    disk_bytes: int = 0


@dataclass
class DiskState:
    """What the store knows of its disk (``/health`` shows it)."""

    used: int = 0
    free: int | None = None
    refusing: str | None = None  # why writes are refused, None while they are accepted
    checked_at: float | None = None  # monotonic seconds of the last probe

    def as_dict(self, max_disk: int, reserve: int) -> dict[str, object]:
        return {"state": "full" if self.refusing else "ok", "usedBytes": self.used, "freeBytes": self.free,
                "maxDiskBytes": max_disk, "reserveBytes": reserve, "refusing": self.refusing}


def free_bytes(path: Path) -> int:
    """The free space of the file system holding ``path`` (what an unprivileged process may use)."""
    return shutil.disk_usage(path).free


@dataclass(eq=False)
class StoreState:
    """What the writer, the compaction, the retention and the cursors of one store share."""

    data_dir: Path
    config: StorageConfig
    clock: Clock = SYSTEM_CLOCK
    stats: StoreStats = field(default_factory=StoreStats)
    maintenance: asyncio.Lock = field(default_factory=asyncio.Lock)
    log: wal.WalWriter | None = None  # the open WAL; None before open and after close
    free_space: Callable[[Path], int] = free_bytes  # the probe of the file system's free space (tests inject one)
    disk: DiskState = field(default_factory=DiskState)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # --- guarded by ``lock`` ---
    resident: list[Record] = field(default_factory=list)  # durable, not yet compacted, oldest first
    resident_rows: int = 0
    resident_query: list[pa.RecordBatch] = field(default_factory=list)  # ``resident`` as queries read it (with _v)
    resident_table: pa.Table | None = None  # the query batches as one table (zero-copy), until the next change
    files: list[Path] = field(default_factory=list)  # Parquet files queries read
    segments: list[wal.Segment] = field(default_factory=list)  # WAL segments on disk, oldest first
    compacted_through: int = 0  # the last record in Parquet
    visible_seq: int = 1  # one past the last record queries and publishers can read
    latest: LatestIndex = field(default_factory=LatestIndex)
    tombstones: Tombstones = field(default_factory=lambda: Tombstones(Path(TOMBSTONES_FILE)))  # loaded on open
    aggregates: dict[str, tuple[Path, frozenset[str]]] = field(default_factory=dict)  # storage/aggregates.py
    cursors: dict[str, Position] = field(default_factory=dict)
    quarantine: list[Quarantined] = field(default_factory=list)  # WAL damage ever found (storage/recovery.py)

    @property
    def wal_dir(self) -> Path:
        return self.data_dir / "wal"

    @property
    def parquet_dir(self) -> Path:
        return self.data_dir / "parquet"

    @property
    def aggregates_dir(self) -> Path:
        return self.data_dir / "aggregates"

    @property
    def cursor_dir(self) -> Path:
        return self.data_dir / "cursors"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def next_seq(self) -> int:
        """The sequence number the next append gets (0 while the store is closed)."""
        return self.log.next_seq if self.log else 0

    @property
    def active_segment(self) -> Path | None:
        """The WAL segment being written, which is never deleted."""
        return self.log.active_path if self.log else None

    def publish(self, records: Iterable[Record]) -> None:
        """Durable records become visible to queries and publishers."""
        ready = [(Record(seq, batch), query_batch(seq, batch)) for seq, batch in records]  # O(batch), outside the lock
        with self.lock:
            for record, queried in ready:
                self.resident.append(record)
                self.resident_query.append(queried)
                self.resident_rows += record.batch.num_rows
                self.latest.update(record.seq, record.batch)
                self.visible_seq = max(self.visible_seq, record.seq + 1)
            if ready:
                self.resident_table = None

    def drop_resident(self, count: int) -> None:
        """The oldest ``count`` resident records are in Parquet now (call under ``lock``)."""
        self.resident_rows -= sum(r.batch.num_rows for r in self.resident[:count])
        self.resident = self.resident[count:]
        self.resident_query = self.resident_query[count:]
        self.resident_table = None

    def replace_files(self, gone: Iterable[Path], added: Iterable[Path] = ()) -> None:
        """Queries stop reading ``gone`` and start reading ``added`` at once (before the disk changes)."""
        drop = set(gone)
        with self.lock:
            self.files = [f for f in self.files if f not in drop] + list(added)

    def snapshot(self) -> Snapshot:
        """What a query sees now. The resident rows come as one table over the batches as they were accepted
        (no row is copied: the table is cached until the next publish or compaction)."""
        with self.lock:
            if self.resident_table is None:
                self.resident_table = pa.Table.from_batches(self.resident_query, schema=QUERY_SCHEMA)
            marks = self.tombstones.table() if self.tombstones.marks else None
            return Snapshot(tuple(self.files), tuple(self.resident), self.resident_table, marks)
