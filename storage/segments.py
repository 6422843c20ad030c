"""Parquet segments: the compacted, queryable form of the log.

Layout under ``<data_dir>/parquet/``: one folder per UTC day (``day=2026-11-25``),
files named by the WAL sequence range they hold (``<first>-<last>.parquet``) so a
compaction that runs again after a crash writes the same names. Rows are sorted
by stream, then time, and encoded for time series (see :mod:`storage.encoding`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sitewise_edge.clock import NS_PER_DAY, NS_PER_S
from sitewise_edge.files import fsync_dir
from sitewise_edge.samples import SCHEMA
from storage import encoding

log = logging.getLogger(__name__)



def day_folder(day_start_ns: int) -> str:
    return "day=" + datetime.fromtimestamp(day_start_ns / NS_PER_S, UTC).strftime("%Y-%m-%d")


def folder_day_ns(name: str) -> int | None:
    """``day=2026-11-25`` (the inverse of :func:`day_folder`) -> the ns of its midnight UTC; None for a name
    that is no day folder."""
    try:
        day = datetime.strptime(name[4:], "%Y-%m-%d") if name.startswith("day=") else None
    except ValueError:
        return None
    return None if day is None else int(day.replace(tzinfo=UTC).timestamp()) * NS_PER_S


def sort_and_dedupe(table: pa.Table) -> pa.Table:
    """Sort by stream, time, quality; of rows with the same key keep the last written (table order)."""
    n = table.num_rows
    keys = pa.table({
        "s": table.column("stream").cast(pa.string()),
        "t": table.column("time"),
        "q": table.column("quality"),
        "i": pa.array(np.arange(n, dtype=np.int64)),
    })
    order = pc.sort_indices(keys, [("s", "ascending"), ("t", "ascending"), ("q", "ascending"), ("i", "ascending")])
    keys = keys.take(order)
    if n > 1:
        same_as_next = np.ones(n - 1, dtype=bool)
        for col in ("s", "t", "q"):
            a = keys.column(col)
            same_as_next &= pc.equal(a.slice(0, n - 1), a.slice(1)).to_numpy(zero_copy_only=False)
        keep = np.append(~same_as_next, True)
        order = pc.filter(order, pa.array(keep))
    return table.take(order)


def write_partitions(table: pa.Table, directory: Path, first_seq: int, last_seq: int) -> list[Path]:
    """Write ``table`` as one sorted file per UTC day it touches. Atomic per file (tmp + rename)."""
    if table.num_rows == 0:
        return []
    table = table.cast(SCHEMA).unify_dictionaries()
    time_ns = table.column("time").cast(pa.int64())
    day = pa.array(np.floor_divide(time_ns.to_numpy(), NS_PER_DAY) * NS_PER_DAY)  # floor: days before 1970 too
    written = []
    for day_start in pc.unique(day).to_pylist():
        part = table.filter(pc.equal(day, day_start))
        folder = directory / day_folder(day_start)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{first_seq:020d}-{last_seq:020d}.parquet"
        write_samples(part, path)
        written.append(path)
    return written


def write_samples(table: pa.Table, path: Path) -> None:
    """Sample rows -> one store file (sorted, deduplicated, encoded), atomically and durably."""
    tmp = path.with_suffix(".parquet.tmp")  # a crash leaves it for remove_orphans
    encoded = encoding.encode(sort_and_dedupe(table))
    pq.write_table(encoded, tmp, **encoding.write_options(encoded))
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def list_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("day=*/*.parquet"))


def seq_range(path: Path) -> tuple[int, int]:
    first, last = path.stem.split("-")
    return int(first), int(last)


def remove_orphans(directory: Path, compacted_through: int) -> int:
    """Drop files from a compaction that crashed before it was recorded (and stray temp files)."""
    removed = 0
    for tmp in directory.glob("day=*/*.tmp"):
        tmp.unlink()
        removed += 1
    for path in list_files(directory):
        if seq_range(path)[1] > compacted_through:
            log.info("removing %s: its compaction was not recorded before the last stop", path.name)
            path.unlink()
            removed += 1
    return removed


def days_before(directory: Path, before_ns: int) -> list[Path]:
    """Day folders that end before ``before_ns``."""
    cutoff = datetime.fromtimestamp(before_ns / NS_PER_S, UTC).strftime("%Y-%m-%d")
    return [folder for folder in sorted(directory.glob("day=*")) if folder.name[4:] < cutoff]


def remove_days(folders: list[Path]) -> None:
    for folder in folders:
        for f in folder.iterdir():
            f.unlink()
        folder.rmdir()


def read_file(path: Path) -> pa.Table:
    """A store file's rows as sample rows."""
    return encoding.decode(pq.read_table(path))


def file_rows(path: Path) -> int:
    return int(pq.ParquetFile(path).metadata.num_rows)


def merge_files(paths: list[Path], keep: Callable[[pa.Table, int], pa.Table] | None = None) -> Path:
    """Merge consecutive files of one day (in write order) into one; later writes of a key win.

    The merged file is written before the sources are deleted; a crash in between leaves files whose
    range lies inside the merged one, which :func:`remove_contained` deletes at the next open.
    """
    paths = sorted(paths, key=lambda p: seq_range(p)[0])
    tables = [read_file(p) for p in paths]
    if keep is not None:  # rows to drop as the files are rewritten (deleted streams: storage/tombstones.py)
        tables = [keep(t, seq_range(p)[1]) for t, p in zip(tables, paths, strict=True)]
    table = pa.concat_tables(tables).unify_dictionaries()
    first, last = seq_range(paths[0])[0], seq_range(paths[-1])[1]
    path = paths[0].parent / f"{first:020d}-{last:020d}.parquet"
    write_samples(table, path)
    return path


def remove_contained(directory: Path) -> int:
    """Delete files whose sequence range lies inside another file's (a merge interrupted by a crash)."""
    removed = 0
    for folder in directory.glob("day=*"):
        files = [(seq_range(p), p) for p in folder.glob("*.parquet")]
        for (first, last), path in files:
            if any(o != path and lo <= first and last <= hi and (lo, hi) != (first, last)
                   for (lo, hi), o in files):
                path.unlink()
                removed += 1
    return removed


def migrate_v1(directory: Path) -> int:
    """Rewrite layout-1 files (a plain ``time`` column, no encodings) in the current layout."""
    done = 0
    for path in list_files(directory):
        if "time" not in pq.read_schema(path).names:
            continue
        write_samples(pq.read_table(path).cast(SCHEMA), path)
        done += 1
    return done
