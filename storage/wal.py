"""The write-ahead log: Arrow IPC records in checksummed frames, in rolling segment files.

A segment file starts with a header and holds frames::

    header:  SWEWAL02 <u32 schema length> <u32 crc32 of the schema> <the Arrow IPC schema message>
    frame:   <u32 payload length> <u64 sequence number> <u32 crc32 of the two before and the payload> <payload>

The schema is written once per segment; a payload is the rest of one Arrow IPC stream (the stream's
dictionary and record batch messages): the segment's schema followed by a payload is a whole stream of
one batch. A 1-row frame is 736 bytes on disk instead of 1,248. Segments of layout 2 (magic ``SWEWAL01``:
no schema in the header, each payload a whole IPC stream) are still read; new segments are always written
in the current layout. Sequence numbers increase by one
per frame across segments (a gap is a record lost to damage). A frame is whole when its length
fits, its checksum holds and its sequence number is greater than the one before; :func:`scan`
yields the whole frames and, between them, :class:`Damage`: after a bad byte it resynchronises on
the next whole frame, so damage costs only the frames it touches.

Each frame is one accepted sample batch. A frame is *durable* once the file is
fsynced after it; only then is its batch acknowledged. What recovery does with damage (a torn
tail is cut; damage in the middle is quarantined and counted) is in :mod:`storage.recovery`.

The writer is not thread-safe: one owner (the store) calls it from one thread at a time.

Errors (all :class:`~sitewise_edge.errors.StoreError`, with ``path`` and, where known, ``seq``)::

    StoreError                 the WAL cannot be written or fsynced; a record does not decode
    └── FrameError             a segment holds a frame that cannot be read (``offset``, ``reason``)
        └── IncompleteFrame    the segment ends inside a frame: a torn tail, or a frame being written now
"""

from __future__ import annotations

import errno
import logging
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from sitewise_edge.errors import DiskFull, StoreError
from sitewise_edge.files import fsync_dir
from sitewise_edge.samples import SCHEMA

log = logging.getLogger(__name__)

MAGIC = b"SWEWAL02"
MAGIC_V1 = b"SWEWAL01"  # layout 2: each frame carries its schema
SCHEMA_HEADER = struct.Struct("<II")  # schema length, crc32 of the schema
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


@dataclass(frozen=True)
class Segment:
    path: Path
    first_seq: int


def _stream(schema: pa.Schema, batch: pa.RecordBatch | None) -> bytes:
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, schema) as writer:
        if batch is not None:
            writer.write_batch(batch)
    return sink.getvalue().to_pybytes()[: -len(_EOS)]


_EOS = b"\xff\xff\xff\xff\x00\x00\x00\x00"
SCHEMA_MESSAGE = _stream(SCHEMA, None)  # what a segment's header holds: the IPC stream up to its first batch


def segment_header() -> bytes:
    """The bytes a segment of this layout starts with."""
    return MAGIC + SCHEMA_HEADER.pack(len(SCHEMA_MESSAGE), zlib.crc32(SCHEMA_MESSAGE)) + SCHEMA_MESSAGE


def encode_batch(batch: pa.RecordBatch) -> bytes:
    """A frame's payload: the batch's IPC messages without the schema (a batch of another schema, which the
    store never writes, keeps its own schema message in front)."""
    whole = _stream(batch.schema, batch)
    return whole[len(SCHEMA_MESSAGE):] if whole.startswith(SCHEMA_MESSAGE) else whole


def _leads_with_schema(payload: bytes) -> bool:
    try:
        return bool(ipc.read_message(pa.py_buffer(payload)).type == "schema")
    except (pa.ArrowException, OSError, ValueError):
        return False


def decode_batch(payload: bytes, *, path: Path | None = None, seq: int | None = None,
                 schema: bytes = SCHEMA_MESSAGE) -> pa.RecordBatch:
    """One frame's payload -> its batch; ``schema`` is its segment's (a layout-2 payload carries its own);
    ``path`` and ``seq`` say where it came from in a StoreError."""
    try:
        with ipc.open_stream(payload if _leads_with_schema(payload) else schema + payload) as reader:
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


@dataclass(frozen=True)
class Frame:
    """One whole frame of a segment: where it starts, its sequence number and its payload."""

    offset: int
    seq: int
    payload: bytes
    schema: bytes = SCHEMA_MESSAGE  # the segment's schema message (decode_batch takes it)

    @property
    def end(self) -> int:
        return self.offset + FRAME_OVERHEAD + len(self.payload)


@dataclass(frozen=True)
class Damage:
    """Bytes of a segment that hold no readable frame: from ``offset`` to ``end`` (where the next whole
    frame starts, or the file's end when ``next_seq`` is None). ``previous_seq`` is the frame before."""

    path: Path
    offset: int
    end: int
    reason: str
    previous_seq: int
    next_seq: int | None
    incomplete: bool  # the file ends inside a frame, or in zeros (what a crash in the middle of a write leaves)
    seq: int | None = None  # what the first bad header claims, when it is whole


    @property
    def size(self) -> int:
        return self.end - self.offset

    def error(self) -> FrameError:
        kind = IncompleteFrame if self.incomplete else FrameError
        return kind(self.path, self.offset, self.reason, seq=self.seq)


def _check(header: bytes, payload: bytes, previous: int) -> str | None:
    """Why ``header`` + ``payload`` is not the frame that may follow ``previous`` (None: it is)."""
    length, seq = HEADER.unpack_from(header)
    (crc,) = CRC.unpack_from(header, HEADER.size)
    if length == 0 or length >= MAX_FRAME:
        return f"impossible frame length {length}"
    if len(payload) < length:
        return "incomplete frame"
    if zlib.crc32(payload, zlib.crc32(header[: HEADER.size])) != crc:
        return "checksum mismatch"
    if seq <= previous:
        return f"sequence {seq} does not follow {previous}"
    return None


