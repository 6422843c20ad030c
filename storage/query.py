"""Queries over the store with DuckDB: Parquet segments and WAL-resident rows as one view.

A :class:`Snapshot` is what a query sees: the Parquet files and the in-memory rows
not yet compacted, taken together under the store's lock so that a compaction
running meanwhile neither hides nor doubles a row. Each query runs on its own
DuckDB cursor, in a worker thread (callers use ``asyncio.to_thread``).

Times cross the DuckDB boundary as int64 nanoseconds (``epoch_ns``), never as
DuckDB timestamps, so no precision is lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from sitewise_edge.samples import SCHEMA, concat

_COLUMNS = "stream, epoch_ns(time) AS time_ns, double, integer, string, boolean, quality"


@dataclass(frozen=True)
class Snapshot:
    files: tuple[Path, ...]
    resident: tuple[pa.RecordBatch, ...]

    def resident_table(self) -> pa.Table:
        table = concat(list(self.resident))
        return table.set_column(0, "stream", table.column("stream").cast(pa.string()))


class Reader:
    """Runs queries for one snapshot on one DuckDB cursor."""

    def __init__(self, con: duckdb.DuckDBPyConnection, snapshot: Snapshot) -> None:
        self.con = con
        resident = snapshot.resident_table()
        con.register("resident_rows", resident)
        parts = [f"SELECT {_COLUMNS} FROM resident_rows"]
        if snapshot.files:
            files = ", ".join("'" + str(p).replace("'", "''") + "'" for p in snapshot.files)
            parts.append(f"SELECT {_COLUMNS} FROM read_parquet([{files}])")
        con.execute("CREATE OR REPLACE TEMP VIEW samples AS " + " UNION ALL ".join(parts))

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fetch(self, sql: str, params: list[object]) -> pa.Table:
        return _to_samples(self.con.sql(sql, params=params).to_arrow_table())

    def latest(self, stream: str) -> pa.Table:
        """The value with the greatest timestamp (0 or 1 row)."""
        return self._fetch(
            "SELECT * FROM samples WHERE stream = ? ORDER BY time_ns DESC LIMIT 1", [stream]
        )

    def latest_all(self) -> pa.Table:
        """The latest value of every stream."""
        return self._fetch(
            "SELECT * FROM samples QUALIFY row_number() OVER (PARTITION BY stream ORDER BY time_ns DESC) = 1 "
            "ORDER BY stream",
            [],
        )

    def history(
        self,
        stream: str,
        start_ns: int | None,
        end_ns: int | None,
        *,
        quality: int | None = None,
        descending: bool = False,
        limit: int = 20_000,
        offset: int = 0,
    ) -> pa.Table:
        """Values in (start, end], ordered by time; one extra row tells the caller a next page exists."""
        where = ["stream = ?"]
        params: list[object] = [stream]
        if start_ns is not None:
            where.append("time_ns > ?")
            params.append(start_ns)
        if end_ns is not None:
            where.append("time_ns <= ?")
            params.append(end_ns)
        if quality is not None:
            where.append("quality = ?")
            params.append(quality)
        order = "DESC" if descending else "ASC"
        sql = f"SELECT * FROM samples WHERE {' AND '.join(where)} ORDER BY time_ns {order} LIMIT ? OFFSET ?"
        return self._fetch(sql, [*params, limit, offset])

    def streams(self) -> list[str]:
        return [r[0] for r in self.con.sql("SELECT DISTINCT stream FROM samples ORDER BY 1").fetchall()]

    def count(self) -> int:
        row = self.con.sql("SELECT count(*) FROM samples").fetchall()[0]
        return int(row[0]) if row else 0


def _to_samples(table: pa.Table) -> pa.Table:
    """DuckDB's result -> the sample schema (time back to timestamp[ns, UTC])."""
    cols = [
        table.column("stream").cast(pa.string()).dictionary_encode(),
        table.column("time_ns").cast(pa.int64()).cast(SCHEMA.field("time").type),
        table.column("double").cast(pa.float64()),
        table.column("integer").cast(pa.int64()),
        table.column("string").cast(pa.string()),
        table.column("boolean").cast(pa.bool_()),
        table.column("quality").cast(pa.int8()),
    ]
    return pa.Table.from_arrays(cols, schema=SCHEMA)
