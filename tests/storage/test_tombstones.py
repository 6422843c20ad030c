"""Deleting a stream (DeleteTimeSeries): every read forgets the values written before, compaction and merges
drop them from disk, and the delete holds across restarts and kill -9 (storage/tombstones.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sitewise_edge.errors import StoreError
from sitewise_edge.samples import from_columns
from storage.compaction import MERGE_FAN_IN
from storage.store import Store
from storage.tombstones import INLINE_MARKS, TOMBSTONES_FILE
from tests.conftest import ROOT, ended
from tests.storage.test_store import T0, open_store

S = 10**9


def values(stream: str, seconds: list[int], base: float) -> pa.RecordBatch:
    return from_columns([stream] * len(seconds), [T0 + s * S for s in seconds],
                        double=[base + s for s in seconds])


def seen(store: Store, stream: str) -> dict[str, object]:
    """What every read path of the store answers for ``stream``."""
    with store.reader() as r:
        return {
            "history": r.history(stream, None, None).column("double").to_pylist(),
            "points": r.points([stream], T0 - S, T0 + 100 * S).column("double").to_pylist(),
            "aggregates": r.aggregates([stream], T0 - S, T0 + 100 * S, 1000 * S).num_rows,
            "latest": r.latest(stream).column("double").to_pylist(),
            "streams": stream in r.streams(),
            "index": store.latest(stream).column("double").to_pylist(),
            "index_all": stream in store.latest_all().column("stream").cast(pa.string()).to_pylist(),
        }


def on_disk(store: Store, stream: str) -> list[float]:
    out: list[float] = []
    for path in store.state.files:  # the live files (a merge buries its sources for a moment)
        table = store.decode_file(pq.read_table(path))
        keep = pa.compute.equal(table.column("stream").cast(pa.string()), stream)
        out += table.filter(keep).column("double").to_pylist()
    return sorted(out)


GONE = {"history": [], "points": [], "aggregates": 0, "latest": [], "streams": False, "index": [],
        "index_all": False}


async def after_restart(path: Path, stream: str) -> tuple[object, object]:
    """The history and the latest-value index of ``stream`` once the store is opened again."""
    store = await open_store(path)
    try:
        got = seen(store, stream)
        return got["history"], got["index"]
    finally:
        await store.close()


@pytest.mark.parametrize("compacted", [False, True], ids=["resident", "in-parquet"])
async def test_a_deleted_stream_is_gone_from_every_read_and_starts_again(tmp_path: Path, compacted: bool) -> None:
    store = await open_store(tmp_path)
    await store.append(values("/gone", [1, 2, 3], 100.0))
    await store.append(values("/kept", [1, 2], 200.0))
    if compacted:
        await store.compact()
    await store.delete_stream("/gone")
    assert seen(store, "/gone") == GONE
    assert seen(store, "/kept")["history"] == [201.0, 202.0]
    await store.append(values("/gone", [2], 500.0))  # a new time series: the old values stay deleted
    after = seen(store, "/gone")
    assert (after["history"], after["latest"], after["index"], after["aggregates"]) == ([502.0], [502.0], [502.0], 1)
    await store.close()
    assert await after_restart(tmp_path, "/gone") == ([502.0], [502.0])  # the tombstone and the WAL come back
    assert await after_restart(tmp_path, "/kept") == ([201.0, 202.0], [202.0])


async def test_compaction_and_merge_drop_the_deleted_rows_from_disk(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    await store.append(values("/gone", [1, 2], 100.0))
    await store.compact()  # an old file with the deleted rows ...
    await store.append(values("/gone", [3], 100.0))  # ... and resident ones
    await store.append(values("/kept", [1], 200.0))
    assert on_disk(store, "/gone") == [101.0, 102.0]
    await store.delete_stream("/gone")
    await store.append(values("/gone", [4], 900.0))
    await store.compact()  # writes the resident records without the deleted row
    assert on_disk(store, "/gone") == [101.0, 102.0, 904.0]  # the old file is not rewritten yet
    assert seen(store, "/gone")["history"] == [904.0]
    for k in range(MERGE_FAN_IN - 2):  # small files of the same size: the day's 8 files are merged
        await store.append(values("/kept", [10 + k, 20 + k], 200.0))
        await store.compact()
    assert await store.merge_days() == 1  # the rewrite of the day drops the old file's deleted rows
    assert on_disk(store, "/gone") == [904.0]
    assert len(on_disk(store, "/kept")) == 1 + 2 * (MERGE_FAN_IN - 2)
    assert seen(store, "/gone")["history"] == [904.0]
    await store.close()
    assert await after_restart(tmp_path, "/gone") == ([904.0], [904.0])


async def test_a_value_after_the_delete_with_an_older_timestamp_becomes_the_latest(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    await store.append(values("/gone", [50], 100.0))
    await store.delete_stream("/gone")
    await store.append(values("/gone", [10], 700.0))  # older than the deleted latest value
    assert seen(store, "/gone")["index"] == [710.0]
    await store.close()
    assert await after_restart(tmp_path, "/gone") == ([710.0], [710.0])  # the WAL replays the deleted value first


async def test_an_unreadable_tombstone_file_refuses_to_open_rather_than_show_deleted_values(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    await store.append(values("/gone", [1], 100.0))
    await store.delete_stream("/gone")
    await store.close()
    (tmp_path / TOMBSTONES_FILE).write_text("{not json")
    with pytest.raises(StoreError, match="deleted-streams file is unreadable"):
        await open_store(tmp_path)


SCRIPT = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from sitewise_edge.config import StorageConfig
    from sitewise_edge.samples import from_columns
    from storage.store import Store

    async def main() -> None:
        store = Store(Path(sys.argv[1]), StorageConfig(compact_interval="1h"))
        await store.open()
        t0 = int(sys.argv[2])
        await store.append(from_columns(["/gone"] * 3, [t0 + i for i in range(3)], double=[1.0, 2.0, 3.0]))
        await store.delete_stream("/gone")
        await store.append(from_columns(["/gone"], [t0], double=[9.0]))
        print("deleted", flush=True)
        await asyncio.sleep(60)

    asyncio.run(main())
""")


