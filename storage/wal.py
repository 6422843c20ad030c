"""The write-ahead log: Arrow IPC records in checksummed frames, in rolling segment files.

A segment file starts with an 8-byte magic (``SWEWAL01``, the layout version is in it)
and holds frames::

    <u32 payload length> <u64 sequence number> <u32 crc32 of the two before and the payload> <payload>

The payload is one Arrow IPC stream (schema + one batch). Sequence numbers increase by one
per frame across segments; a frame whose checksum fails, whose length is zero or whose sequence
does not increase ends the readable log.

Each frame is one accepted sample batch. A frame is *durable* once the file is
fsynced after it; only then is its batch acknowledged. Recovery reads every
frame whose length and checksum hold and cuts the file at the first that does not
(a torn tail after a crash), reporting what it cut.

The writer is not thread-safe: one owner (the store) calls it from one thread at a time.

Errors (all :class:`~sitewise_edge.errors.StoreError`, with ``path`` and, where known, ``seq``)::

    StoreError                 the WAL cannot be written or fsynced; a record does not decode
    └── FrameError             a segment holds a frame that cannot be read (``offset``, ``reason``)
        └── IncompleteFrame    the segment ends inside a frame: a torn tail, or a frame being written now
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
from sitewise_edge.files import fsync_dir

log = logging.getLogger(__name__)

MAGIC = b"SWEWAL01"
HEADER = struct.Struct("<IQ")  # payload length, sequence number
CRC = struct.Struct("<I")  # crc32 of header + payload
FRAME_OVERHEAD = HEADER.size + CRC.size
MAX_FRAME = 1 << 31
SUFFIX = ".wal"


class FrameError(StoreError):
    """A frame of a segment that cannot be read: bad length, checksum or sequence, or a bad header."""

    def __init__(self, path: Path, offset: int, reason: str, *, seq: int | None = None) -> None:
        super().__init__(f"{path}: {reason} at offset {offset}", path=path, segment=path.name, seq=seq)
        self.offset = offset
        self.reason = reason


class IncompleteFrame(FrameError):
    """The segment ends inside a frame (its header or payload is cut short)."""


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


def decode_batch(payload: bytes, *, path: Path | None = None, seq: int | None = None) -> pa.RecordBatch:
    """One frame's payload -> its batch; ``path`` and ``seq`` say where it came from in a StoreError."""
    try:
        with ipc.open_stream(payload) as reader:
            batches = list(reader)
    except pa.ArrowInvalid as exc:
        raise StoreError(f"a WAL record with a valid checksum does not decode: {exc}",
                         path=path, segment=path.name if path else None, seq=seq) from None
    if len(batches) != 1:
        raise StoreError(f"WAL record holds {len(batches)} batches, expected 1",
                         path=path, segment=path.name if path else None, seq=seq)
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


def read_frames(path: Path, *, repair: bool = False, after_seq: int = 0) -> Iterator[tuple[int, bytes]]:
    """Yield (seq, payload) of every whole frame; with ``repair``, cut a torn tail off the file.

    Frames must continue the sequence after ``after_seq`` (0: any start).
    """
    with open(path, "rb") as f:
        head = f.read(len(MAGIC))
        if head != MAGIC:
            if len(head) < len(MAGIC) and repair:
                # a segment created just before a crash, header never completed
                f.close()
                path.write_bytes(MAGIC)
                return
            raise StoreError(f"{path}: not a WAL segment of this layout (header {head!r}, expected {MAGIC!r})",
                             path=path, segment=path.name)
        offset = len(MAGIC)
        previous = after_seq
        while True:
            header = f.read(FRAME_OVERHEAD)
            if not header:
                return
            error: FrameError | None = None
            length = seq = 0
            if len(header) < FRAME_OVERHEAD:
                error = IncompleteFrame(path, offset, "incomplete frame header")
            else:
                length, seq = HEADER.unpack_from(header)
                (crc,) = CRC.unpack_from(header, HEADER.size)
                payload = f.read(length) if 0 < length < MAX_FRAME else b""
                if length == 0 or length >= MAX_FRAME:
                    error = FrameError(path, offset, f"impossible frame length {length}", seq=seq)
                elif len(payload) < length:
                    error = IncompleteFrame(path, offset, "incomplete frame", seq=seq)
                elif zlib.crc32(payload, zlib.crc32(header[: HEADER.size])) != crc:
                    error = FrameError(path, offset, "checksum mismatch", seq=seq)
                elif previous and seq != previous + 1:
                    error = FrameError(path, offset, f"sequence {seq} does not follow {previous}", seq=seq)
            if error is not None:
                if not repair:
                    raise error
                f.close()
                dropped = _cut(path, offset, error.reason)
                raise _Truncated(offset, dropped)
            previous = seq
            yield seq, payload
            offset += FRAME_OVERHEAD + length


