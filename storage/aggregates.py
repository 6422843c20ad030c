"""Precomputed aggregates: per UTC day, the 1m/15m/1h/1d buckets of every stream and quality, beside its Parquet.

    <data_dir>/aggregates/day=2026-11-25@<last seq>.parquet   one file per day folder of parquet/

    catalog = load(state.aggregates_dir, files)         # on open: day -> (sidecar, the files it was built from)
    for day in stale_days(catalog, files, today_ns):    # the compactor's pass (Compaction.refresh_aggregates)
        catalog[day] = build(state.aggregates_dir, day, files_of_day)
    valid = usable(catalog, snapshot.files)             # day start ns -> sidecar, for the Reader

A day's sidecar holds, for each resolution of :data:`RESOLUTIONS_NS`, the rows ``Reader.aggregates`` would
compute over that day's deduplicated rows (latest-write rule, across all of the day's files): count, sum,
avg, min, max, stddev per (stream, bucket, quality). Every resolution nests inside a UTC day, so a bucket
never spans two sidecars and nothing has to be combined: precomputed rows are the raw answer.

A sidecar names, in its Parquet metadata, the files it was built from. It is used only while the day's live
files are exactly those (a compaction of late data, a merge or retention changes them, and the day is
computed raw until the next pass rebuilds it) and only for days no WAL-resident row touches: a crash
between writing a partition and its sidecar can leave a stale sidecar, never a wrong answer. Today (and
later) is not built: its buckets still change every compaction, so they are computed raw.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from sitewise_edge.clock import NS_PER_DAY
from sitewise_edge.files import fsync_dir
from storage import segments
from storage.query import RESOLUTIONS_NS, Reader
from storage.snapshot import Snapshot

__all__ = ["RESOLUTIONS_NS", "Catalog", "build", "load", "remove_days", "stale_days", "usable"]

log = logging.getLogger(__name__)

SOURCES_KEY = b"sitewise_edge.aggregates.sources"
Catalog = dict[str, tuple[Path, frozenset[str]]]  # day folder name -> (sidecar, names of the files it covers)


def _sources(path: Path) -> frozenset[str] | None:
    try:
        meta = pq.read_schema(path).metadata or {}
        return frozenset(json.loads(meta[SOURCES_KEY]))
    except (OSError, KeyError, ValueError, pa.ArrowException) as exc:
        log.warning("ignoring the aggregates file %s (%s): its day is computed raw until it is rebuilt", path, exc)
        return None


def load(directory: Path, files: list[Path]) -> Catalog:
    """The sidecars on disk; of several for one day (a crash before the old one went) the one matching ``files``."""
    directory.mkdir(parents=True, exist_ok=True)
    for tmp in directory.glob("*.tmp"):
        tmp.unlink()
    live = _by_day(files)
    catalog: Catalog = {}
    for path in sorted(directory.glob("day=*.parquet")):
        day = path.stem.split("@")[0]
        sources = _sources(path)
        if sources is None:
            path.unlink()
            continue
        if day in catalog:
            keep_new = sources == live.get(day)
            stale = catalog[day][0] if keep_new else path
            stale.unlink()
            if not keep_new:
                continue
        catalog[day] = (path, sources)
    return catalog


def _by_day(files: tuple[Path, ...] | list[Path]) -> dict[str, frozenset[str]]:
    days: dict[str, set[str]] = {}
    for f in files:
        days.setdefault(f.parent.name, set()).add(f.name)
    return {d: frozenset(names) for d, names in days.items()}


def usable(catalog: Catalog, files: tuple[Path, ...]) -> dict[int, Path]:
    """Day start ns -> sidecar for the days whose sidecar was built from exactly their files in ``files``."""
    live = _by_day(files)
    out: dict[int, Path] = {}
    for day, (path, sources) in catalog.items():
        start = segments.folder_day_ns(day)
        if start is not None and live.get(day) == sources:
            out[start] = path
    return out


def stale_days(catalog: Catalog, files: list[Path], today_ns: int) -> list[str]:
    """Past days whose sidecar is missing or was built from other files."""
    today = segments.day_folder(today_ns // NS_PER_DAY * NS_PER_DAY)
    live = _by_day(files)
    return [d for d, names in sorted(live.items()) if d < today and catalog.get(d, (None, None))[1] != names]


def build(directory: Path, day: str, files: list[Path]) -> tuple[Path, frozenset[str]]:
    """Compute a day's sidecar from its files and write it atomically (blocking)."""
    con = duckdb.connect(":memory:")
    try:
        with Reader(con.cursor(), Snapshot(tuple(files), ())) as r:
            table = r.precompute()
    finally:
        con.close()
    sources = frozenset(f.name for f in files)
    last = max(segments.seq_range(f)[1] for f in files)
    path = directory / f"{day}@{last:020d}.parquet"
    table = table.replace_schema_metadata({SOURCES_KEY: json.dumps(sorted(sources)).encode()})
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp, row_group_size=16_384, compression="zstd")
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(directory)
    return path, sources


def remove_days(catalog: Catalog, days: list[str]) -> list[Path]:
    """Forget the sidecars of ``days`` (their partitions are gone). Returns the files to delete."""
    return [catalog.pop(d)[0] for d in days if d in catalog]
