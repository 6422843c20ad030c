"""Compaction: WAL-resident rows into Parquet, small files of a day merged, replaced files buried.

    compaction = Compaction(state)
    rows = await compaction.compact()        # every resident row into one file per UTC day it touches
    merges = await compaction.merge_days()   # size-tiered: runs of MERGE_FAN_IN files of a tier into one
    built = await compaction.refresh_aggregates()  # past days whose files changed: their aggregates rebuilt
    compaction.empty_graveyard(0.0)          # on close: files replaced by a merge leave the disk

A compaction is recorded in the manifest before its rows leave memory, so a crash in between only
leaves files that the next open removes (their range is past ``compacted_through``). WAL segments are
deleted once compacted *and* passed by every publisher's cursor. Files replaced by a merge leave the
queries at once and the disk a minute later, so a query that took its snapshot before still finds them.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from sitewise_edge.samples import concat
from storage import aggregates, segments, wal
from storage.layout import LATEST_FILE, write_manifest
from storage.state import StoreState

log = logging.getLogger(__name__)

MERGE_FAN_IN = 8  # a day's files are merged eight at a time (size-tiered, consecutive ranges only)
GRAVE_GRACE = 60.0  # seconds a replaced file stays on disk for the queries that still read it


class Compaction:
    """Moves resident rows to Parquet and keeps a day's files few."""

    def __init__(self, state: StoreState) -> None:
        self.state = state
        self._graveyard: list[tuple[float, list[Path]]] = []  # (when, files) replaced by a merge

    @property
    def busy(self) -> bool:
        """A compaction, merge, retention or budget pass is running."""
        return self.state.maintenance.locked()

    async def compact(self) -> int:
        """Write every WAL-resident row to Parquet. Returns the number of rows compacted."""
        state = self.state
        async with state.maintenance:
            with state.lock:
                todo = list(state.resident)
            if not todo:
                return 0
            first, last = todo[0].seq, todo[-1].seq
            started = state.clock.monotonic()
            table = concat([state.tombstones.keep_record(r.seq, r.batch) for r in todo])  # deleted streams go
            written = await asyncio.to_thread(segments.write_partitions, table, state.parquet_dir, first, last)
            await asyncio.to_thread(write_manifest, state.data_dir, last)
            with state.lock:
                latest = state.latest.copy()
            await asyncio.to_thread(latest.save, state.parquet_dir / LATEST_FILE)
            with state.lock:  # one step: the rows leave memory as their files join the queries
                state.compacted_through = last
                state.files.extend(written)
                state.drop_resident(len(todo))
            state.stats.compactions += 1
            state.stats.last_compaction = state.clock.time()
            log.info("compacted %d values (records %d..%d) into %d Parquet files in %.2fs",
                     table.num_rows, first, last, len(written), state.clock.monotonic() - started)
            await asyncio.to_thread(self._drop_passed_segments)
            return table.num_rows

    def _drop_passed_segments(self) -> None:
        """Delete WAL segments that are compacted and behind every publisher's cursor."""
        state = self.state
        with state.lock:
            horizon = state.compacted_through
            for pos in state.cursors.values():
                horizon = min(horizon, pos.seq - 1)
            active = state.active_segment
            keep: list[wal.Segment] = []
            drop: list[wal.Segment] = []
            for i, seg in enumerate(state.segments):
                next_first = state.segments[i + 1].first_seq if i + 1 < len(state.segments) else None
                if seg.path != active and next_first is not None and next_first - 1 <= horizon:
                    drop.append(seg)
                else:
                    keep.append(seg)
            state.segments = keep
        for seg in drop:
            seg.path.unlink(missing_ok=True)
            log.debug("deleted WAL segment %s", seg.path.name)

    async def merge_days(self) -> int:
        """Merge runs of small files of a day (size-tiered) so queries open few files. Returns merges done."""
        state = self.state
        merges = 0
        await asyncio.to_thread(self.empty_graveyard)
        async with state.maintenance:
            for folder in sorted(state.parquet_dir.glob("day=*")):
                while True:
                    with state.lock:
                        live = [f for f in state.files if f.parent == folder]  # not the buried ones
                    run = await asyncio.to_thread(mergeable_run, live)
                    if not run:
                        break
                    merged = await asyncio.to_thread(segments.merge_files, run, state.tombstones.keep_file)
                    state.replace_files(run, [merged])  # queries switch to the merged file before the sources go
                    self._bury(run)
                    merges += 1
        return merges

    async def refresh_aggregates(self) -> int:
        """(Re)build the precomputed aggregates of every past day whose files changed since they were built
        (late data compacted, a merge) or that has none (an older store); forget those of days that are gone.
        Returns the days built. The replaced sidecars are buried like merged files."""
        state = self.state
        built = 0
        async with state.maintenance:
            with state.lock:
                files = list(state.files)
                catalog = dict(state.aggregates)
            live = {f.parent.name for f in files}
            gone = aggregates.remove_days(catalog, [d for d in catalog if d not in live])
            with state.lock:
                for day in [d for d in state.aggregates if d not in live]:
                    del state.aggregates[day]
            self._bury(gone)
            for day in aggregates.stale_days(catalog, files, state.clock.time_ns()):
                day_files = [f for f in files if f.parent.name == day]
                started = state.clock.monotonic()
                entry = await asyncio.to_thread(aggregates.build, state.aggregates_dir, day, day_files)
                with state.lock:
                    old = state.aggregates.get(day)
                    state.aggregates[day] = entry
                if old is not None and old[0] != entry[0]:
                    self._bury([old[0]])
                built += 1
                log.info("precomputed the aggregates of %s from %d files in %.2fs", day[4:], len(day_files),
                         state.clock.monotonic() - started)
        return built

    def _bury(self, paths: list[Path]) -> None:
        """Delete replaced files a little later: a query that took its snapshot before may still read them."""
        self._graveyard.append((self.state.clock.monotonic(), paths))

    def empty_graveyard(self, grace: float = GRAVE_GRACE) -> None:
        """Delete the buried files older than ``grace`` seconds (blocking)."""
        keep = []
        for buried_at, paths in self._graveyard:
            if self.state.clock.monotonic() - buried_at < grace:
                keep.append((buried_at, paths))
                continue
            for path in paths:
                path.unlink(missing_ok=True)
        self._graveyard = keep


def mergeable_run(files: list[Path]) -> list[Path]:
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
