"""The WAL's typed errors: a frame being written is told from a corrupt one by type, and errors say where."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from sitewise_edge.errors import DiskFull, StoreError
from sitewise_edge.samples import from_columns
from storage import wal


def batch(i: int) -> pa.RecordBatch:
    return from_columns(["/a", "/b"], [i * 10**9, i * 10**9 + 1], double=[float(i), float(i) + 0.5])


def write_log(directory: Path, n: int) -> Path:
    writer = wal.WalWriter(directory, 1, 1 << 20)
    for i in range(n):
        writer.append(batch(i))
    writer.sync()
    path = writer.active_path
    assert path is not None
    writer.close()
    return path


@pytest.mark.parametrize("kept", [wal.FRAME_OVERHEAD + 5, 3], ids=["inside-payload", "inside-header"])
def test_a_segment_ending_inside_a_frame_reads_up_to_it(tmp_path: Path, kept: int) -> None:
    path = write_log(tmp_path, 3)
    whole = path.read_bytes()
    last_start = len(whole) - len(wal.encode_batch(batch(2))) - wal.FRAME_OVERHEAD
    path.write_bytes(whole[: last_start + kept])  # the last frame is being written right now
    with pytest.raises(wal.IncompleteFrame) as info:
        list(wal.read_frames(path))
    assert info.value.path == path and info.value.segment == path.name
    assert info.value.offset == last_start
    assert [seq for seq, _ in wal.read_segment(path)] == [1, 2]  # the reader stops there, quietly


def test_a_corrupt_frame_is_not_mistaken_for_one_being_written(tmp_path: Path) -> None:
    path = write_log(tmp_path, 3)
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF  # inside the payload of the last frame
    path.write_bytes(bytes(data))
    with pytest.raises(wal.FrameError) as info:
        list(wal.read_segment(path))
    err = info.value
    assert not isinstance(err, wal.IncompleteFrame)
    assert isinstance(err, StoreError) and err.reason == "checksum mismatch"
    assert (err.path, err.segment, err.seq) == (path, path.name, 3)
    assert str(err) == f"{path}: checksum mismatch at offset {err.offset}"


def test_a_file_that_is_not_a_segment_is_named(tmp_path: Path) -> None:
    path = tmp_path / wal.segment_name(1)
    path.write_bytes(b"NOTAWAL!" + b"\0" * 32)
    with pytest.raises(StoreError, match="not a WAL segment") as info:
        list(wal.read_segment(path))
    assert info.value.path == path and info.value.segment == path.name


def test_a_record_that_does_not_decode_names_its_segment_and_seq(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not decode") as info:
        wal.decode_batch(b"garbage", path=tmp_path / "x.wal", seq=7)
    assert (info.value.segment, info.value.seq) == ("x.wal", 7)


class _FailingWrites:
    """The WAL's file, failing every write as a full disk does."""

    def __init__(self, f: object) -> None:
        self._f = f

    def write(self, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    def __getattr__(self, name: str) -> object:
        return getattr(self._f, name)


def test_a_failed_write_names_the_segment_and_the_first_record_lost(tmp_path: Path) -> None:
    writer = wal.WalWriter(tmp_path, 1, 1 << 20)
    writer.append(batch(0))
    writer.sync()
    writer.append(batch(1))  # written, not yet durable: lost with the failure
    path = writer.active_path
    assert path is not None and writer._file is not None
    writer._file = _FailingWrites(writer._file)  # type: ignore[assignment]
    with pytest.raises(DiskFull, match="No space left") as info:  # a StoreError the API answers with 503
        writer.append(batch(2))
    assert (info.value.path, info.value.segment, info.value.seq) == (path, path.name, 2)
    assert writer.next_seq == 2  # the next append reuses the lost record's number, in a new segment
    writer.close()
