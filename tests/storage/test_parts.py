"""The parts of the store on their own: the shared state, the merge planning, the log reader's errors."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
import pytest

from sitewise_edge.config import StorageConfig
from sitewise_edge.errors import StoreError
from sitewise_edge.samples import from_columns
from storage import segments
from storage.compaction import MERGE_FAN_IN, mergeable_run
from storage.snapshot import Record
from storage.state import Position, StoreState
from storage.store import Store

T0 = time.time_ns() - 3600 * 10**9


def batch(i: int, n: int = 10) -> pa.RecordBatch:
    return from_columns(["/a", "/b"] * (n // 2), [T0 + i * 10**9 + k for k in range(n)],
                        double=[float(i * 100 + k) for k in range(n)])


def test_published_records_are_visible_in_a_snapshot_and_the_latest_index(tmp_path: Path) -> None:
    state = StoreState(tmp_path, StorageConfig())
    state.publish([Record(3, batch(0)), Record(4, batch(1, 4))])
    snap = state.snapshot()
    assert [r.seq for r in snap.resident] == [3, 4] and state.resident_rows == 14
    assert state.visible_seq == 5
    assert state.latest.get("/a").column("double").to_pylist() == [102.0]
    table = snap.resident_table()
    assert table.column("_v").to_pylist()[10] == 4 << 24  # the version of row 0 of record 4
    state.publish([Record(5, batch(2))])
    assert len(snap.resident) == 2  # a snapshot does not move


def test_replaced_files_leave_and_join_the_snapshot_together(tmp_path: Path) -> None:
    state = StoreState(tmp_path, StorageConfig())
    a, b, c = (tmp_path / f"{n}.parquet" for n in "abc")
    state.files = [a, b]
    before = state.snapshot()
    state.replace_files([a, b], [c])
    assert before.files == (a, b) and state.snapshot().files == (c,)
    state.replace_files({c})
    assert state.snapshot().files == ()


def _day_files(folder: Path, rows: list[int]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for seq, n in enumerate(rows, start=1):
        path = folder / f"{seq:020d}-{seq:020d}.parquet"
        segments.write_samples(pa.table(from_columns(["/a"] * n, [T0 + k for k in range(n)], double=[1.0] * n)), path)
        out.append(path)
    return out


@pytest.mark.parametrize(("rows", "expected"), [
    ([10] * (MERGE_FAN_IN - 1), []),  # too few files
    ([10] * MERGE_FAN_IN, list(range(MERGE_FAN_IN))),
    ([5000] + [10] * MERGE_FAN_IN, list(range(1, MERGE_FAN_IN + 1))),  # a bigger tier is left alone
    ([10] * MERGE_FAN_IN + [5000], list(range(MERGE_FAN_IN))),  # the run need not be the newest files
    ([10] * 4 + [5000] + [10] * 4, []),  # a run is consecutive
], ids=["too-few", "one-run", "after-a-big-file", "before-a-big-file", "broken-run"])
def test_merges_take_consecutive_files_of_one_size_tier(tmp_path: Path, rows: list[int],
                                                         expected: list[int]) -> None:
    files = _day_files(tmp_path / "day=2024-01-01", rows)
    assert mergeable_run(list(reversed(files))) == [files[i] for i in expected]


async def test_a_reader_behind_memory_names_the_segment_deleted_under_it(tmp_path: Path) -> None:
    store = Store(tmp_path, StorageConfig(compact_interval="1h", segment_size="1KiB"))  # type: ignore[arg-type]
    await store.open()
    try:
        store.cursor("pub")  # holds the WAL back
        for i in range(6):
            await store.append(batch(i))
        await store.compact()  # every row left memory: reads go to the segments
        first = sorted((tmp_path / "wal").glob("*.wal"))[0]
        first.unlink()
        with pytest.raises(StoreError, match="was removed while a reader needed it") as info:
            store.read(Position(1, 0), 1000)
        assert (info.value.segment, info.value.seq) == (first.name, 1)
    finally:
        await store.close()