def delete_then_kill_9(data_dir: Path) -> None:
    """A process deletes a stream, writes a new value, says so, and is killed with SIGKILL."""
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(data_dir), str(T0)], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline()
        assert line == "deleted\n", proc.stderr.read()
    finally:
        proc.send_signal(signal.SIGKILL)
        assert ended(proc) == -signal.SIGKILL


async def test_the_delete_survives_kill_9(tmp_path: Path) -> None:
    await asyncio.to_thread(delete_then_kill_9, tmp_path)
    assert await after_restart(tmp_path, "/gone") == ([9.0], [9.0])


async def test_the_client_token_of_a_delete_is_kept_across_a_restart(tmp_path: Path) -> None:
    token = "a" * 36
    store = await open_store(tmp_path)
    await store.append(values("/gone", [1], 100.0))
    await store.delete_stream("/gone", token)
    await store.close()
    store = await open_store(tmp_path)
    try:
        assert (store.deleted_by(token), store.deleted_by("b" * 36)) == ("/gone", None)
    finally:
        await store.close()


@pytest.mark.parametrize("deleted", [2, INLINE_MARKS + 8], ids=["predicate", "anti-join"])
async def test_many_deleted_streams_and_quoted_names(tmp_path: Path, deleted: int) -> None:
    names = [f"/it's/{i}" for i in range(deleted + 1)]
    store = await open_store(tmp_path)
    try:
        for name in names:
            await store.append(values(name, [1], 100.0))
        for name in names[:-1]:
            await store.delete_stream(name)
        with store.reader() as r:
            assert r.streams() == [names[-1]]
        assert seen(store, names[0]) == GONE and seen(store, names[-1])["history"] == [101.0]
    finally:
        await store.close()
