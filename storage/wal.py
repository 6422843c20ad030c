"""The write-ahead log: Arrow IPC records in checksummed frames, in rolling segment files.

A segment file starts with an 8-byte magic (``SWEWAL01``, the layout version is in it)
and holds frames::

    <u32 payload length> <u32 crc32 of payload> <u64 sequence number> <payload: Arrow IPC stream>

Each frame is one accepted sample batch. A frame is *durable* once the file is
fsynced after it; only then is its batch acknowledged. Recovery reads every
frame whose length and checksum hold and cuts the file at the first that does not
(a torn tail after a crash), reporting what it cut.

The writer is not thread-safe: one owner (the store) calls it from one thread at a time.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.ipc as ipc

from sitewise_edge.errors import StoreError
from storage._fs import fsync_dir

log = logging.getLogger(__name__)

MAGIC = b"SWEWAL01"
FRAME = struct.Struct("<IIQ")
MAX_FRAME = 1 << 31
SUFFIX = ".wal"


@dataclass
class Recovery:
    """What opening the log found."""

    segments: int = 0
    records: int = 0
    rows: int = 0
    truncated_bytes: int = 0
    truncated_at: str | None = None  # "file:offset" of the cut

    def describe(self) -> str:
        text = f"{self.records} records ({self.rows} values) in {self.segments} WAL segments"
        if self.truncated_bytes:
            text += f"; dropped a torn tail of {self.truncated_bytes} bytes at {self.truncated_at}"
        return text


@dataclass(frozen=True)
class Segment:
    path: Path
    first_seq: int


def encode_batch(batch: pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def decode_batch(payload: bytes) -> pa.RecordBatch:
    with ipc.open_stream(payload) as reader:
        batches = list(reader)
    if len(batches) != 1:
        raise StoreError(f"WAL record holds {len(batches)} batches, expected 1")
    return batches[0]


def segment_name(first_seq: int) -> str:
    return f"{first_seq:020d}{SUFFIX}"


def list_segments(directory: Path) -> list[Segment]:
    segs = []
    for p in directory.glob(f"*{SUFFIX}"):
        try:
            segs.append(Segment(p, int(p.stem)))
        except ValueError:
            log.warning("ignoring a file that is not a WAL segment: %s", p)
    return sorted(segs, key=lambda s: s.first_seq)


def read_frames(path: Path, *, repair: bool = False) -> Iterator[tuple[int, bytes]]:
    """Yield (seq, payload) of every whole frame; with ``repair``, cut a torn tail off the file."""
    with open(path, "rb") as f:
        head = f.read(len(MAGIC))
        if head != MAGIC:
            if len(head) < len(MAGIC) and repair:
                # a segment created just before a crash, header never completed
                f.close()
                path.write_bytes(MAGIC)
                return
            raise StoreError(f"{path}: not a WAL segment of this layout (header {head!r}, expected {MAGIC!r})")
        offset = len(MAGIC)
        while True:
            header = f.read(FRAME.size)
            if not header:
                return
            bad = None
            if len(header) < FRAME.size:
                bad = "incomplete frame header"
            else:
                length, crc, seq = FRAME.unpack(header)
                payload = f.read(length) if length < MAX_FRAME else b""
                if length >= MAX_FRAME or len(payload) < length:
                    bad = "incomplete frame"
                elif zlib.crc32(payload) != crc:
                    bad = "checksum mismatch"
            if bad is not None:
                size = path.stat().st_size
                if not repair:
                    raise StoreError(f"{path}: {bad} at offset {offset}")
                log.warning("WAL %s: %s at offset %d: dropping %d bytes of torn tail", path.name, bad, offset,
                            size - offset)
                f.close()
                with open(path, "r+b") as w:
                    w.truncate(offset)
                    w.flush()
                    os.fsync(w.fileno())
                raise _Truncated(offset, size - offset)
            yield seq, payload
            offset += FRAME.size + length


class _Truncated(Exception):
    def __init__(self, offset: int, dropped: int) -> None:
        super().__init__(offset, dropped)
        self.offset = offset
        self.dropped = dropped


def recover(directory: Path) -> tuple[list[tuple[int, pa.RecordBatch, Path]], Recovery]:
    """Read the whole log, cutting a torn tail. Returns (seq, batch, segment) in order and a report."""
    out: list[tuple[int, pa.RecordBatch, Path]] = []
    report = Recovery()
    for seg in list_segments(directory):
        report.segments += 1
        try:
            for seq, payload in read_frames(seg.path, repair=True):
                batch = decode_batch(payload)
                out.append((seq, batch, seg.path))
                report.records += 1
                report.rows += batch.num_rows
        except _Truncated as cut:
            report.truncated_bytes += cut.dropped
            report.truncated_at = f"{seg.path.name}:{cut.offset}"
    return out, report


def read_segment(path: Path) -> Iterator[tuple[int, pa.RecordBatch]]:
    """The records of one (sealed or active) segment, for readers that are behind memory."""
    try:
        for seq, payload in read_frames(path):
            yield seq, decode_batch(payload)
    except StoreError as exc:
        # the active segment may end in a frame being written right now: stop there
        if "incomplete" not in str(exc):
            raise


class WalWriter:
    """Appends frames to the newest segment and rolls to a new one past ``segment_size``."""

    def __init__(self, directory: Path, next_seq: int, segment_size: int) -> None:
        self.directory = directory
        self.segment_size = segment_size
        self.next_seq = next_seq
        self._file: BinaryIO | None = None
        self._path: Path | None = None
        self._size = 0
        segs = list_segments(directory)
        if segs:
            last = segs[-1]
            size = last.path.stat().st_size
            if size < segment_size:
                self._open(last.path)

    @property
    def active_path(self) -> Path | None:
        return self._path

    def _open(self, path: Path) -> None:
        new = not path.exists()
        f = open(path, "ab")
        if new:
            f.write(MAGIC)
            f.flush()
            os.fsync(f.fileno())
            fsync_dir(self.directory)
        self._file = f
        self._path = path
        self._size = f.tell()

    def append(self, batch: pa.RecordBatch) -> int:
        """Write one batch as a frame (not yet fsynced). Returns its sequence number."""
        if self._file is None or self._size >= self.segment_size:
            self.close()
            self._open(self.directory / segment_name(self.next_seq))
        payload = encode_batch(batch)
        seq = self.next_seq
        frame = FRAME.pack(len(payload), zlib.crc32(payload), seq) + payload
        assert self._file is not None
        self._file.write(frame)
        self._size += len(frame)
        self.next_seq += 1
        return seq

    def sync(self) -> None:
        """Make every appended frame durable."""
        f = self._file
        if f is not None:
            f.flush()
            os.fsync(f.fileno())

    def close(self) -> None:
        if self._file is not None:
            self.sync()
            self._file.close()
            self._file = None
            self._path = None

