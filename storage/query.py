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
import numpy as np
import pyarrow as pa

from sitewise_edge.samples import SCHEMA, concat

_COLUMNS = "stream, epoch_ns(time) AS time_ns, double, integer, string, boolean, quality"
ROW_BITS = 24  # a version is (record seq << ROW_BITS) | row: later writes of a key win
_LATEST_VERSION = "row_number() OVER (PARTITION BY stream, time_ns, quality ORDER BY _v DESC) = 1"


@dataclass(frozen=True)
class Snapshot:
    files: tuple[Path, ...]
    resident: tuple[tuple[int, pa.RecordBatch], ...]  # (record seq, batch), oldest first

    def resident_table(self) -> pa.Table:
        table = concat([b for _, b in self.resident])
        versions = [
            (np.int64(seq) << ROW_BITS) + np.arange(b.num_rows, dtype=np.int64) for seq, b in self.resident
        ]
        v = np.concatenate(versions) if versions else np.zeros(0, dtype=np.int64)
        table = table.set_column(0, "stream", table.column("stream").cast(pa.string()))
        return table.append_column("_v", pa.array(v, pa.int64()))


class Reader:
    """Runs queries for one snapshot on one DuckDB cursor.

    ``raw`` holds every stored row with its version ``_v``; a (stream, timestamp, quality) written
    twice keeps only the later write, as SiteWise does. Queries filter ``raw`` first and then keep the
    latest version of each key (cheap once filtered to one stream and a time range); the ``samples``
    view is that rule applied to everything, for ad-hoc SQL.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, snapshot: Snapshot) -> None:
        self.con = con
        resident = snapshot.resident_table()
        con.register("resident_rows", resident)
        parts = [f"SELECT {_COLUMNS}, _v FROM resident_rows"]
        if snapshot.files:
            files = ", ".join("'" + str(p).replace("'", "''") + "'" for p in snapshot.files)
            version = f"CAST(regexp_extract(filename, '-([0-9]+)\\.parquet$', 1) AS BIGINT) << {ROW_BITS}"
            parts.append(f"SELECT {_COLUMNS}, {version} AS _v FROM read_parquet([{files}], filename=true)")
        con.execute("CREATE OR REPLACE TEMP VIEW raw AS " + " UNION ALL ".join(parts))
        con.execute(f"CREATE OR REPLACE TEMP VIEW samples AS SELECT * EXCLUDE (_v) FROM raw QUALIFY {_LATEST_VERSION}")

    def rows(self, where: str) -> str:
        """SQL for the current rows matching ``where`` (a filter on raw's columns)."""
        return f"SELECT * EXCLUDE (_v) FROM raw WHERE {where} QUALIFY {_LATEST_VERSION}"

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
            "SELECT * EXCLUDE (_v) FROM raw WHERE stream = ? ORDER BY time_ns DESC, _v DESC LIMIT 1", [stream]
        )

    def latest_all(self) -> pa.Table:
        """The latest value of every stream (by scanning: the store keeps an index for the API)."""
        return self.latest_all_versioned()[0]

    def latest_all_versioned(self) -> tuple[pa.Table, list[int]]:
        result = self.con.sql(
            "SELECT * FROM raw "
            "QUALIFY row_number() OVER (PARTITION BY stream ORDER BY time_ns DESC, _v DESC) = 1 ORDER BY stream"
        ).to_arrow_table()
        return _to_samples(result), result.column("_v").to_pylist()

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
        sql = f"{self.rows(' AND '.join(where))} ORDER BY time_ns {order}, quality LIMIT ? OFFSET ?"
        return self._fetch(sql, [*params, limit, offset])

    def streams(self) -> list[str]:
        return [r[0] for r in self.con.sql("SELECT DISTINCT stream FROM raw ORDER BY 1").fetchall()]

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
