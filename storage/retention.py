"""Retention by age, the disk budget and the disk reserve.

    retention = Retention(state, cursors)
    removed = await retention.apply_retention()   # Parquet days older than ``storage.retention``
    freed = await retention.enforce_budget()      # within ``storage.max_disk`` and above ``storage.disk_reserve``
    await retention.check_writable()              # before an append: raises DiskFull when writes are refused

Two limits, two policies:

- ``max_disk`` is the store's own budget. Past it the oldest history goes first (whole days, never today's);
  when that is not enough the oldest compacted WAL segments go even though a publisher still needs them: the
  values are counted in ``values_lost``, logged as an error, and the publishers' cursors move past them.
- ``disk_reserve`` is the free space the store leaves on its file system for everything else. Under it the
  oldest history goes (the same order), but never a value not yet forwarded: the store refuses writes instead
  (:class:`~sitewise_edge.errors.DiskFull`, a 503 ``ServiceUnavailableException`` through the API; the
  connectors wait), until space is freed. Accepted data is a promise; another program filling the disk
  does not break it.

Free space comes from ``state.free_space`` (``shutil.disk_usage`` unless a test injects a probe); the
append path probes at most once a second.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from sitewise_edge.clock import NS_PER_DAY, NS_PER_S
from sitewise_edge.errors import DiskFull
from storage import aggregates, segments, wal
from storage.cursors import Cursors
from storage.layout import LATEST_FILE
from storage.state import Position, StoreState

log = logging.getLogger(__name__)

PROBE_INTERVAL = 1.0  # seconds between two free-space probes on the append path


def mib(n: int) -> str:
    """A size for a message: ``812.0 KiB``, ``41.0 MiB``, ``20.00 GiB``, ``1.00 TiB``."""
    if n < 2**20:
        return f"{n / 2**10:.1f} KiB"
    if n < 2**30:
        return f"{n / 2**20:.1f} MiB"
    return f"{n / 2**30:.2f} GiB" if n < 2**40 else f"{n / 2**40:.2f} TiB"


class Retention:
    """Keeps the store within its age limit and its disk budget."""

    def __init__(self, state: StoreState, cursors: Cursors) -> None:
        self.state = state
        self.cursors = cursors

    async def apply_retention(self, now_ns: int | None = None) -> int:
        """Delete Parquet days older than the retention period. Returns the files removed."""
        state = self.state
        now_ns = state.clock.time_ns() if now_ns is None else now_ns
        cutoff = now_ns - int(state.config.retention * NS_PER_S)
        async with state.maintenance:
            expired = segments.days_before(state.parquet_dir, cutoff)
            if not expired:
                return 0
            gone = {f for folder in expired for f in folder.glob("*.parquet")}
            state.replace_files(gone)  # queries stop seeing the files before they go
            await asyncio.to_thread(segments.remove_days, expired)
            self._drop_aggregates(expired)
        log.info("retention: removed %d Parquet files older than %s days", len(gone), state.config.retention / 86400)
        return len(gone)

    def disk_usage(self) -> int:
        """Bytes the store occupies (WAL segments and Parquet files)."""
        total = 0
        for pattern in ("wal/*.wal", "parquet/day=*/*.parquet", f"parquet/{LATEST_FILE}", "aggregates/*.parquet"):
            for p in self.state.data_dir.glob(pattern):
                try:
                    total += p.stat().st_size
                except FileNotFoundError:
                    pass
        return total

    def budget(self) -> int:
        """``max_disk``: the bytes the store may occupy."""
        return self.state.config.max_disk

    def free_space(self) -> int:
        return self.state.free_space(self.state.data_dir)

    async def enforce_budget(self) -> int:
        """Keep the store within ``max_disk`` (oldest history, then the oldest unforwarded data, counted as lost)
        and the file system above ``disk_reserve`` (oldest history only). Returns the bytes freed."""
        state = self.state
        config = state.config
        async with state.maintenance:
            usage, free = await asyncio.to_thread(lambda: (self.disk_usage(), self.free_space()))
            over = max(0, usage - config.max_disk)
            short = max(0, config.disk_reserve - free)
            freed = 0
            if over or short:
                why = (f"storage.max_disk {mib(config.max_disk)} exceeded ({mib(usage)} used)" if over else
                       f"the file system has {mib(free)} free, under storage.disk_reserve {mib(config.disk_reserve)}")
                freed = await self._drop_history(max(over, short), why)
            if usage - freed > config.max_disk:
                freed += await self._drop_unforwarded(usage - freed - config.max_disk)
            state.stats.disk_bytes = usage - freed
            state.disk.used = usage - freed
            await asyncio.to_thread(self.probe)
            return freed

    async def _drop_history(self, excess: int, why: str) -> int:
        """Delete whole days of Parquet history, oldest first, never today's. Returns the bytes freed."""
        state = self.state
        freed = 0
        today = segments.day_folder(state.clock.time_ns() // NS_PER_DAY * NS_PER_DAY)
        for folder in sorted(state.parquet_dir.glob("day=*")):
            if freed >= excess or folder.name >= today:
                break
            files = list(folder.glob("*.parquet"))
            size = sum(f.stat().st_size for f in files)
            state.replace_files(files)
            await asyncio.to_thread(segments.remove_days, [folder])
            self._drop_aggregates([folder])
            freed += size
            log.warning("%s: removed the history of %s (%s)", why, folder.name[4:], mib(size))
        return freed

    def _drop_aggregates(self, folders: list[Path]) -> None:
        """The precomputed aggregates of removed days go with them (a query's reader no longer uses them:
        their files left the snapshot first)."""
        with self.state.lock:
            paths = aggregates.remove_days(self.state.aggregates, [f.name for f in folders])
        for path in paths:
            path.unlink(missing_ok=True)

    def probe(self) -> None:
        """Free space now; writes are refused while it is under the reserve (blocking, cheap: one statvfs)."""
        state = self.state
        reserve = state.config.disk_reserve
        free = self.free_space()
        refusing = None
        if free < reserve or free == 0:
            refusing = (f"the file system of {state.data_dir} has {mib(free)} free, under storage.disk_reserve "
                        f"{mib(reserve)}: writes are refused until space is freed (old history is already gone)")
        if refusing != state.disk.refusing:
            if refusing:
                log.error("disk: %s", refusing)
            else:
                log.warning("disk: %s free again (storage.disk_reserve %s): writes are accepted", mib(free),
                            mib(reserve))
        state.disk.free, state.disk.refusing, state.disk.checked_at = free, refusing, state.clock.monotonic()

    async def check_writable(self) -> None:
        """Raise DiskFull when the file system is under the reserve and old history cannot make room.

        Probes at most once every PROBE_INTERVAL; under the reserve it first deletes old history."""
        state = self.state
        disk = state.disk
        if disk.checked_at is None or state.clock.monotonic() - disk.checked_at >= PROBE_INTERVAL:
            self.probe()
            if disk.refusing:
                await self.enforce_budget()
        if disk.refusing:
            raise DiskFull(disk.refusing, path=state.data_dir, free=disk.free, reserve=state.config.disk_reserve)

    async def _drop_unforwarded(self, excess: int) -> int:
        """Delete the oldest compacted WAL segments even though a publisher still needs them."""
        state = self.state
        freed = 0
        while freed < excess:
            with state.lock:
                active = state.active_segment
                segs = state.segments
                candidates = [s for i, s in enumerate(segs)
                              if s.path != active and i + 1 < len(segs)
                              and segs[i + 1].first_seq - 1 <= state.compacted_through]
                if not candidates:
                    break
                seg = candidates[0]
                end = segs[segs.index(seg) + 1].first_seq
                segs.remove(seg)
            rows = await asyncio.to_thread(_count_rows, seg.path)
            size = seg.path.stat().st_size
            await asyncio.to_thread(seg.path.unlink)
            freed += size
            behind = [name for name, pos in state.cursors.items() if pos.seq < end]
            for name in behind:
                await asyncio.to_thread(self.cursors.save, name, Position(end, 0))
            if behind:
                state.stats.values_lost += rows
                state.stats.values_lost_to_budget += rows
                log.error("storage.max_disk %s exceeded: %d values not yet forwarded by %s were deleted "
                          "(records %d..%d)", mib(state.config.max_disk), rows, ", ".join(behind), seg.first_seq,
                          end - 1)
        return freed


def _count_rows(path: Path) -> int:
    return sum(b.num_rows for _, b in wal.read_segment(path))
