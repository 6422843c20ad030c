"""Damage to the WAL (a bad block, flipped bits, a zeroed range) costs the frames it touches, is quarantined and
counted exactly, and never costs anything again on a later start; a torn tail is still told apart and cut."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from sitewise_edge.config import StorageConfig
from sitewise_edge.samples import from_columns
from storage import wal
from storage.store import Position, Store
from tests.storage.test_store import T0, count

ROWS = 10


def batch(i: int) -> pa.RecordBatch:
    return from_columns(["/a", "/b"] * (ROWS // 2), [T0 + i * 10**9 + k for k in range(ROWS)],
                        double=[float(i * 100 + k) for k in range(ROWS)])


async def open_store(path: Path, segment_size: str = "64MiB") -> Store:
    store = Store(path, StorageConfig(compact_interval="1h", segment_size=segment_size))
    await store.open()
    return store


async def write(path: Path, n: int, *, segment_size: str = "64MiB", compact_first: int = 0) -> None:
    """``n`` batches of ROWS values, the first ``compact_first`` of them compacted, a publisher holding the WAL."""
    store = await open_store(path, segment_size)
    store.cursor("publisher-cloud")
    for i in range(n):
        if i == compact_first and compact_first:
            await store.compact()
        await store.append(batch(i))
    await store.close()


def frames(path: Path) -> list[wal.Frame]:
    return [f for f in wal.scan(path) if isinstance(f, wal.Frame)]


def segments(path: Path) -> list[Path]:
    return sorted((path / "wal").glob("*.wal"))


def damage(path: Path, offset: int, change: Callable[[bytearray], None]) -> None:
    data = bytearray(path.read_bytes())
    change(data)
    path.write_bytes(bytes(data))


def flip(at: int) -> Callable[[bytearray], None]:
    def change(data: bytearray) -> None:
        data[at] ^= 0xFF
    return change


def zero(start: int, end: int) -> Callable[[bytearray], None]:
    def change(data: bytearray) -> None:
        data[start:end] = bytes(end - start)
    return change


def values(store: Store) -> list[float]:
    with store.reader() as r:
        return sorted(r.history("/a", None, None).column("double").to_pylist()
                      + r.history("/b", None, None).column("double").to_pylist())


def expected(batches: range, lost: set[int]) -> list[float]:
    return sorted(float(i * 100 + k) for i in batches if i not in lost for k in range(ROWS))


@pytest.mark.parametrize("where", ["payload", "header-length", "header-seq", "checksum"])
async def test_a_bad_byte_in_the_middle_costs_one_frame_and_is_quarantined(tmp_path: Path, where: str) -> None:
    await write(tmp_path, 8)
    seg = segments(tmp_path)[0]
    victim = frames(seg)[3]  # batch 3 (seq 4)
    at = {"payload": victim.offset + wal.FRAME_OVERHEAD + 40, "header-length": victim.offset + 1,
          "header-seq": victim.offset + 6, "checksum": victim.offset + 13}[where]
    damage(seg, at, flip(at))
    damaged = seg.read_bytes()
    store = Store(tmp_path, StorageConfig(compact_interval="1h"))
    report = await store.open()
    assert report.truncated_bytes == 0  # not a torn tail
    [d] = report.damage
    assert (d.first_seq, d.last_seq, d.records_lost, d.compacted) == (4, 4, 1, 0)
    if where == "payload":  # the header still reads: the frame's values are counted exactly
        assert (d.values_lost, d.exact) == (ROWS, True)
    assert store.stats.values_lost == d.values_lost
    assert values(store) == expected(range(8), {3})  # every frame after the damage is kept
    quarantined = tmp_path / "quarantine" / d.file  # type: ignore[operator]
    assert quarantined.read_bytes() == damaged[d.offset: d.offset + d.bytes]  # the bytes as found, kept
    assert d.offset <= at < d.offset + d.bytes <= victim.end
    assert json.loads(quarantined.with_suffix(".json").read_text())["recordsLost"] == 1
    await store.append(batch(8))
    await store.close()
    for _ in range(2):  # later starts lose nothing more and report nothing new
        store = Store(tmp_path, StorageConfig(compact_interval="1h"))
        report = await store.open()
        assert report.damage == [] and report.truncated_bytes == 0
        assert values(store) == expected(range(9), {3})
        assert [q.first_seq for q in store.quarantine] == [4]  # still listed until the operator removes it
        await store.close()


async def test_a_zeroed_range_across_frames_loses_exactly_those_records(tmp_path: Path) -> None:
    await write(tmp_path, 10)
    seg = segments(tmp_path)[0]
    fs = frames(seg)
    damage(seg, 0, zero(fs[2].offset + 30, fs[5].offset + 10))  # the end of frame 3 to the start of frame 6
    store = Store(tmp_path, StorageConfig(compact_interval="1h"))
    report = await store.open()
    [d] = report.damage
    assert (d.first_seq, d.last_seq, d.records_lost) == (3, 6, 4)
    assert (d.values_lost, d.exact) == (0, False)  # nothing of the frames' metadata is left: records counted only
    assert "at least 0 values" in d.describe()
    assert values(store) == expected(range(10), {2, 3, 4, 5})
    await store.close()
    store = await open_store(tmp_path)
    assert values(store) == expected(range(10), {2, 3, 4, 5}) and store.stats.values_lost == 0
    await store.close()


async def test_damage_to_a_compacted_segment_never_drops_the_values_after_it(tmp_path: Path) -> None:
    await write(tmp_path, 30, segment_size="2KiB", compact_first=20)  # 20 batches in Parquet, 10 only in the WAL
    first = segments(tmp_path)[0]
    victim = frames(first)[1]  # seq 2: compacted, still in the WAL for the publisher
    damage(first, 0, flip(victim.offset + wal.FRAME_OVERHEAD + 30))
    for start in range(3):  # every restart keeps all 300 values: the bug was losing the 100 not yet compacted
        store = await open_store(tmp_path, "2KiB")
        assert values(store) == expected(range(30 + start), set())
        if start == 0:
            assert [(q.first_seq, q.compacted, q.records_lost) for q in store.quarantine] == [(2, 1, 0)]
            rows, pos = store.read(store.cursor("publisher-cloud"), 10**6)  # the publisher skips the one record
            assert rows.num_rows == 29 * ROWS and pos == Position(31, 0)
        await store.append(batch(30 + start))
        await store.close()
    store = await open_store(tmp_path, "2KiB")
    assert count(store) == 33 * ROWS and len(store.quarantine) == 1
    await store.close()


async def test_a_sealed_segment_cut_short_counts_the_records_up_to_the_next_one(tmp_path: Path) -> None:
    await write(tmp_path, 30, segment_size="2KiB")
    segs = segments(tmp_path)
    assert len(segs) > 2
    fs = frames(segs[1])
    segs[1].write_bytes(segs[1].read_bytes()[: fs[1].offset + 7])  # a lost block at the end of a sealed segment
    lost = {f.seq - 1 for f in fs[1:]}
    store = Store(tmp_path, StorageConfig(compact_interval="1h", segment_size="2KiB"))
    report = await store.open()
    [d] = report.damage
    assert (d.first_seq, d.last_seq) == (fs[1].seq, fs[-1].seq) and d.records_lost == len(lost)
    assert values(store) == expected(range(30), lost)  # the segments after it are kept whole
    await store.close()
    store = await open_store(tmp_path, "2KiB")
    assert values(store) == expected(range(30), lost) and not store.stats.values_lost
    await store.close()


async def test_a_torn_tail_is_cut_not_quarantined(tmp_path: Path) -> None:
    await write(tmp_path, 5)
    seg = segments(tmp_path)[0]
    seg.write_bytes(seg.read_bytes()[:-7])
    store = Store(tmp_path, StorageConfig(compact_interval="1h"))
    report = await store.open()
    assert report.damage == [] and report.truncated_bytes > 0 and store.stats.values_lost == 0
    assert not (tmp_path / "quarantine").exists() or not list((tmp_path / "quarantine").iterdir())
    assert values(store) == expected(range(4), set())
    await store.close()


def test_resync_finds_the_next_frame_in_a_large_damaged_segment(tmp_path: Path) -> None:
    writer = wal.WalWriter(tmp_path, 1, 1 << 30)
    big = from_columns(["/a"] * 50_000, list(range(50_000)), double=[float(k) for k in range(50_000)])
    for _ in range(20):
        writer.append(big)
    writer.close()
    [path] = list(tmp_path.glob("*.wal"))
    fs = frames(path)
    damage(path, 0, zero(fs[0].offset + 100, fs[10].offset + 5))  # ~8 MB of zeros over ten frames
    items = list(wal.scan(path))
    [d] = [i for i in items if isinstance(i, wal.Damage)]
    assert (d.previous_seq, d.next_seq, d.end) == (0, 12, fs[11].offset)
    assert [i.seq for i in items if isinstance(i, wal.Frame)] == list(range(12, 21))


async def test_damage_that_appears_while_running_is_skipped_by_readers_and_logged_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = await open_store(tmp_path, "2KiB")
    pos = store.cursor("publisher-cloud")
    for i in range(20):
        await store.append(batch(i))
    await store.compact()  # the records leave memory: a publisher behind reads them from the segments
    first = segments(tmp_path)[0]
    victim = frames(first)[1]
    damage(first, 0, flip(victim.offset + wal.FRAME_OVERHEAD + 30))  # the disk goes bad under a running store
    for _ in range(2):
        rows, end = store.read(pos, 10**6)
        assert rows.num_rows == 19 * ROWS and end == Position(21, 0)
    assert sum("unreadable bytes skipped" in r.message for r in caplog.records) == 1
    await store.close()
    store = await open_store(tmp_path, "2KiB")  # the next start quarantines it
    assert [(q.first_seq, q.compacted) for q in store.quarantine] == [(victim.seq, 1)]
    await store.close()
