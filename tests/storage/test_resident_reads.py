"""Reads never copy the WAL-resident rows; the typed relation ExecuteQuery builds on (issue 10)."""

import time
from pathlib import Path

from sitewise_edge.config import StorageConfig
from sitewise_edge.samples import from_columns
from storage.store import Store

T0 = time.time_ns() - 3600 * 10**9


async def open_store(path: Path) -> Store:
    store = Store(path, StorageConfig(compact_interval="1h"))
    await store.open()
    return store


async def test_a_snapshot_shares_the_accepted_buffers_and_is_cached(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    for i in range(3):
        await store.append(from_columns(["/a", "/b"], [T0 + i, T0 + i], double=[float(i), -float(i)]))
    first, second = store.snapshot(), store.snapshot()
    table = first.resident_table()
    assert table is second.resident_table()  # built once until the next write, not per query
    for chunk, record in zip(table.to_batches(), first.resident, strict=True):
        for name in ("stream", "time", "double", "quality"):
            mine, accepted = chunk.column(name), record.batch.column(name)
            assert [b.address for b in mine.buffers() if b] == [b.address for b in accepted.buffers() if b], name
    await store.append(from_columns(["/a"], [T0 + 10], double=[9.0]))
    third = store.snapshot()
    assert third.resident_table() is not table and third.resident_table().num_rows == 7
    with store.reader() as r:
        assert r.count() == 7
    await store.close()


async def test_current_relation_filters_and_keeps_the_later_write(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    await store.append(from_columns(["/a", "/a", "/b"], [T0 + 1, T0 + 2, T0 + 1], double=[1.0, 2.0, 3.0]))
    await store.compact()  # part in Parquet, part resident
    await store.append(from_columns(["/a", "/c"], [T0 + 2, T0 + 5], double=[20.0, 5.0]))  # rewrites /a at T0+2
    with store.reader() as r:
        rel = r.current_relation()
        rows = sorted(rel.select("stream, time_ns, double").fetchall())
        assert rows == [("/a", T0 + 1, 1.0), ("/a", T0 + 2, 20.0), ("/b", T0 + 1, 3.0), ("/c", T0 + 5, 5.0)]
        assert r.current_relation(["/a"], T0 + 1, None).select("double").fetchall() == [(20.0,)]
        assert r.current_relation(None, None, T0 + 1).count("*").fetchall() == [(2,)]
        mine = r.current_relation(["/a", "/b"])
        assert mine.query("mine", "SELECT count(*) FROM mine WHERE double > 2").fetchall() == [(2,)]
    await store.close()
