import asyncio
import json
import os
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from sitewise_edge.config import StorageConfig
from sitewise_edge.errors import StoreError
from sitewise_edge.samples import from_columns
from storage import segments
from storage.layout import LAYOUT_VERSION
from storage.store import Position, Store
from tests.conftest import eventually

T0 = time.time_ns() - 3600 * 10**9


def batch(i: int, n: int = 10) -> pa.RecordBatch:
    return from_columns(["/a", "/b"] * (n // 2), [T0 + i * 10**9 + k for k in range(n)],
                        double=[float(i * 100 + k) for k in range(n)])


async def open_store(path: Path, **cfg: object) -> Store:
    store = Store(path, StorageConfig(compact_interval="1h", **cfg))  # type: ignore[arg-type]
    await store.open()
    return store


def count(store: Store) -> int:
    with store.reader() as r:
        return r.count()


async def test_append_is_visible_and_survives_restart(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    for i in range(5):
        await store.append(batch(i))
    assert count(store) == 50
    with store.reader() as r:
        latest = r.latest("/b")
    assert latest.column("double").to_pylist() == [409.0]
    await store.close()
    store = await open_store(tmp_path)
    assert count(store) == 50
    await store.close()


async def test_compaction_moves_rows_to_parquet_without_loss(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    for i in range(5):
        await store.append(batch(i))
    assert await store.compact() == 50
    assert list((tmp_path / "parquet").glob("day=*/*.parquet"))
    await store.append(batch(5))
    assert count(store) == 60  # Parquet and WAL-resident rows together
    with store.reader() as r:
        hist = r.history("/a", None, None)
    assert hist.num_rows == 30
    times = hist.column("time").cast(pa.int64()).to_pylist()
    assert times == sorted(times)
    await store.close()
    store = await open_store(tmp_path)
    assert count(store) == 60
    await store.close()


async def test_torn_tail_is_cut_and_reported(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    for i in range(3):
        await store.append(batch(i))
    await store.close()
    seg = sorted((tmp_path / "wal").glob("*.wal"))[-1]
    seg.write_bytes(seg.read_bytes()[:-5])  # a crash in the middle of the last frame
    store = Store(tmp_path, StorageConfig(compact_interval="1h"))
    report = await store.open()
    assert report.truncated_bytes > 0 and report.records == 2
    assert count(store) == 20
    await store.append(batch(9))  # the log goes on after the cut
    assert count(store) == 30
    await store.close()


async def test_corrupt_frame_checksum_is_cut(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    for i in range(3):
        await store.append(batch(i))
    await store.close()
    seg = sorted((tmp_path / "wal").glob("*.wal"))[-1]
    data = bytearray(seg.read_bytes())
    data[-20] ^= 0xFF
    seg.write_bytes(bytes(data))
    store = Store(tmp_path, StorageConfig(compact_interval="1h"))
    report = await store.open()
    assert report.records == 2 and report.truncated_bytes > 0
    await store.close()


async def test_read_positions_cross_compaction_and_restart(tmp_path: Path) -> None:
    store = await open_store(tmp_path, segment_size="2KiB")
    store.cursor("pub")  # a publisher holds the log back
    for i in range(10):
        await store.append(batch(i))
    await store.compact()  # rows leave memory; the WAL stays for the cursor
    rows, pos = store.read(Position(1, 0), 25)
    assert rows.num_rows == 25 and pos == Position(3, 5)
    rest, end = store.read(pos, 1000)
    assert rest.num_rows == 75 and end == Position(11, 0)
    store.save_cursor("pub", pos)
    await store.close()
    store = await open_store(tmp_path, segment_size="2KiB")
    assert store.cursor("pub") == pos
    again, _ = store.read(store.cursor("pub"), 1000)
    assert again.column("double").to_pylist() == rest.column("double").to_pylist()
    await store.close()


async def test_wal_segments_deleted_once_compacted_and_forwarded(tmp_path: Path) -> None:
    store = await open_store(tmp_path, segment_size="1KiB")
    store.cursor("pub")
    for i in range(10):
        await store.append(batch(i))
    await store.compact()
    before = len(list((tmp_path / "wal").glob("*.wal")))
    store.save_cursor("pub", Position(store.next_seq, 0))
    await store.compact()
    await store.append(batch(11))
    await store.compact()
    after = len(list((tmp_path / "wal").glob("*.wal")))
    assert after < before
    assert count(store) == 110
    await store.close()


async def test_interval_fsync_acknowledges_after_sync(tmp_path: Path) -> None:
    store = await open_store(tmp_path, fsync="20ms")
    seq = await store.append(batch(0))
    assert seq == 1 and count(store) == 10
    await store.close()


async def test_newer_layout_is_refused(tmp_path: Path) -> None:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "manifest.json").write_text(json.dumps({"layout": 99, "compacted_through": 0}))
    store = Store(tmp_path, StorageConfig())
    with pytest.raises(StoreError, match="layout 99, newer than"):
        await store.open()


async def test_retention_drops_old_days(tmp_path: Path) -> None:
    store = await open_store(tmp_path, retention="1d")
    old = from_columns(["/a"], [T0 - 10 * 86400 * 10**9], double=[1.0])
    await store.append(old)
    await store.append(batch(0))
    await store.compact()
    assert await store.apply_retention() == 1
    assert count(store) == 10
    await store.close()


async def test_same_key_replaces_unless_quality_differs(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    t = T0 + 5 * 10**9
    await store.append(from_columns(["/k"], [t], double=[1.0]))
    await store.append(from_columns(["/k", "/k"], [t, t], double=[2.0, 9.0], quality=[0, 1]))  # GOOD replaces
    await store.append(from_columns(["/k", "/k"], [t, t], double=[3.0, 4.0]))  # last write in a batch wins

    def values() -> list[tuple[float, int]]:
        with store.reader() as r:
            h = r.history("/k", None, None)
        return list(zip(h.column("double").to_pylist(), h.column("quality").to_pylist(), strict=True))

    assert values() == [(4.0, 0), (9.0, 1)]
    await store.compact()  # the same rule holds across compaction ...
    assert values() == [(4.0, 0), (9.0, 1)]
    await store.append(from_columns(["/k"], [t], double=[5.0]))  # ... and between Parquet and the WAL
    assert values() == [(5.0, 0), (9.0, 1)]
    await store.compact()
    assert values() == [(5.0, 0), (9.0, 1)]
    with store.reader() as r:
        assert r.latest("/k").column("double").to_pylist() in ([5.0], [9.0])
    await store.close()
    store = await open_store(tmp_path)
    assert values() == [(5.0, 0), (9.0, 1)]
    await store.close()


async def test_latest_index_follows_timestamps_not_arrival(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    await store.append(from_columns(["/a", "/b"], [T0 + 10, T0 + 10], double=[1.0, 1.0]))
    await store.append(from_columns(["/a"], [T0 + 5], double=[2.0]))  # late: not the latest
    await store.append(from_columns(["/b", "/b"], [T0 + 20, T0 + 20], double=[3.0, 4.0]))  # same time: last wins
    assert store.latest("/a").column("double").to_pylist() == [1.0]
    assert store.latest("/b").column("double").to_pylist() == [4.0]
    assert store.latest("/none").num_rows == 0
    with store.reader() as r:
        scanned = r.latest_all()
    assert scanned.column("double").to_pylist() == store.latest_all().column("double").to_pylist()
    await store.compact()
    await store.append(from_columns(["/a"], [T0 + 30], double=[5.0]))
    await store.close()
    store = await open_store(tmp_path)  # saved index + the WAL after it
    assert store.latest_all().column("double").to_pylist() == [5.0, 4.0]
    await store.close()
    (tmp_path / "parquet" / "latest.parquet").unlink()  # an index lost: rebuilt by scanning
    store = await open_store(tmp_path)
    assert store.latest_all().column("double").to_pylist() == [5.0, 4.0]
    await store.close()


class _FailingFile:
    """Wraps the WAL's file: the next write fails half-way, as on a full disk."""

    def __init__(self, f: object) -> None:
        self._f = f
        self.fail_next = True

    def write(self, data: bytes) -> int:
        if self.fail_next:
            self.fail_next = False
            self._f.write(data[: len(data) // 2])  # type: ignore[attr-defined]
            raise OSError(28, "No space left on device")
        return self._f.write(data)  # type: ignore[attr-defined,no-any-return]

    def __getattr__(self, name: str) -> object:
        return getattr(self._f, name)


async def test_a_failed_write_does_not_bury_later_batches(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    await store.append(batch(0))
    writer = store.state.log
    assert writer is not None and writer._file is not None
    writer._file = _FailingFile(writer._file)  # type: ignore[assignment]
    with pytest.raises(StoreError, match="No space left"):
        await store.append(batch(1))
    await store.append(batch(2))  # acknowledged after the failure: must survive
    await store.append(batch(3))
    assert count(store) == 30
    await store.close()
    store = Store(tmp_path, StorageConfig(compact_interval="1h"))
    report = await store.open()
    assert report.truncated_bytes == 0
    assert count(store) == 30
    with store.reader() as r:
        assert sorted(set(r.history("/a", None, None).column("double").to_pylist()))[-1] == 308.0
    await store.close()


async def test_failed_fsync_fails_the_waiting_batches_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = await open_store(tmp_path, fsync="1h")  # syncs only when asked
    real_fsync = os.fsync
    calls = {"n": 0}

    def flaky(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError(5, "Input/output error")
        real_fsync(fd)

    first = asyncio.create_task(store.append(batch(1)))
    await eventually(lambda: store.unsynced)  # written, waiting for the group commit
    monkeypatch.setattr("storage.wal.os.fsync", flaky)
    await store.sync()
    with pytest.raises(StoreError, match="cannot fsync"):
        await first
    assert count(store) == 0  # never visible, never acknowledged
    second = asyncio.create_task(store.append(batch(2)))
    await eventually(lambda: store.unsynced)
    await store.sync()
    assert await second > 0
    assert count(store) == 10
    await store.close()
    store = await open_store(tmp_path)
    assert count(store) == 10
    await store.close()


async def test_zero_filled_tail_is_cut(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    await store.append(batch(0))
    await store.close()
    seg = sorted((tmp_path / "wal").glob("*.wal"))[-1]
    with open(seg, "ab") as f:
        f.write(b"\0" * 4096)  # a file system that extended the file but never wrote the block
    store = Store(tmp_path, StorageConfig(compact_interval="1h"))
    report = await store.open()
    assert report.truncated_bytes == 4096 and count(store) == 10
    await store.append(batch(1))
    await store.close()
    store = await open_store(tmp_path)
    assert count(store) == 20
    await store.close()


async def test_disk_budget_drops_history_first_then_unforwarded_data_counted_as_lost(tmp_path: Path) -> None:
    store = await open_store(tmp_path, segment_size="8KiB", max_disk="1MiB")
    store.cursor("publisher-cloud")  # a publisher that never forwards anything
    old_day = T0 - 5 * 86400 * 10**9
    for i in range(40):  # history of an old day, then today's data
        await store.append(from_columns(["/h"] * 500, [old_day + i * 10**9 + k for k in range(500)],
                                        double=np.random.default_rng(i).normal(size=500)))
    await store.compact()
    for i in range(40):
        await store.append(batch(i, 500))
    await store.compact()
    before = store.disk_usage()
    budget = before // 2
    store.config = StorageConfig(compact_interval="1h", segment_size="8KiB", max_disk=budget)
    freed = await store.enforce_budget()
    assert store.disk_usage() <= budget and freed > 0
    assert not list((tmp_path / "parquet").glob(f"day={segments.day_folder(old_day)[4:]}*"))
    assert store.stats.values_lost > 0  # the history was not enough: unforwarded WAL had to go
    rows, pos = store.read(store.cursor("publisher-cloud"), 10**9)
    assert pos.seq == store.next_seq  # the publisher moves on past what was deleted
    assert rows.num_rows + store.stats.values_lost == 40 * 500 * 2  # every value forwarded or counted
    await store.close()


async def test_cursors_of_removed_publishers_are_forgotten(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    store.save_cursor("publisher-old", Position(1, 0))
    store.save_cursor("publisher-kept", Position(1, 0))
    store.retain_cursors({"publisher-kept"})
    assert not (tmp_path / "cursors" / "publisher-old.json").exists()
    assert (tmp_path / "cursors" / "publisher-kept.json").exists()
    await store.close()


def test_encoding_round_trips_every_value_bit_for_bit() -> None:
    from storage import encoding

    rng = np.random.default_rng(3)
    n = 5000
    streams = [f"/s{i % 7}" for i in range(n)]
    base = np.arange(n, dtype=np.int64) * 10**9 + T0
    jitter = rng.integers(-20, 21, n) * 10**6  # millisecond clocks
    times = np.where(np.arange(n) % 7 == 3, base + rng.integers(0, 10**9, n), base + jitter)  # one stream at ns
    specials = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1e300, 5e-324, 0.1, 2**53 + 2.0])
    doubles = np.where(np.arange(n) % 7 == 0, np.round(rng.normal(50, 5, n), 2),  # decimals
                       np.where(np.arange(n) % 7 == 1, rng.normal(0, 1, n).astype(np.float32).astype(np.float64),
                                rng.normal(0, 1, n)))  # float32-exact, then full doubles
    doubles[np.arange(n) % 7 == 2] = specials[rng.integers(0, len(specials), (np.arange(n) % 7 == 2).sum())]
    kinds = np.arange(n) % 7
    table = pa.table(from_columns(
        streams, times,
        double=pa.array(doubles, mask=kinds >= 4),
        integer=pa.array(rng.integers(-(2**62), 2**62, n), mask=kinds != 4),
        string=pa.array([f"v{i % 13}" for i in range(n)], mask=kinds != 5),
        boolean=pa.array(rng.integers(0, 2, n).astype(bool), mask=kinds != 6),
        quality=rng.integers(0, 3, n).astype(np.int8),
    ))
    table = segments.sort_and_dedupe(table)
    back = encoding.decode(encoding.encode(table))
    assert back.column("time").equals(table.column("time"))
    assert back.column("stream").cast(pa.string()).equals(table.column("stream").cast(pa.string()))
    for name in ("integer", "string", "boolean", "quality"):
        assert back.column(name).equals(table.column(name)), name
    a = table.column("double").to_numpy(zero_copy_only=False)
    b = back.column("double").to_numpy(zero_copy_only=False)
    assert a.view(np.int64).tolist() == b.view(np.int64).tolist()  # same bits: NaN, -0.0, inf included


async def test_a_layout_1_store_is_upgraded_on_open(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    store = await open_store(tmp_path)
    await store.append(batch(0))
    await store.compact()
    await store.close()
    (path,) = (tmp_path / "parquet").glob("day=*/*.parquet")
    pq.write_table(segments.read_file(path), path)  # the same rows as layout 1 wrote them
    (tmp_path / "manifest.json").write_text(json.dumps({"layout": 1, "compacted_through": 1}))
    store = await open_store(tmp_path)
    assert "time_s" in pq.read_schema(path).names
    assert count(store) == 10
    assert json.loads((tmp_path / "manifest.json").read_text())["layout"] == LAYOUT_VERSION
    await store.close()


async def test_small_files_of_a_day_are_merged_without_changing_answers(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    for i in range(20):
        await store.append(batch(i))
        await store.append(from_columns(["/a"], [T0 + i * 10**9], double=[-1.0]))  # rewrite a key each time
        await store.compact()
    with store.reader() as r:
        before = r.history("/a", None, None)
    assert len(list((tmp_path / "parquet").glob("day=*/*.parquet"))) == 20
    assert await store.merge_days() >= 2
    assert len(store.snapshot().files) < 20  # replaced files leave the queries at once ...
    with store.reader() as r:
        after = r.history("/a", None, None)
    assert after.equals(before)
    await store.close()  # ... and the disk when no query can read them any more
    assert len(list((tmp_path / "parquet").glob("day=*/*.parquet"))) < 20
    store = await open_store(tmp_path)
    with store.reader() as r:
        assert r.history("/a", None, None).equals(before)
    await store.close()


async def test_appends_wait_for_compaction_when_it_falls_behind(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("storage.store.MAX_RESIDENT_ROWS", 25)
    store = await open_store(tmp_path)
    for i in range(10):
        await store.append(batch(i))
        assert store.state.resident_rows <= 25 + 10  # bounded: at most the limit plus one batch
    assert count(store) == 100
    await store.close()
