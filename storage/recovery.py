"""Opening the log: a torn tail is cut; damage in the middle is quarantined, counted and never costs more.

    records, last_seq, report = recover(wal_dir, quarantine_dir, decode_after=compacted_through, now=t)
    report.damage                      # what this open found: list[Quarantined]
    load_quarantine(quarantine_dir)    # everything ever found (what /health shows until the files are removed)

Every segment is scanned frame by frame (:func:`storage.wal.scan`, which resynchronises on the next whole
frame after a bad byte). What is not a whole frame is one of three things:

- **a torn tail**: the last segment ends inside a frame or in zeros and no whole frame follows. A crash in
  the middle of a write leaves it; it was never acknowledged. The file is cut there (``truncated_bytes``).
- **a failed write's leftovers**: bytes after the last frame of a sealed segment, when the next segment
  goes on with the next sequence number (the writer could not cut back a failed write). Cut as well.
- **damage**: anything else, that is bytes followed by a whole frame, or records missing before the next
  segment (media errors, a bad disk block, a flipped bit). The bytes are copied to
  ``<quarantine_dir>/<segment>-<offset>.bin`` with a description beside it (``.json``), and the segment is
  rewritten without them. The records they held are the sequence gap, counted exactly: those already
  compacted are still in Parquet (queries keep them; a publisher behind them skips them), the others are
  lost, and their values are counted from the damaged frames' Arrow metadata where it still reads
  (``exact`` says whether every lost record could be counted).

A later open finds a clean segment whose sequence gap a quarantine record covers: nothing more is cut or
counted again. A gap with no bytes at all (a segment file removed by hand) is recorded the same way.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc

from sitewise_edge.errors import StoreError
from sitewise_edge.files import fsync_dir, read_json, write_bytes_atomic, write_json_atomic
from sitewise_edge.samples import SCHEMA
from storage import wal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Quarantined:
    """Damage found in the log, and what it cost. Records ``first_seq..last_seq`` were in the damaged bytes."""

    segment: str
    offset: int
    bytes: int
    reason: str
    first_seq: int
    last_seq: int
    compacted: int  # of those records, how many are in Parquet (kept for queries, not forwarded by a publisher behind)
    values_lost: int  # values of the records not compacted (a lower bound unless ``exact``)
    exact: bool
    file: str | None  # the quarantine file with the bytes (None: a gap with no bytes left)
    found_at: float

    @property
    def records(self) -> int:
        return max(0, self.last_seq - self.first_seq + 1)

    @property
    def records_lost(self) -> int:
        return self.records - self.compacted

    def to_json(self) -> dict[str, object]:
        return {"segment": self.segment, "offset": self.offset, "bytes": self.bytes, "reason": self.reason,
                "firstSeq": self.first_seq, "lastSeq": self.last_seq, "records": self.records,
                "recordsLost": self.records_lost, "recordsInParquet": self.compacted,
                "valuesLost": self.values_lost, "exact": self.exact, "file": self.file, "foundAt": self.found_at}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Quarantined:
        return cls(str(d["segment"]), int(d["offset"]), int(d["bytes"]), str(d["reason"]), int(d["firstSeq"]),
                   int(d["lastSeq"]), int(d["recordsInParquet"]), int(d["valuesLost"]), bool(d["exact"]),
                   None if d.get("file") is None else str(d["file"]), float(d["foundAt"]))

    def describe(self) -> str:
        where = f"WAL {self.segment} at offset {self.offset}: {self.reason}"
        kept = f"; {self.bytes} bytes quarantined in {self.file}" if self.file else ""
        if not self.records:
            return f"{where}{kept}; no record lost"
        parts = []
        if self.records_lost:
            parts.append(f"{self.records_lost} record(s) ({'' if self.exact else 'at least '}{self.values_lost} "
                         "values) lost")
        if self.compacted:
            parts.append(f"{self.compacted} record(s) kept in Parquet (queries see them) but no longer in the WAL: "
                         "a publisher behind them does not forward them")
        return f"{where}{kept}; records {self.first_seq}..{self.last_seq}: {', '.join(parts)}"


@dataclass
class Recovery:
    """What opening the log found."""

    segments: int = 0
    records: int = 0
    rows: int = 0
    truncated_bytes: int = 0
    truncated_at: str | None = None  # "file:offset" of the cut
    damage: list[Quarantined] = field(default_factory=list)  # found by this open

    @property
    def records_lost(self) -> int:
        return sum(d.records_lost for d in self.damage)

    @property
    def values_lost(self) -> int:
        return sum(d.values_lost for d in self.damage)

    def describe(self) -> str:
        text = f"{self.records} records ({self.rows} values) in {self.segments} WAL segments"
        if self.truncated_bytes:
            text += f"; dropped a torn tail of {self.truncated_bytes} bytes at {self.truncated_at}"
        if self.damage:
            text += (f"; DAMAGE in {len(self.damage)} places: {self.records_lost} records "
                     f"({self.values_lost} values) lost, see the quarantine")
        return text


def load_quarantine(directory: Path) -> list[Quarantined]:
    """Every damage record kept in ``directory``, oldest place in the log first."""
    out = []
    for p in sorted(directory.glob("*.json")):
        try:
            out.append(Quarantined.from_json(read_json(p)))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring an unreadable quarantine record %s: %s", p, exc)
    return sorted(out, key=lambda q: (q.first_seq, q.segment, q.offset))


def recover(directory: Path, quarantine_dir: Path, decode_after: int = 0, now: float = 0.0
            ) -> tuple[list[tuple[int, pa.RecordBatch]], int, Recovery]:
    """Check the whole log: cut a torn tail, quarantine damage (see the module docstring).

    Returns the decoded records with seq > ``decode_after`` (older frames are only checked, not
    decoded: they are compacted and kept on disk for publishers), the last sequence number, and a report.
    """
    known = load_quarantine(quarantine_dir)
    out: list[tuple[int, pa.RecordBatch]] = []
    report = Recovery()
    last = 0
    segs = wal.list_segments(directory)
    for i, seg in enumerate(segs):
        report.segments += 1
        if _complete_header(seg.path):
            continue
        following = segs[i + 1].first_seq if i + 1 < len(segs) else None
        keep: list[tuple[int, int]] = []  # byte ranges of the whole frames
        found: list[wal.Damage] = []
        cut_at: int | None = None
        for item in wal.scan(seg.path, max(last, seg.first_seq - 1)):
            if isinstance(item, wal.Frame):
                if last and item.seq > last + 1 and not (found and found[-1].next_seq == item.seq):
                    report.damage += _gap(known, seg, last + 1, item.seq - 1, decode_after, now, quarantine_dir)
                last = item.seq
                keep.append((item.offset, item.end))
                report.records += 1
                if item.seq > decode_after:
                    batch = wal.decode_batch(item.payload, path=seg.path, seq=item.seq, schema=item.schema)
                    out.append((item.seq, batch))
                    report.rows += batch.num_rows
                continue
            after = item.next_seq if item.next_seq is not None else following
            if after is None or (item.next_seq is None and after == item.previous_seq + 1):
                cut_at = item.offset  # a torn tail, or a failed write's leftovers: never acknowledged
                report.truncated_bytes += item.size
                report.truncated_at = f"{seg.path.name}:{item.offset}"
                log.warning("WAL %s: %s at offset %d: dropping %d bytes of torn tail", seg.path.name, item.reason,
                            item.offset, item.size)
                continue
            found.append(item)
            if item.next_seq is None:
                last = after - 1  # the records up to the next segment were in these bytes
        for item in found:
            report.damage += _quarantine(known, seg, item, following, decode_after, now, quarantine_dir)
        if found:
            _rewrite(seg.path, keep)
        elif cut_at is not None:
            _truncate(seg.path, cut_at)
    return out, last, report


def _complete_header(path: Path) -> bool:
    """A segment created just before a crash, its magic never completed: written again. True if it was."""
    header = wal.segment_header()
    with open(path, "rb") as f:
        head = f.read(len(header))
    if len(head) >= len(header) or not header.startswith(head):
        return False
    write_bytes_atomic(path, header)
    return True


def _quarantine(known: list[Quarantined], seg: wal.Segment, damage: wal.Damage, following: int | None,
                decode_after: int, now: float, directory: Path) -> list[Quarantined]:
    """Keep the damaged bytes and their description; the record of it when it is new (else nothing)."""
    stem = f"{seg.path.stem}-{damage.offset}"
    first = damage.previous_seq + 1
    last = (damage.next_seq if damage.next_seq is not None else following or first) - 1
    with open(seg.path, "rb") as f:
        f.seek(damage.offset)
        data = f.read(damage.size)
    values, counted = _count_values(data, damage.previous_seq, decode_after)
    lost_records = max(0, last - max(first, decode_after + 1) + 1)
    q = Quarantined(seg.path.name, damage.offset, damage.size, damage.reason, first, last,
                    compacted=max(0, min(last, decode_after) - first + 1), values_lost=values,
                    exact=counted >= lost_records, file=f"{stem}.bin", found_at=now)
    return _record(known, q, directory, data)


def _gap(known: list[Quarantined], seg: wal.Segment, first: int, last: int, decode_after: int, now: float,
         directory: Path) -> list[Quarantined]:
    """Records missing between two whole frames with no bytes left of them."""
    if any(k.first_seq <= first and last <= k.last_seq for k in known):
        return []  # quarantined by an earlier open: the segment was rewritten without them
    q = Quarantined(seg.path.name, 0, 0, "records missing from the log", first, last,
                    compacted=max(0, min(last, decode_after) - first + 1), values_lost=0,
                    exact=last <= decode_after, file=None, found_at=now)
    return _record(known, q, directory, None)


def _record(known: list[Quarantined], q: Quarantined, directory: Path, data: bytes | None) -> list[Quarantined]:
    name = f"{Path(q.segment).stem}-{q.offset}"
    if any(k.segment == q.segment and k.offset == q.offset for k in known):
        return []  # a crash after the quarantine, before the rewrite: found again, counted once
    directory.mkdir(parents=True, exist_ok=True)
    if data is not None:
        write_bytes_atomic(directory / f"{name}.bin", data)
    write_json_atomic(directory / f"{name}.json", q.to_json(), indent=1)
    known.append(q)
    log.error("%s", q.describe())
    return [q]


def _count_values(data: bytes, previous: int, decode_after: int) -> tuple[int, int]:
    """Values and records (seq > ``decode_after``) of the frames in damaged bytes whose header and Arrow
    metadata still read (their checksum failed, so their values are not trusted, only counted)."""
    values = records = 0
    for seq, payload in _frames_ignoring_checksums(data, previous):
        if seq <= decode_after:
            continue
        rows = _rows_of(payload)
        if rows is not None:
            values += rows
            records += 1
    return values, records


# the batch's columns with dictionaries read as their indices: a record batch message reads without its
# dictionary message, which the damage may have hit
_PLAIN = pa.schema([pa.field(f.name, f.type.index_type if pa.types.is_dictionary(f.type) else f.type)
                    for f in SCHEMA])
_CONTINUATION = struct.Struct("<Ii")


def _rows_of(payload: bytes) -> int | None:
    """The row count in a damaged frame's record batch message (the schema is known), or None.

    Tried at every message marker in turn: a damaged schema or dictionary message before it may read with
    a wrong length, so the lengths are not followed."""
    pos = payload.find(b"\xff\xff\xff\xff")
    while 0 <= pos and pos + _CONTINUATION.size <= len(payload):
        try:
            message = ipc.read_message(pa.py_buffer(payload[pos:]))
            if message.type == "record batch":
                return int(ipc.read_record_batch(message, _PLAIN).num_rows)
        except (pa.ArrowException, OSError, ValueError):
            pass
        pos = payload.find(b"\xff\xff\xff\xff", pos + 1)
    return None


def _frames_ignoring_checksums(data: bytes, previous: int) -> Iterator[tuple[int, bytes]]:
    pos = 0
    while pos + wal.FRAME_OVERHEAD <= len(data):
        length, seq = wal.HEADER.unpack_from(data, pos)
        if not (0 < length <= len(data) - pos - wal.FRAME_OVERHEAD and previous < seq <= previous + (1 << 32)):
            return
        yield seq, data[pos + wal.FRAME_OVERHEAD: pos + wal.FRAME_OVERHEAD + length]
        previous = seq
        pos += wal.FRAME_OVERHEAD + length


def _rewrite(path: Path, keep: list[tuple[int, int]]) -> None:
    """The segment again with its whole frames only (atomic: a crash leaves the old or the new file)."""
    with open(path, "rb") as f:
        parts = [wal.read_header(path, f)[0]]  # its own header: a layout-2 segment stays one
        for start, end in keep:
            f.seek(start)
            parts.append(f.read(end - start))
    try:
        write_bytes_atomic(path, b"".join(parts))
    except OSError as exc:
        raise StoreError(f"cannot rewrite the damaged WAL segment {path.name}: {exc.strerror or exc}",
                         path=path, segment=path.name) from None


def _truncate(path: Path, offset: int) -> None:
    with open(path, "r+b") as w:
        w.truncate(offset)
        w.flush()
        os.fsync(w.fileno())
    fsync_dir(path.parent)

