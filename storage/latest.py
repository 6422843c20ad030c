"""The latest value of every stream, kept in memory so GetAssetPropertyValue never scans.

Updated per accepted batch with array operations only: the newest row of each stream in the batch
(one lexsort), stream names matched to slots with one ``index_in`` over the batch's dictionary, and a
vectorised compare-and-replace. "Latest" is the greatest timestamp; at an equal timestamp the later
write wins, as in queries.

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
from sitewise_edge.samples import SCHEMA, VALUE_COLUMNS
from storage.snapshot import ROW_BITS

_NEVER = np.iinfo(np.int64).min


class LatestIndex:
    def __init__(self) -> None:
        self._names: list[str] = []
        self._slot: dict[str, int] = {}
        self._name_array = pa.array([], pa.string())
        self._time = np.zeros(0, dtype=np.int64)
        self._version = np.zeros(0, dtype=np.int64)
        self._rows: pa.Table = SCHEMA.empty_table()  # one row per slot, the current latest value

    def __len__(self) -> int:
        return len(self._names)

    def _slots_for(self, names: pa.Array) -> np.ndarray:
        """Slot of each name (a batch's dictionary), creating slots for new names."""
        found = pc.index_in(names, value_set=self._name_array)
        missing = np.flatnonzero(pc.is_null(found).to_numpy(zero_copy_only=False))
        if len(missing):
            new = names.take(pa.array(missing)).to_pylist()
            start = len(self._names)
            for offset, name in enumerate(new):
                self._slot[name] = start + offset
            self._names += new
            self._name_array = pa.array(self._names, pa.string())
            grow = len(new)
            self._time = np.concatenate([self._time, np.full(grow, _NEVER, dtype=np.int64)])
            self._version = np.concatenate([self._version, np.full(grow, _NEVER, dtype=np.int64)])
            self._rows = pa.concat_tables([self._rows, _empty_rows(new)]).unify_dictionaries()
            found = pc.index_in(names, value_set=self._name_array)
        return found.to_numpy(zero_copy_only=False).astype(np.int64)

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
        slots, pick, t, versions = slots[newer], pick[newer], t[newer], versions[newer]
        self._time[slots] = t
        self._version[slots] = versions
        picked = (pa.table(batch) if isinstance(batch, pa.RecordBatch) else batch).take(pa.array(pick))
        self._rows = _scatter(self._rows, slots, picked)

    def get(self, stream: str) -> pa.Table:
        slot = self._slot.get(stream)
        if slot is None or self._time[slot] == _NEVER:
            return SCHEMA.empty_table()
        return self._rows.slice(slot, 1)

    def all(self) -> pa.Table:
        known = np.flatnonzero(self._time != _NEVER)
        table = self._rows.take(pa.array(known))
        order = pc.sort_indices(table.column("stream").cast(pa.string()))
        return table.take(order)

    def copy(self) -> LatestIndex:
        other = LatestIndex()
        other._names, other._slot, other._name_array = list(self._names), dict(self._slot), self._name_array
        other._time, other._version, other._rows = self._time.copy(), self._version.copy(), self._rows
        return other

    def drop_newer_than(self, seq: int) -> None:
        limit = (seq + 1) << ROW_BITS
        gone = self._version >= limit
        self._time[gone] = _NEVER
        self._version[gone] = _NEVER

    def save(self, path: Path) -> None:
        known = np.flatnonzero(self._time != _NEVER)
        table = self._rows.take(pa.array(known)).append_column("_v", pa.array(self._version[known], pa.int64()))
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
        table = table.select(SCHEMA.names).cast(SCHEMA)
        names = table.column("stream").cast(pa.string()).to_pylist()
        index._names = names
        index._slot = {n: i for i, n in enumerate(names)}
        index._name_array = pa.array(names, pa.string())
        index._time = table.column("time").cast(pa.int64()).to_numpy().copy()
        index._version = np.array(versions, dtype=np.int64)
        index._rows = table.combine_chunks()
        return index


def _empty_rows(names: list[str]) -> pa.Table:
    n = len(names)
    return pa.Table.from_arrays(
        [pa.array(names, pa.string()).dictionary_encode().cast(SCHEMA.field("stream").type),
         pa.array(np.zeros(n, dtype=np.int64)).cast(SCHEMA.field("time").type),
         *(pa.nulls(n, SCHEMA.field(c).type) for c in VALUE_COLUMNS),
         pa.array(np.zeros(n, dtype=np.int8))],
        schema=SCHEMA,
    )


def _scatter(rows: pa.Table, slots: np.ndarray, values: pa.Table) -> pa.Table:
    """``rows`` with row ``slots[i]`` replaced by row ``i`` of ``values`` (one take over both tables)."""
    take = np.arange(rows.num_rows, dtype=np.int64)
    take[slots] = rows.num_rows + np.arange(len(slots))
    both = pa.concat_tables([rows, values.select(SCHEMA.names).cast(SCHEMA)]).unify_dictionaries()
    return both.take(pa.array(take)).combine_chunks().unify_dictionaries()