def _cut(path: Path, offset: int, why: str) -> int:
    size = path.stat().st_size
    log.warning("WAL %s: %s at offset %d: dropping %d bytes of torn tail", path.name, why, offset, size - offset)
    with open(path, "r+b") as w:
        w.truncate(offset)
        w.flush()
        os.fsync(w.fileno())
    return size - offset


class _Truncated(Exception):
    def __init__(self, offset: int, dropped: int) -> None:
        super().__init__(offset, dropped)
        self.offset = offset
        self.dropped = dropped


def recover(directory: Path, decode_after: int = 0) -> tuple[list[tuple[int, pa.RecordBatch]], int, Recovery]:
    """Check the whole log, cutting a torn tail.

    Returns the decoded records with seq > ``decode_after`` (older frames are only checked, not
    decoded: they are compacted and kept on disk for publishers), the last sequence number, and a report.
    """
    out: list[tuple[int, pa.RecordBatch]] = []
    report = Recovery()
    last = 0
    for seg in list_segments(directory):
        report.segments += 1
        try:
            for seq, payload in read_frames(seg.path, repair=True, after_seq=last):
                last = seq
                report.records += 1
                if seq > decode_after:
                    batch = decode_batch(payload, path=seg.path, seq=seq)
                    out.append((seq, batch))
                    report.rows += batch.num_rows
        except _Truncated as cut:
            report.truncated_bytes += cut.dropped
            report.truncated_at = f"{seg.path.name}:{cut.offset}"
    return out, last, report


def read_segment(path: Path) -> Iterator[tuple[int, pa.RecordBatch]]:
    """The records of one (sealed or active) segment, for readers that are behind memory."""
    try:
        for seq, payload in read_frames(path):
            yield seq, decode_batch(payload, path=path, seq=seq)
    except IncompleteFrame:
        # the active segment may end in a frame being written right now: stop there
        return


class WalWriter:
    """Appends frames to the newest segment and rolls to a new one past ``segment_size``.

    A failed write or fsync never leaves garbage for later frames to sit behind: the file is cut
    back to the last durable frame and the writer moves on to a new segment on the next append.
    """

    def __init__(self, directory: Path, next_seq: int, segment_size: int) -> None:
        self.directory = directory
        self.segment_size = segment_size
        self.next_seq = next_seq
        self._file: BinaryIO | None = None
        self._path: Path | None = None
        self._size = 0
        self._synced = 0
        self._synced_seq = next_seq - 1

    @property
    def active_path(self) -> Path | None:
        return self._path

    def _open(self, path: Path) -> None:
        f = open(path, "wb")
        try:
            f.write(MAGIC)
            f.flush()
            os.fsync(f.fileno())
            fsync_dir(self.directory)
        except OSError:
            f.close()
            path.unlink(missing_ok=True)
            raise
        self._file = f
        self._path = path
        self._size = self._synced = len(MAGIC)

    def append(self, batch: pa.RecordBatch) -> int:
        """Write one batch as a frame (durable after :meth:`sync`). Returns its sequence number."""
        payload = encode_batch(batch)
        try:
            if self._file is None or self._size >= self.segment_size:
                self.close()
                self._open(self.directory / segment_name(self.next_seq))
            assert self._file is not None
            seq = self.next_seq
            header = HEADER.pack(len(payload), seq)
            frame = header + CRC.pack(zlib.crc32(payload, zlib.crc32(header))) + payload
            self._file.write(frame)
        except OSError as exc:
            raise self._failed("write", exc) from None
        self._size += len(frame)
        self.next_seq += 1
        return seq

    def sync(self) -> int:
        """Make every appended frame durable. Returns the last durable sequence number."""
        if self._file is not None and self._synced < self._size:
            try:
                self._file.flush()
                os.fsync(self._file.fileno())
            except OSError as exc:
                # after a failed fsync the unsynced frames are in an unknown state: drop them
                raise self._failed("fsync", exc) from None
            self._synced = self._size
        self._synced_seq = self.next_seq - 1
        return self._synced_seq

    def _failed(self, doing: str, exc: OSError) -> StoreError:
        """Abandon the active segment after a failed ``doing``; the error to raise names the segment and
        the first record lost (every frame after the last fsync is cut)."""
        path, seq = self._path, self._synced_seq + 1
        self._abandon()
        return StoreError(f"cannot {doing} the WAL in {self.directory}: {exc.strerror or exc}",
                          path=path or self.directory, segment=path.name if path else None, seq=seq)

    def _abandon(self) -> None:
        """Cut the active segment back to its last durable frame and leave it."""
        f, path = self._file, self._path
        self._file = None
        self._path = None
        self.next_seq = self._synced_seq + 1
        if f is None or path is None:
            return
        try:
            f.close()
        except OSError:
            pass
        try:
            with open(path, "r+b") as w:
                w.truncate(self._synced)
                os.fsync(w.fileno())
        except OSError as exc:
            log.error("WAL %s: could not cut back a failed write (%s); recovery will cut it", path.name, exc)

    def close(self) -> None:
        if self._file is not None:
            self.sync()
            self._file.close()
            self._file = None
            self._path = None
