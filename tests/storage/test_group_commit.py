"""One writer drains everything queued into one WAL frame and one fsync (issue 10)."""

import asyncio
import os
import threading
import time
from pathlib import Path

import pytest

from sitewise_edge.config import StorageConfig
from sitewise_edge.errors import StoreError
from sitewise_edge.samples import from_columns
from storage import wal
from storage.store import Store

T0 = time.time_ns() - 3600 * 10**9


async def open_store(path: Path, **cfg: object) -> Store:
    store = Store(path, StorageConfig(compact_interval="1h", **cfg))  # type: ignore[arg-type]
    await store.open()
    return store


def frames(store: Store) -> list[int]:
    return [seq for s in wal.list_segments(store.wal_dir) for seq, _ in wal.read_frames(s.path)]


def values(store: Store, stream: str) -> list[float]:
    with store.reader() as r:
        return r.history(stream, None, None).column("double").to_pylist()  # type: ignore[no-any-return]


@pytest.mark.parametrize("fsync", ["batch", "5ms"])
async def test_concurrent_appends_share_frames_and_fsyncs(tmp_path: Path, fsync: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    store = await open_store(tmp_path, fsync=fsync)
    fsyncs = 0
    real_fsync = os.fsync

    def counting(fd: int) -> None:
        nonlocal fsyncs
        fsyncs += 1
        real_fsync(fd)

    monkeypatch.setattr("storage.wal.os.fsync", counting)
    writers = [store.append(from_columns([f"/s{i}"], [T0 + i], double=[float(i)])) for i in range(64)]
    seqs = await asyncio.gather(*writers)
    assert len(frames(store)) < 64 and len(set(seqs)) == len(frames(store))  # the old writer: 64 frames
    assert fsyncs < 64
    assert sorted(seqs) == seqs  # acknowledged in order, each with its frame's number
    for i in (0, 31, 63):
        assert values(store, f"/s{i}") == [float(i)]
    await store.close()
    store = await open_store(tmp_path)
    with store.reader() as r:
        assert r.count() == 64
    await store.close()


async def test_later_append_of_a_key_wins_inside_a_shared_frame(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    first = [store.append(from_columns(["/k"], [T0], double=[float(i)])) for i in range(10)]
    seqs = await asyncio.gather(*first)
    assert len(set(seqs)) < 10  # some shared a frame
    assert values(store, "/k") == [9.0]
    assert store.latest("/k").column("double").to_pylist() == [9.0]
    await store.close()


async def test_failed_fsync_fails_every_append_of_the_frame_and_keeps_none(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    store = await open_store(tmp_path)

    def failing(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("storage.wal.os.fsync", failing)
    results = await asyncio.gather(*(store.append(from_columns(["/x"], [T0 + i], double=[1.0])) for i in range(8)),
                                   return_exceptions=True)
    assert all(isinstance(r, StoreError) and ("cannot fsync" in str(r) or "cannot write" in str(r)) for r in results)
    monkeypatch.undo()
    with store.reader() as r:
        assert r.count() == 0
    assert await store.append(from_columns(["/x"], [T0], double=[2.0])) > 0  # the writer goes on
    assert values(store, "/x") == [2.0]
    await store.close()


async def test_row_budget_cuts_frames(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("storage.writer.FRAME_ROWS", 3)
    store = await open_store(tmp_path)
    await asyncio.gather(*(store.append(from_columns(["/r", "/r"], [T0 + 2 * i, T0 + 2 * i + 1], double=[1.0, 2.0]))
                           for i in range(6)))
    assert len(frames(store)) == 6  # 2 rows each: a third would pass the budget of 3
    with store.reader() as r:
        assert r.count() == 12
    await store.close()


@pytest.mark.parametrize("fsync", ["batch", "5ms"])
async def test_appends_do_not_wait_for_the_default_executor(tmp_path: Path, fsync: str) -> None:
    """Reads run in the default executor's threads (API queries, publishers); with every one of them busy a WAL
    write must still go through: the writer has a thread of its own."""
    store = await open_store(tmp_path, fsync=fsync)
    gate = threading.Event()
    busy = [asyncio.ensure_future(asyncio.to_thread(gate.wait, 30)) for _ in range(64)]  # more than it has
    append = asyncio.ensure_future(store.append(from_columns(["/w"], [T0], double=[1.5])))
    try:
        done, _ = await asyncio.wait({append}, timeout=10)
        assert append in done, "the append waited for a thread of the default executor"
        assert append.result() > 0 and values(store, "/w") == [1.5]
    finally:
        gate.set()
        await asyncio.gather(append, *busy)
        await store.close()
