"""The data directory of a store: its manifest, layout version and Parquet side, checked and repaired on open.

    <data_dir>/manifest.json     {"layout": 3, "compacted_through": <last record in Parquet>}
    <data_dir>/wal/              WAL segments (storage/wal.py)
    <data_dir>/parquet/          day folders of Parquet files (storage/segments.py) and latest.parquet
    <data_dir>/aggregates/       precomputed aggregates, one file per past day (storage/aggregates.py)
    <data_dir>/cursors/          one JSON position per publisher (storage/cursors.py)
    <data_dir>/quarantine/       damaged WAL bytes and what they cost: a .bin and a .json per place (recovery.py)

    open_parquet(state, duck)    # before the WAL is recovered: layout checked, orphans removed, files listed
    write_manifest(state.data_dir, last)   # a compaction is recorded

An older layout is upgraded in place; a newer one is refused with a message that says what to do.
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb

from sitewise_edge.errors import StoreError
from sitewise_edge.files import read_json, write_json_atomic
from storage import aggregates, segments
from storage.latest import LatestIndex
from storage.query import Reader
from storage.snapshot import Snapshot
from storage.state import StoreState

log = logging.getLogger(__name__)

LAYOUT_VERSION = 4  # 1: plain Parquet columns; 2: time series encodings (storage/encoding.py);
# 3: the WAL schema once per segment (storage/wal.py; layout-2 segments are read as they are);
# 4: precomputed aggregates beside the day folders (storage/aggregates.py; built by the compactor's next pass)
LATEST_FILE = "latest.parquet"
MANIFEST = "manifest.json"


def write_manifest(data_dir: Path, compacted_through: int) -> None:
    write_json_atomic(data_dir / MANIFEST, {"layout": LAYOUT_VERSION, "compacted_through": compacted_through})


def open_parquet(state: StoreState, duck: duckdb.DuckDBPyConnection) -> None:
    """Create or check the data directory, then load the Parquet side into ``state`` (blocking).

    Sets ``compacted_through``, ``files`` and ``latest`` (as of the last compaction: the WAL-resident
    rows are applied when the log is recovered). Raises StoreError for a directory that cannot be used.
    """
    try:
        for d in (state.wal_dir, state.parquet_dir, state.cursor_dir):
            d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the data directory {state.data_dir}: {exc.strerror}",
                         path=state.data_dir) from None
    state.compacted_through = _check_manifest(state)
    segments.remove_orphans(state.parquet_dir, state.compacted_through)
    segments.remove_contained(state.parquet_dir)
    state.files = segments.list_files(state.parquet_dir)
    state.aggregates = aggregates.load(state.aggregates_dir, state.files)
    state.latest = _load_latest(state, duck)


def _check_manifest(state: StoreState) -> int:
    """The manifest's ``compacted_through``, after upgrading an older layout (a new directory: 0)."""
    path = state.data_dir / MANIFEST
    if not path.exists():
        write_manifest(state.data_dir, 0)
        return 0
    manifest = read_json(path)
    version = manifest.get("layout")
    if not isinstance(version, int) or not 1 <= version <= LAYOUT_VERSION:
        raise StoreError(
            f"{state.data_dir} holds store layout {version}, newer than this gateway's "
            f"{LAYOUT_VERSION}: upgrade sitewise-edge or use another data_dir", path=path
        )
    compacted_through = int(manifest.get("compacted_through", 0))
    if version < LAYOUT_VERSION:
        log.info("upgrading the store at %s from layout %d to %d", state.data_dir, version, LAYOUT_VERSION)
        if version < 2:
            count = segments.migrate_v1(state.parquet_dir)
            log.info("rewrote %d Parquet files in layout %d", count, LAYOUT_VERSION)
            (state.parquet_dir / LATEST_FILE).unlink(missing_ok=True)
        write_manifest(state.data_dir, compacted_through)
    return compacted_through


def _load_latest(state: StoreState, duck: duckdb.DuckDBPyConnection) -> LatestIndex:
    """The latest-value index as of the last compaction: saved with it, or rebuilt by one scan."""
    path = state.parquet_dir / LATEST_FILE
    if path.exists():
        index = LatestIndex.load(path)
        index.drop_newer_than(state.compacted_through)
        return index
    if not state.files:
        return LatestIndex()
    log.info("building the latest-value index from %d Parquet files", len(state.files))
    with Reader(duck.cursor(), Snapshot(tuple(state.files), ())) as r:
        return LatestIndex.from_table(*r.latest_all_versioned())