_RESYNC_SPAN = 1 << 32  # a frame after damage has a sequence number at most this far past the last good one


def _resync(data: bytes, previous: int) -> int | None:
    """The offset in ``data`` of the first whole frame that can follow ``previous``, or None.

    Candidates are found with numpy (an 8-byte sequence number in range, at every byte offset), then
    checked one by one with their checksum: a damaged megabyte costs milliseconds, not a Python loop per byte.
    """
    n = len(data)
    if n <= FRAME_OVERHEAD:
        return None
    u8 = np.frombuffer(data, dtype=np.uint8)
    candidates: list[np.ndarray] = []
    for k in range(8):  # the u64 sequence numbers starting at offsets k, k + 8, ... belong to frames at k - 4 + 8i
        count = (n - k) // 8
        if count <= 0:
            continue
        seqs = u8[k: k + 8 * count].view("<u8")
        hit = np.flatnonzero((seqs > previous) & (seqs <= previous + _RESYNC_SPAN))
        starts = k - 4 + 8 * hit
        candidates.append(starts[(starts >= 0) & (starts + FRAME_OVERHEAD < n)])
    for start in np.sort(np.concatenate(candidates)) if candidates else ():
        p = int(start)
        header = data[p: p + FRAME_OVERHEAD]
        (length, _) = HEADER.unpack_from(header)
        if not 0 < length <= n - p - FRAME_OVERHEAD:
            continue
        if _check(header, data[p + FRAME_OVERHEAD: p + FRAME_OVERHEAD + length], previous) is None:
            return p
    return None


def scan(path: Path, after_seq: int = 0) -> Iterator[Frame | Damage]:
    """Every whole frame of a segment, and every run of bytes between them that is not one.

    A frame must checksum (header and payload) and carry a greater sequence number than the one before
    (``after_seq`` for the first). After damage the scan resynchronises on the next whole frame, so one
    bad byte costs the frames it touches, never the ones after it.
    """
    with open(path, "rb") as f:
        header, schema = read_header(path, f)
        offset = len(header)
        previous = after_seq
        while True:
            f.seek(offset)
            header = f.read(FRAME_OVERHEAD)
            if not header:
                return
            if len(header) < FRAME_OVERHEAD:
                yield Damage(path, offset, offset + len(header), "incomplete frame header", previous, None, True)
                return
            length, seq = HEADER.unpack_from(header)
            payload = f.read(length) if 0 < length < MAX_FRAME else b""
            reason = _check(header, payload, previous)
            if reason is None:
                yield Frame(offset, seq, payload, schema)
                previous = seq
                offset += FRAME_OVERHEAD + length
                continue
            f.seek(offset + 1)
            rest = f.read()
            found = _resync(rest, previous)
            if found is None:
                incomplete = reason == "incomplete frame" or not any(rest)
                yield Damage(path, offset, offset + 1 + len(rest), reason, previous, None, incomplete, seq)
                return
            end = offset + 1 + found
            yield Damage(path, offset, end, reason, previous, HEADER.unpack_from(rest, found)[1], False, seq)
            offset = end


def read_header(path: Path, f: BinaryIO) -> tuple[bytes, bytes]:
    """A segment's header bytes and its schema message (b"" for a layout-2 segment); ``f`` is left after it."""
    f.seek(0)
    head = f.read(len(MAGIC))
    if head == MAGIC_V1:
        return head, b""
    if head == MAGIC:
        fixed = f.read(SCHEMA_HEADER.size)
        if len(fixed) == SCHEMA_HEADER.size:
            length, crc = SCHEMA_HEADER.unpack(fixed)
            schema = f.read(length) if length < MAX_FRAME else b""
            if len(schema) == length and zlib.crc32(schema) == crc:
                return head + fixed + schema, schema
        raise StoreError(f"{path}: the WAL segment's schema header is damaged", path=path, segment=path.name)
    raise StoreError(f"{path}: not a WAL segment of this layout (header {head!r}, expected {MAGIC!r})",
                     path=path, segment=path.name)


def read_frames(path: Path, *, after_seq: int = 0) -> Iterator[tuple[int, bytes]]:
    """Yield (seq, payload) of every whole frame; raise FrameError (IncompleteFrame at a cut end) at damage."""
    for item in scan(path, after_seq):
        if isinstance(item, Damage):
            raise item.error()
        yield item.seq, item.payload


def read_segment(path: Path, on_damage: Callable[[Damage], None] | None = None
                 ) -> Iterator[tuple[int, pa.RecordBatch]]:
    """The records of one (sealed or active) segment, for readers that are behind memory.

    The end of the active segment may be a frame being written right now: the read stops there, quietly.
    Other damage (it appeared after the store opened: recovery quarantines what it finds) raises its
    FrameError, or, given ``on_damage``, is handed to it and skipped.
    """
    for item in scan(path):
        if isinstance(item, Frame):
            yield item.seq, decode_batch(item.payload, path=path, seq=item.seq, schema=item.schema)
        elif item.next_seq is None and item.incomplete:
            return
        elif on_damage is None:
            raise item.error()
        else:
            on_damage(item)


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
        header = segment_header()
        try:
            f.write(header)
            f.flush()
            os.fsync(f.fileno())
            fsync_dir(self.directory)
        except OSError:
            f.close()
            path.unlink(missing_ok=True)
            raise
        self._file = f
        self._path = path
        self._size = self._synced = len(header)

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
        kind = DiskFull if exc.errno == errno.ENOSPC else StoreError
        return kind(f"cannot {doing} the WAL in {self.directory}: {exc.strerror or exc}",
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
