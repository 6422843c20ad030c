"""Layout 3: the WAL schema once per segment; a store written in layout 2 still opens (issue 10)."""

import json
import struct
import time
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from sitewise_edge.config import StorageConfig
from sitewise_edge.errors import StoreError
from sitewise_edge.samples import SCHEMA, from_columns
from storage import wal
from storage.layout import LAYOUT_VERSION
from storage.store import Store

T0 = time.time_ns() - 3600 * 10**9


def layout2_frame(seq: int, batch: pa.RecordBatch) -> bytes:
    """A frame as layout 2 wrote it: the payload a whole Arrow IPC stream, schema included."""
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, SCHEMA) as writer:
        writer.write_batch(batch)
    payload = sink.getvalue().to_pybytes()
    header = struct.pack("<IQ", len(payload), seq)
    return header + struct.pack("<I", zlib.crc32(payload, zlib.crc32(header))) + payload


def values(store: Store, stream: str) -> list[float]:
    with store.reader() as r:
        return r.history(stream, None, None).column("double").to_pylist()  # type: ignore[no-any-return]


async def test_a_layout_2_store_opens_reads_and_goes_on_in_layout_3(tmp_path: Path) -> None:
    (tmp_path / "wal").mkdir()
    (tmp_path / "manifest.json").write_text(json.dumps({"layout": 2, "compacted_through": 0}))
    old = [from_columns(["/old"] * 2, [T0 + 2 * i, T0 + 2 * i + 1], double=[float(2 * i), float(2 * i + 1)])
           for i in range(3)]
    segment = tmp_path / "wal" / wal.segment_name(1)
    segment.write_bytes(wal.MAGIC_V1 + b"".join(layout2_frame(i + 1, b) for i, b in enumerate(old)))
    store = Store(tmp_path, StorageConfig(compact_interval="1h"))
    report = await store.open()
    assert report.records == 3 and not report.damage
    assert values(store, "/old") == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert json.loads((tmp_path / "manifest.json").read_text())["layout"] == LAYOUT_VERSION == 4
    assert await store.append(from_columns(["/new"], [T0], double=[7.0])) == 4
    await store.close()
    segs = wal.list_segments(tmp_path / "wal")
    assert [s.path.read_bytes()[:8] for s in segs] == [wal.MAGIC_V1, wal.MAGIC]  # old kept, new in layout 3
    store = Store(tmp_path, StorageConfig(compact_interval="1h"))
    await store.open()
    assert values(store, "/old")[-1] == 5.0 and values(store, "/new") == [7.0]
    assert [seq for s in segs for seq, _ in wal.read_segment(s.path)] == [1, 2, 3, 4]
    await store.compact()
    assert values(store, "/old")[0] == 0.0
    await store.close()


async def one_value_segment(tmp_path: Path) -> wal.Segment:
    store = Store(tmp_path, StorageConfig(compact_interval="1h"))
    await store.open()
    await store.append(from_columns(["/plant1/line2/press7/temperature"], [T0], double=[21.5]))
    await store.close()
    [seg] = wal.list_segments(tmp_path / "wal")
    return seg


async def test_a_one_value_frame_no_longer_carries_the_schema(tmp_path: Path) -> None:
    seg = await one_value_segment(tmp_path)
    [frame] = [f for f in wal.scan(seg.path) if isinstance(f, wal.Frame)]
    assert frame.end - frame.offset < 800  # layout 2: 1,248 bytes (the schema is ~510 of them)
    assert seg.path.read_bytes().count(wal.SCHEMA_MESSAGE) == 1


async def test_a_damaged_segment_header_names_the_segment(tmp_path: Path) -> None:
    seg = await one_value_segment(tmp_path)
    data = bytearray(seg.path.read_bytes())
    data[20] ^= 0xFF  # inside the schema message of the header
    seg.path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="schema header is damaged") as info:
        await Store(tmp_path, StorageConfig(compact_interval="1h")).open()
    assert seg.path.name in str(info.value)
