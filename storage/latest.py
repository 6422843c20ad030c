"""The latest value of every stream, kept in memory so GetAssetPropertyValue never scans.

Updated per accepted batch with one vectorised pass (the newest row of each stream in the
batch), then one dictionary update per distinct stream, not per value. "Latest" is the
greatest timestamp; at an equal timestamp the later write wins, as in queries.

Saved next to the Parquet files at each compaction (``latest.parquet``) so a restart does not
scan the history; entries newer than the compaction are rebuilt from the WAL on open.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sitewise_edge.samples import SCHEMA, VALUE_COLUMNS
from storage.query import ROW_BITS

_Row = tuple[int, int, float | None, int | None, str | None, bool | None, int]  # time, version, values, quality


class LatestIndex:
    def __init__(self) -> None:
        self._rows: dict[str, _Row] = {}

    def __len__(self) -> int:
        return len(self._rows)

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
        names = stream.dictionary.take(pa.array(codes[pick])).to_pylist()
        picked = batch.take(pa.array(pick))
        values = [picked.column(c).to_pylist() for c in VALUE_COLUMNS]
        quality = picked.column("quality").to_pylist()
        base = seq << ROW_BITS
        for i, name in enumerate(names):
            t = int(times[pick[i]])
            version = base + int(pick[i])
            current = self._rows.get(name)
            if current is None or (t, version) >= (current[0], current[1]):
                self._rows[name] = (t, version, values[0][i], values[1][i], values[2][i], values[3][i], quality[i])

    def get(self, stream: str) -> pa.Table:
        row = self._rows.get(stream)
        return _table([stream], [row] if row else [])

    def all(self) -> pa.Table:
        names = sorted(self._rows)
        return _table(names, [self._rows[n] for n in names])

    def copy(self) -> LatestIndex:
        other = LatestIndex()
        other._rows = dict(self._rows)
        return other

    def drop_newer_than(self, seq: int) -> None:
        limit = (seq + 1) << ROW_BITS
        self._rows = {k: v for k, v in self._rows.items() if v[1] < limit}

    def save(self, path: Path) -> None:
        names = sorted(self._rows)
        table = _table(names, [self._rows[n] for n in names])
        table = table.append_column("_v", pa.array([self._rows[n][1] for n in names], pa.int64()))
        tmp = path.with_suffix(".tmp")
        pq.write_table(table, tmp, compression="zstd")
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> LatestIndex:
        table = pq.read_table(path)
        return cls.from_table(table, table.column("_v").to_pylist())

    @classmethod
    def from_table(cls, table: pa.Table, versions: list[int]) -> LatestIndex:
        """From the latest row of each stream (a saved index or a query result) and the rows' versions."""
        index = cls()
        names = table.column("stream").cast(pa.string()).to_pylist()
        times = table.column("time").cast(pa.int64()).to_pylist()
        cols = [table.column(c).to_pylist() for c in VALUE_COLUMNS]
        quality = table.column("quality").to_pylist()
        for i, name in enumerate(names):
            index._rows[name] = (times[i], versions[i], cols[0][i], cols[1][i], cols[2][i], cols[3][i], quality[i])
        return index


def _table(names: list[str], rows: list[_Row]) -> pa.Table:
    names = names[: len(rows)]
    return pa.Table.from_arrays(
        [
            pa.array(names, pa.string()).dictionary_encode(),
            pa.array([r[0] for r in rows], pa.int64()).cast(SCHEMA.field("time").type),
            pa.array([r[2] for r in rows], pa.float64()),
            pa.array([r[3] for r in rows], pa.int64()),
            pa.array([r[4] for r in rows], pa.string()),
            pa.array([r[5] for r in rows], pa.bool_()),
            pa.array([r[6] for r in rows], pa.int8()),
        ],
        schema=SCHEMA,
    )
