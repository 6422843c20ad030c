"""Retention by age and by disk budget.

    retention = Retention(state, cursors)
    removed = await retention.apply_retention()   # Parquet days older than ``storage.retention``
    freed = await retention.enforce_budget()      # within ``storage.max_disk`` and the free space

The budget takes the oldest history first (whole days, never today's); when that is not enough it
deletes the oldest compacted WAL segments even though a publisher still needs them: the values are
counted in ``values_lost``, logged, and the publishers' cursors move past them.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

from sitewise_edge.clock import NS_PER_DAY, NS_PER_S
from storage import segments, wal
from storage.cursors import Cursors
from storage.layout import LATEST_FILE
from storage.state import Position, StoreState

log = logging.getLogger(__name__)

DISK_RESERVE = 256 * 2**20  # what the store leaves free on the file system, whatever its budget


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
        log.info("retention: removed %d Parquet files older than %s days", len(gone), state.config.retention / 86400)
        return len(gone)

    def disk_usage(self) -> int:
        """Bytes the store occupies (WAL segments and Parquet files)."""
        total = 0
        for pattern in ("wal/*.wal", "parquet/day=*/*.parquet", f"parquet/{LATEST_FILE}"):
            for p in self.state.data_dir.glob(pattern):
                try:
                    total += p.stat().st_size
                except FileNotFoundError:
                    pass
        return total

    def budget(self) -> int:
        """``max_disk``, or less when the file system itself runs short (never fill the disk)."""
        used = self.disk_usage()
        free = shutil.disk_usage(self.state.data_dir).free
        return min(self.state.config.max_disk, used + free - DISK_RESERVE)

    async def enforce_budget(self) -> int:
        """Keep the store within its budget: the oldest history goes first, then the oldest data not yet
        forwarded, which is logged and counted as lost. Returns the bytes freed."""
        state = self.state
        async with state.maintenance:
            usage, budget = await asyncio.to_thread(lambda: (self.disk_usage(), self.budget()))
            state.stats.disk_bytes = usage
            if usage <= budget:
                return 0
            freed = 0
            today = segments.day_folder(state.clock.time_ns() // NS_PER_DAY * NS_PER_DAY)
            for folder in sorted(state.parquet_dir.glob("day=*")):
                if usage - freed <= budget or folder.name >= today:
                    break
                files = list(folder.glob("*.parquet"))
                size = sum(f.stat().st_size for f in files)
                state.replace_files(files)
                await asyncio.to_thread(segments.remove_days, [folder])
                freed += size
                log.warning("disk budget %s exceeded: removed the history of %s (%d bytes)",
                            state.config.max_disk, folder.name[4:], size)
            if usage - freed > budget:
                freed += await self._drop_unforwarded(usage - freed - budget)
            return freed

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
                log.error("disk budget %s exceeded: %d values not yet forwarded by %s were deleted (records %d..%d)",
                          state.config.max_disk, rows, ", ".join(behind), seg.first_seq, end - 1)
        return freed


def _count_rows(path: Path) -> int:
    return sum(b.num_rows for _, b in wal.read_segment(path))
