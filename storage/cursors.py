"""The publishers' side of the store: durable cursors, and the log read in acceptance order from them.

    cursors = Cursors(state)
    cursors.load()                                    # blocking: <data_dir>/cursors/<name>.json
    pos = cursors.get("publisher-cloud")              # a new publisher starts at the oldest data in the log
    log = LogReader(state)
    rows, pos = log.read(pos, 1000)                   # blocking: rows after pos, from memory or WAL segments
    cursors.save("publisher-cloud", pos)              # blocking: once the destination acknowledged
    await log.wait_for_data(1.0)                      # until the next append (LogReader.notify) or a timeout

A cursor holds the WAL back: segments are deleted only once every cursor has passed them (see
storage/compaction.py), unless the disk budget forces it (storage/retention.py), which moves the
cursors past what it deleted.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from sitewise_edge.errors import StoreError
from sitewise_edge.files import read_json, write_json_atomic
from sitewise_edge.samples import concat
from storage import wal
from storage.snapshot import Record
from storage.state import Position, StoreState

log = logging.getLogger(__name__)


class Cursors:
    """The saved positions of the publishers, by name."""

    def __init__(self, state: StoreState) -> None:
        self.state = state

    def load(self) -> None:
        """Read every saved cursor (blocking)."""
        for f in self.state.cursor_dir.glob("*.json"):
            data = read_json(f)
            self.state.cursors[f.stem] = Position(int(data["seq"]), int(data.get("row", 0)))

    def get(self, name: str) -> Position:
        """The saved position of a publisher; a new publisher starts at the oldest data still in the log."""
        state = self.state
        with state.lock:
            if name not in state.cursors:
                first = state.segments[0].first_seq if state.segments else state.next_seq
                state.cursors[name] = Position(max(first, 1), 0)
            return state.cursors[name]

    def save(self, name: str, position: Position) -> None:
        """Persist a publisher's position (blocking: call from a thread)."""
        write_json_atomic(self.state.cursor_dir / f"{name}.json", position.as_dict())
        with self.state.lock:
            self.state.cursors[name] = position

    def retain(self, names: set[str]) -> None:
        """Forget the cursors of publishers that are no longer configured, so they hold no WAL back."""
        state = self.state
        for name in list(state.cursors):
            if name not in names:
                log.warning("forgetting the cursor %s: no such publisher is configured", name)
                (state.cursor_dir / f"{name}.json").unlink(missing_ok=True)
                with state.lock:
                    del state.cursors[name]

    def backlog(self, name: str) -> int:
        """Rows after a cursor still in memory or the active log (an estimate for metrics)."""
        pos = self.get(name)
        with self.state.lock:
            resident = self.state.resident
            return sum(b.num_rows for s, b in resident if s >= pos.seq) - (
                pos.row if any(s == pos.seq for s, _ in resident) else 0
            )


class LogReader:
    """Reads the log after a position: resident records from memory, older ones from WAL segments."""

    def __init__(self, state: StoreState) -> None:
        self.state = state
        self._waiters: list[asyncio.Future[None]] = []
        self._damage_seen: set[tuple[Path, int]] = set()

    def _damaged(self, damage: wal.Damage) -> None:
        """Damage that appeared after the store opened (recovery quarantines it on the next open): skipped."""
        place = (damage.path, damage.offset)
        if place not in self._damage_seen:
            self._damage_seen.add(place)
            log.error("WAL %s: %s at offset %d: %d unreadable bytes skipped (records %d..%d); the next start "
                      "quarantines them", damage.path.name, damage.reason, damage.offset, damage.size,
                      damage.previous_seq + 1, (damage.next_seq or 0) - 1)

    def read(self, position: Position, max_rows: int) -> tuple[pa.Table, Position]:
        """Rows after ``position`` in acceptance order, at most ``max_rows`` (blocking: use a thread)."""
        out: list[pa.RecordBatch] = []
        n = 0
        pos = position
        for seq, batch in self.records_from(position.seq):
            if seq < pos.seq:
                continue
            start = pos.row if seq == pos.seq else 0
            if start >= batch.num_rows:
                pos = Position(seq + 1, 0)
                continue
            take = min(batch.num_rows - start, max_rows - n)
            out.append(batch.slice(start, take))
            n += take
            pos = Position(seq, start + take) if start + take < batch.num_rows else Position(seq + 1, 0)
            if n >= max_rows:
                break
        return concat(out), pos

    def records_from(self, seq: int) -> Iterator[Record]:
        """Every readable record from ``seq`` on, oldest first (blocking while it reads WAL segments).

        Raises StoreError when a segment it needs was deleted meanwhile (the disk budget).
        """
        with self.state.lock:
            resident = list(self.state.resident)
            segs = list(self.state.segments)
        first_resident = resident[0].seq if resident else self.state.next_seq
        if seq < first_resident:
            # behind memory: read the log from disk up to where memory starts
            starts = [s.first_seq for s in segs]
            i = max(0, bisect.bisect_right(starts, seq) - 1)
            for seg in segs[i:]:
                if seg.first_seq >= first_resident:
                    break
                try:
                    for s, batch in wal.read_segment(seg.path, self._damaged):
                        if s >= first_resident:
                            break
                        if s >= seq:
                            yield Record(s, batch)
                except FileNotFoundError:
                    raise StoreError(f"WAL segment {seg.path.name} was removed while a reader needed it",
                                     path=seg.path, segment=seg.path.name, seq=seq) from None
        for record in resident:
            if record.seq >= seq:
                yield record

    def notify(self) -> None:
        """A batch was accepted: wake every :meth:`wait_for_data`."""
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    async def wait_for_data(self, max_wait: float) -> None:
        """Return when a batch is appended, or after ``max_wait`` seconds."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, max_wait)
        except TimeoutError:
            pass
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
