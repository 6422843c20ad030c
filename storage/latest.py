"""The latest value of every stream, kept in memory so GetAssetPropertyValue never scans.

A persistent name -> slot map and one numpy array per column (time, version, quality, each value type
and its validity), so an accepted batch costs O(rows of the batch), whatever the number of known
streams: the newest row of each stream in the batch (one lexsort), the batch's dictionary mapped to
slots (a dict look-up per distinct name, skipped when the dictionary is the one of the last batch),
and a vectorised compare-and-scatter into the arrays. Arrays grow by doubling. "Latest" is the greatest
timestamp; at an equal timestamp the later write wins, as in queries.

Saved next to the Parquet files at each compaction (``latest.parquet``) so a restart does not
scan the history; entries newer than the compaction are rebuilt from the WAL on open.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sitewise_edge.files import write_bytes_atomic
from sitewise_edge.samples import SCHEMA, Sample
from storage.snapshot import ROW_BITS

_NEVER = np.iinfo(np.int64).min
_TYPED = (("double", np.float64), ("integer", np.int64), ("boolean", np.bool_))  # numeric value columns


class LatestIndex:
    def __init__(self) -> None:
        self._names: list[str] = []
        self._slot: dict[str, int] = {}
        self._name_array: pa.Array | None = pa.array([], pa.string())  # None: to rebuild from _names
        self._last_dictionary: pa.Array | None = None  # the dictionary of the last batch and its slots
        self._last_slots = np.zeros(0, dtype=np.int64)
        self._time = np.zeros(0, dtype=np.int64)
        self._version = np.zeros(0, dtype=np.int64)
        self._quality = np.zeros(0, dtype=np.int8)
        self._values = {c: np.zeros(0, dtype=t) for c, t in _TYPED}
        self._valid = {c: np.zeros(0, dtype=np.bool_) for c in (*self._values, "string")}
        self._string = np.zeros(0, dtype=object)

    def __len__(self) -> int:
        return len(self._names)

    def _grow(self, needed: int) -> None:
        """Room for ``needed`` slots (capacity doubles: appending names is amortised O(1))."""
        capacity = len(self._time)
        if needed <= capacity:
            return
        size = max(needed, 2 * capacity, 64)

        def grown(a: np.ndarray, fill: object) -> np.ndarray:
            out = np.full(size, fill, dtype=a.dtype)
            out[:capacity] = a
            return out

        self._time = grown(self._time, _NEVER)
        self._version = grown(self._version, _NEVER)
        self._quality = grown(self._quality, 0)
        self._values = {c: grown(a, 0) for c, a in self._values.items()}
        self._valid = {c: grown(a, False) for c, a in self._valid.items()}
        self._string = grown(self._string, None)

    def _slots_for(self, names: pa.Array) -> np.ndarray:
        """Slot of each name (a batch's dictionary), creating slots for new names."""
        last = self._last_dictionary
        if last is not None and (names is last or names.equals(last)):
            return self._last_slots
        listed = names.to_pylist()
        slots = np.fromiter((self._slot.get(n, -1) for n in listed), dtype=np.int64, count=len(listed))
        missing = np.flatnonzero(slots < 0)
        if len(missing):
            for i in missing:  # new streams only: once per stream in the life of the store
                name = listed[i]
                if name not in self._slot:  # (a plain string column may repeat a name)
                    self._slot[name] = len(self._names)
                    self._names.append(name)
                slots[i] = self._slot[name]
            self._grow(len(self._names))
            self._name_array = None
        self._last_dictionary, self._last_slots = names, slots
        return slots

    def update(self, seq: int, batch: pa.RecordBatch | pa.Table) -> None:
        n = batch.num_rows
        if n == 0:
            return
        stream = batch.column("stream")
        if isinstance(stream, pa.ChunkedArray):
            stream = stream.combine_chunks()
        if not pa.types.is_dictionary(stream.type):
            stream = stream.dictionary_encode()
        codes = stream.indices.to_numpy(zero_copy_only=False)
        times = batch.column("time").cast(pa.int64()).to_numpy(zero_copy_only=False)
        rows = np.arange(n)
        order = np.lexsort((rows, times, codes))  # by stream, then time, then write order
        last = np.append(codes[order][1:] != codes[order][:-1], True)
        pick = order[last]
        slots = self._slots_for(stream.dictionary)[codes[pick]]
        versions = (np.int64(seq) << ROW_BITS) + pick.astype(np.int64)
        t = times[pick]
        newer = (t > self._time[slots]) | ((t == self._time[slots]) & (versions >= self._version[slots]))
        if not newer.any():
            return
        slots, pick = slots[newer], pick[newer]
        self._time[slots] = t[newer]
        self._version[slots] = versions[newer]
        take = pa.array(pick)
        self._quality[slots] = _column(batch, "quality").take(take).to_numpy(zero_copy_only=False)
        for c, values in self._values.items():
            col = _column(batch, c).take(take)
            self._valid[c][slots] = col.is_valid().to_numpy(zero_copy_only=False)
            values[slots] = col.fill_null(values.dtype.type(0)).to_numpy(zero_copy_only=False)
        strings = _column(batch, "string").take(take)
        self._valid["string"][slots] = strings.is_valid().to_numpy(zero_copy_only=False)
        self._string[slots] = strings.to_numpy(zero_copy_only=False)

    def _table(self, slots: np.ndarray) -> pa.Table:
        """The rows of ``slots`` as a sample table (stream, time, values, quality)."""
        if self._name_array is None:
            self._name_array = pa.array(self._names, pa.string())
        take = pa.array(slots, pa.int64())
        cols: list[pa.Array] = [
            self._name_array.take(take).dictionary_encode().cast(SCHEMA.field("stream").type),
            pa.array(self._time[slots]).cast(SCHEMA.field("time").type),
        ]
        for c, values in self._values.items():
            cols.append(pa.array(values[slots], SCHEMA.field(c).type, mask=~self._valid[c][slots]))
        cols.append(pa.array(self._string[slots], pa.string(), mask=~self._valid["string"][slots]))
        cols.append(pa.array(self._quality[slots], pa.int8()))
        order = ("stream", "time", "double", "integer", "boolean", "string", "quality")
        return pa.Table.from_arrays(cols, names=list(order)).select(SCHEMA.names).cast(SCHEMA)

    def get(self, stream: str) -> pa.Table:
        slot = self._slot.get(stream)
        if slot is None or self._time[slot] == _NEVER:
            return SCHEMA.empty_table()
        return self._table(np.array([slot], dtype=np.int64))

    def value(self, stream: str) -> Sample | None:
        """The stream's latest value as Python scalars, None when it has none: what GetAssetPropertyValue
        answers, read from the arrays without building a table (a few microseconds, not ~200)."""
        slot = self._slot.get(stream)
        if slot is None:
            return None
        t = int(self._time[slot])
        if t == _NEVER:
            return None
        quality = int(self._quality[slot])
        for c, values in self._values.items():
            if self._valid[c][slot]:
                return Sample(t, c, values[slot].item(), quality)
        if self._valid["string"][slot]:
            return Sample(t, "string", self._string[slot], quality)
        return Sample(t, None, None, quality)

    def _known(self) -> np.ndarray:
        return np.flatnonzero(self._time[: len(self._names)] != _NEVER)

    def all(self) -> pa.Table:
        table = self._table(self._known())
        order = pc.sort_indices(table.column("stream").cast(pa.string()))
        return table.take(order)

    def copy(self) -> LatestIndex:
        other = LatestIndex()
        other._names, other._slot, other._name_array = list(self._names), dict(self._slot), self._name_array
        other._time, other._version, other._quality = self._time.copy(), self._version.copy(), self._quality.copy()
        other._values = {c: a.copy() for c, a in self._values.items()}
        other._valid = {c: a.copy() for c, a in self._valid.items()}
        other._string = self._string.copy()
        return other

    def drop_newer_than(self, seq: int) -> None:
        limit = (seq + 1) << ROW_BITS
        gone = self._version >= limit
        self._time[gone] = _NEVER
        self._version[gone] = _NEVER

    def forget(self, stream: str, before_version: int) -> bool:
        """Drop the stream's latest value if it was written before ``before_version`` (a deleted stream)."""
        slot = self._slot.get(stream)
        if slot is None or self._time[slot] == _NEVER or self._version[slot] >= before_version:
            return False
        self._time[slot] = self._version[slot] = _NEVER
        return True

    def save(self, path: Path) -> None:
        known = self._known()
        table = self._table(known).append_column("_v", pa.array(self._version[known], pa.int64()))
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        write_bytes_atomic(path, sink.getvalue().to_pybytes())

    @classmethod
    def load(cls, path: Path) -> LatestIndex:
        table = pq.read_table(path)
        return cls.from_table(table.drop_columns(["_v"]), table.column("_v").to_pylist())

    @classmethod
    def from_table(cls, table: pa.Table, versions: list[int]) -> LatestIndex:
        """From the latest row of each stream (a saved index or a query result) and the rows' versions."""
        index = cls()
        if table.num_rows == 0:
            return index
        table = table.select(SCHEMA.names).cast(SCHEMA).combine_chunks()
        slots = index._slots_for(table.column("stream").cast(pa.string()).combine_chunks())
        index._last_dictionary = None
        index._time[slots] = table.column("time").cast(pa.int64()).to_numpy()
        index._version[slots] = np.array(versions, dtype=np.int64)
        index._quality[slots] = table.column("quality").to_numpy()
        for c, values in index._values.items():
            col = table.column(c)
            index._valid[c][slots] = col.is_valid().to_numpy()
            values[slots] = col.fill_null(values.dtype.type(0)).to_numpy()
        index._valid["string"][slots] = table.column("string").is_valid().to_numpy()
        index._string[slots] = table.column("string").to_numpy(zero_copy_only=False)
        return index


def _column(batch: pa.RecordBatch | pa.Table, name: str) -> pa.Array:
    col = batch.column(name)
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
