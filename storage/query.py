"""Queries over the store with DuckDB: Parquet segments and WAL-resident rows as one view.

    with store.reader() as r:                                 # in a worker thread
        r.history("/p/temp", start_ns, end_ns)                # one stream, paged (the SiteWise API)
        r.points(["/p/temp", "/p/flow"], start_ns, end_ns)    # GOOD values of several streams in (start, end]
        r.edge(["/p/temp"], at_ns, first=False)               # per stream: the latest GOOD value at or before
        r.aggregates(["/p/temp"], start_ns, end_ns, 60 * 10**9)
        r.count()

A :class:`~storage.snapshot.Snapshot` is what a query sees: the Parquet files and the in-memory
rows not yet compacted, taken together under the store's lock so that a compaction running
meanwhile neither hides nor doubles a row. Each reader runs on its own DuckDB cursor, in a worker
thread (callers use ``asyncio.to_thread``). Callers never write SQL against the reader's views:
every question is a method with typed parameters, so the views can change with the layout.

Times cross the DuckDB boundary as int64 nanoseconds (``epoch_ns``), never as
DuckDB timestamps, so no precision is lost. Intervals are (start, end], as in SiteWise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa

from sitewise_edge.clock import NS_PER_DAY, NS_PER_S
from sitewise_edge.samples import SCHEMA, Quality
from storage import segments, tombstones
from storage.encoding import SQL_COLUMNS
from storage.snapshot import ROW_BITS, Snapshot

_COLUMNS = "stream, epoch_ns(time) AS time_ns, double, integer, string, boolean, quality"
_LATEST_VERSION = "row_number() OVER (PARTITION BY stream, time_ns, quality ORDER BY _v DESC) = 1"


class Reader:
    """Runs queries for one snapshot on one DuckDB cursor.

    ``raw`` holds every stored row with its version ``_v``; a (stream, timestamp, quality) written
    twice keeps only the later write, as SiteWise does. Queries filter ``raw`` first and then keep the
    latest version of each key (cheap once filtered to a few streams and a time range); the ``samples``
    view is that rule applied to everything. Both views are private to this class.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, snapshot: Snapshot,
                 precomputed: Mapping[int, Path] | None = None) -> None:
        self._con = con
        self._precomputed = dict(precomputed or {})  # day start ns -> its aggregates (storage/aggregates.py)
        resident = snapshot.resident_table()
        con.register("resident_rows", resident)
        self._files = snapshot.files
        # the UTC day each file holds rows of (its day folder, storage/segments.py): a time range opens only the
        # files of its days, not every footer of the store (None: a file outside a day folder, always read)
        self._file_days = [segments.folder_day_ns(p.parent.name) for p in snapshot.files]
        self._tombstones = snapshot.tombstones
        con.execute("CREATE OR REPLACE TEMP VIEW raw AS " + self._rows())
        con.execute(f"CREATE OR REPLACE TEMP VIEW samples AS SELECT * EXCLUDE (_v) FROM raw QUALIFY {_LATEST_VERSION}")

    def _rows(self, files_where: str | None = None, ranges: Sequence[tuple[int, int]] | None = None) -> str:
        """SQL for every stored row with its version ``_v`` (the WAL-resident rows, then the Parquet files', those
        filtered by ``files_where`` if given, and only the files of days that meet one of the (lo, hi] ``ranges``
        if given), without the rows of deleted streams (tombstones.py)."""
        parts = [f"SELECT {_COLUMNS}, _v FROM resident_rows"]
        files = self._files if ranges is None else tuple(
            p for p, day in zip(self._files, self._file_days, strict=True)
            if day is None or any(day <= hi and lo < day + NS_PER_DAY - 1 for lo, hi in ranges))
        if files:
            select = _files_sql(files)
            parts.append(select if files_where is None else f"{select} WHERE {files_where}")
        rows = " UNION ALL ".join(parts)
        return rows if self._tombstones is None else tombstones.hide(rows, self._tombstones, self._con)

    @property
    def precomputed_days(self) -> int:
        """The days whose precomputed aggregates this reader may use (storage/aggregates.py)."""
        return len(self._precomputed)

    def _current(self, where: str) -> str:
        """SQL for the current rows matching ``where`` (a filter on raw's columns)."""
        return f"SELECT * EXCLUDE (_v) FROM raw WHERE {where} QUALIFY {_LATEST_VERSION}"

    def _current_between(self, where: list[str], ranges: list[tuple[int, int]]) -> str:
        """:meth:`_current` for rows in the (lo, hi] ``ranges``: the Parquet scan is filtered on
        its stored whole second (``time_s``, the nearest one), which DuckDB pushes into the scan, so rows
        outside never reach the latest-write window (the time_ns expression over the encoded columns is not
        pushed down)."""
        in_ns = " OR ".join(f"(time_ns > {int(lo)} AND time_ns <= {int(hi)})" for lo, hi in ranges)
        in_s = " OR ".join(f"(time_s >= {lo // NS_PER_S - 1} AND time_s <= {hi // NS_PER_S + 1})" for lo, hi in ranges)
        rows, kept = self._rows(in_s, ranges), " AND ".join([*where, f"({in_ns})"])
        return f"SELECT * EXCLUDE (_v) FROM ({rows}) WHERE {kept} QUALIFY {_LATEST_VERSION}"

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fetch(self, sql: str, params: list[object]) -> pa.Table:
        return _to_samples(self._con.sql(sql, params=params).to_arrow_table())

    def latest(self, stream: str) -> pa.Table:
        """The value with the greatest timestamp (0 or 1 row)."""
        return self._fetch(
            "SELECT * EXCLUDE (_v) FROM raw WHERE stream = ? ORDER BY time_ns DESC, _v DESC LIMIT 1", [stream]
        )

    def latest_versioned(self, stream: str) -> tuple[pa.Table, int | None]:
        """:meth:`latest` and its row's version (to repair the store's latest-value index)."""
        result = self._con.sql("SELECT * FROM raw WHERE stream = ? ORDER BY time_ns DESC, _v DESC LIMIT 1",
                               params=[stream]).to_arrow_table()
        versions = result.column("_v").to_pylist()
        return _to_samples(result.drop_columns(["_v"])), (versions[0] if versions else None)

    def latest_all(self) -> pa.Table:
        """The latest value of every stream (by scanning: the store keeps an index for the API)."""
        return self.latest_all_versioned()[0]

    def latest_all_versioned(self) -> tuple[pa.Table, list[int]]:
        """:meth:`latest_all` and each row's version (to rebuild the store's latest-value index)."""
        result = self._con.sql(
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
        after: tuple[int, int] | None = None,
    ) -> pa.Table:
        """Values in (start, end], ordered by time then quality; one extra row tells the caller a next page exists.

        ``after`` is a keyset position, the (time_ns, quality) of the last row of the previous page: the
        page starts right after it in the requested order, so values written between pages neither shift
        nor repeat rows (as an ``offset`` would).
        """
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
        if after is not None:
            where.append(f"(time_ns {'<' if descending else '>'} ? OR (time_ns = ? AND quality > ?))")
            params += [after[0], after[0], after[1]]
        order = "DESC" if descending else "ASC"
        current = self._current(" AND ".join(where)) if start_ns is None or end_ns is None else \
            self._current_between(where, [(start_ns, end_ns)])  # the files of the range's days only
        sql = f"{current} ORDER BY time_ns {order}, quality LIMIT ? OFFSET ?"
        return self._fetch(sql, [*params, limit, offset])

    def points(
        self,
        streams: Sequence[str] | None,
        start_ns: int,
        end_ns: int,
        *,
        quality: int | None = Quality.GOOD,
    ) -> pa.Table:
        """The current values of ``streams`` (None: every stream) in (start, end], as sample rows.

        Only values of ``quality`` (None: every quality). Ordered by stream, time, quality; one query
        for all the streams (the inputs of every asset of a metric at once).
        """
        if streams is not None and not streams:
            return SCHEMA.empty_table()
        where = [*_stream_filter(streams), *_quality_filter(quality)]
        sql = f"{self._current_between(where, [(start_ns, end_ns)])} ORDER BY stream, time_ns, quality"
        return self._fetch(sql, [])

    def edge(
        self,
        streams: Sequence[str],
        at_or_before_ns: int | None,
        *,
        first: bool,
        quality: int = Quality.GOOD,
    ) -> pa.Table:
        """Per stream, its first (``first``) or latest value of ``quality`` at or before ``at_or_before_ns``
        (None: of all its values), as sample rows ordered by stream; a stream without one has no row.

        Of two writes of one timestamp, the later wins (as everywhere).
        """
        if not streams:
            return SCHEMA.empty_table()
        where = [*_stream_filter(streams), *_quality_filter(quality)]
        params: list[object] = []
        if at_or_before_ns is not None:
            where.append("time_ns <= ?")
            params.append(at_or_before_ns)
        order = "ASC" if first else "DESC"
        sql = (f"SELECT * EXCLUDE (_v) FROM raw WHERE {' AND '.join(where)} "
               f"QUALIFY row_number() OVER (PARTITION BY stream ORDER BY time_ns {order}, _v DESC) = 1 "
               "ORDER BY stream")
        return self._fetch(sql, params)

    def current_relation(
        self, streams: Sequence[str] | None = None, start_ns: int | None = None, end_ns: int | None = None,
    ) -> duckdb.DuckDBPyRelation:
        """The current rows of ``streams`` (None: all) in (start, end] (None: unbounded) as a lazy DuckDB
        relation: columns stream (VARCHAR), time_ns (BIGINT ns), double, integer, string, boolean, quality.

        Nothing runs until the relation is read. The stream and time filters are applied below the
        latest-write rule, so DuckDB prunes Parquet row groups with them; the WAL-resident rows are scanned
        in place (Arrow chunks as they were accepted, never copied). For ExecuteQuery: register it as a view
        (``rel.create_view(name)``) and run the translated SQL over it on this reader's cursor.
        """
        where = [*_stream_filter(streams)]
        if start_ns is not None:
            where.append(f"time_ns > {int(start_ns)}")
        if end_ns is not None:
            where.append(f"time_ns <= {int(end_ns)}")
        return self._con.sql(self._current(" AND ".join(where) or "true"))

    def current_rows(self) -> pa.Table:
        """Every current row as DuckDB returns it (stream as string, time as int64 ``time_ns``)."""
        return self._con.sql(self._current("true")).to_arrow_table()

    def aggregates(
        self,
        streams: list[str] | None,
        start_ns: int,
        end_ns: int,
        resolution_ns: int,
        *,
        quality: int | None = 0,
        descending: bool = False,
        limit: int = 2500,
        offset: int = 0,
    ) -> pa.Table:
        """Aggregates of the values in (start, end] per stream, quality and time bucket, in one query.

        Buckets are [B, B + resolution) with B a multiple of the resolution since the epoch; a bucket is
        stamped with its start B and exists only if it holds a value. ``count`` counts every value
        (strings, booleans and nulls too); ``sum``, ``avg``, ``min``, ``max`` and ``stddev`` (the sample
        standard deviation, null for a single value) are over the numeric values (doubles and integers)
        and null where there are none. ``streams=None`` aggregates every stream; ``quality=None`` every
        quality, each on its own row. Rows come ordered by stream, bucket (descending if asked), quality.
        """
        if resolution_ns <= 0:
            raise ValueError(f"resolution must be positive, got {resolution_ns} ns")
        if streams is not None and not streams:
            return _AGGREGATES_SCHEMA.empty_table()
        r = int(resolution_ns)
        kept = [*_stream_filter(streams), *_quality_filter(quality)]
        whole = self._precomputed_ranges(streams, start_ns, end_ns, r)
        # raw: the edges, the fresh tail, unbuilt days; one scan per range (each pushes its own time filter)
        parts = [_bucket_sql(self._current_between(kept, [raw]), r) for raw in _complement(start_ns, end_ns, whole)]
        if whole:
            paths = ", ".join(_sql_string(str(self._precomputed[d])) for d in sorted(
                d for d in self._precomputed if any(lo < d + NS_PER_DAY and d < hi for lo, hi in whole)))
            in_whole = " OR ".join(f"(time_ns >= {lo} AND time_ns < {hi})" for lo, hi in whole)
            parts.append(f"SELECT {_AGGREGATE_COLUMNS} FROM read_parquet([{paths}]) "
                         f"WHERE {' AND '.join([f'resolution = {r}', *kept, f'({in_whole})'])}")
        if not parts:
            return _AGGREGATES_SCHEMA.empty_table()
        order = "DESC" if descending else "ASC"
        sql = (f"SELECT * FROM ({' UNION ALL '.join(parts)}) "
               f"ORDER BY stream, time_ns {order}, quality LIMIT ? OFFSET ?")
        result = self._con.sql(sql, params=[limit, offset]).to_arrow_table()
        return result.cast(_AGGREGATES_SCHEMA)

    def _precomputed_ranges(
        self, streams: Sequence[str] | None, start_ns: int, end_ns: int, r: int,
    ) -> list[tuple[int, int]]:
        """The time ranges [lo, hi) of whole ``r`` buckets in (start, end] that precomputed days answer:
        days with a sidecar for this snapshot's files and no WAL-resident row of ``streams``."""
        if r not in RESOLUTIONS_NS or not self._precomputed:
            return []
        if self._tombstones is not None and (streams is None or not set(streams).isdisjoint(
                self._tombstones.column("stream").to_pylist())):
            return []  # a day's sidecar may predate a delete: deleted streams are answered from raw rows
        lo_full = -((-(start_ns + 1)) // r) * r  # the first bucket starting after start
        hi_full = (end_ns + 1) // r * r  # the end of the last bucket ending at or before end
        days = sorted(d for d in self._precomputed if d < hi_full and d + NS_PER_DAY > lo_full)
        if not days:
            return []
        where = " AND ".join([*_stream_filter(streams), f"epoch_ns(time) >= {days[0]}",
                              f"epoch_ns(time) < {days[-1] + NS_PER_DAY}"])
        dirty = {int(row[0]) for row in self._con.sql(
            f"SELECT DISTINCT epoch_ns(time) // {NS_PER_DAY} * {NS_PER_DAY} FROM resident_rows WHERE {where}"
        ).fetchall()}
        ranges: list[tuple[int, int]] = []
        for d in days:
            if d in dirty:
                continue
            lo, hi = max(d, lo_full), min(d + NS_PER_DAY, hi_full)
            if ranges and ranges[-1][1] == lo:
                ranges[-1] = (ranges[-1][0], hi)
            else:
                ranges.append((lo, hi))
        return ranges

    def precompute(self) -> pa.Table:
        """The aggregates of every current row at each resolution of RESOLUTIONS_NS (a day's sidecar),
        ordered by resolution, stream, bucket, quality."""
        parts = [f"SELECT {r}::BIGINT AS resolution, * FROM ({_bucket_sql('SELECT * FROM day_rows', r)})"
                 for r in RESOLUTIONS_NS]
        sql = (f"WITH day_rows AS MATERIALIZED ({self._current('true')}) "
               f"{' UNION ALL '.join(parts)} ORDER BY resolution, stream, time_ns, quality")
        table = self._con.sql(sql).to_arrow_table()
        return table.cast(pa.schema([pa.field("resolution", pa.int64()), *_AGGREGATES_SCHEMA]))

    def interpolated(
        self,
        stream: str,
        start_ns: int,
        end_ns: int,
        interval_ns: int,
        *,
        kind: str,
        quality: int = 0,
        window_ns: int | None = None,
        first_k: int = 1,
        limit: int = 10,
    ) -> pa.Table:
        """Interpolated values at t_k = start + k * interval for k >= ``first_k`` and t_k <= end.

        ``kind`` is ``"LINEAR"`` or ``"LOCF"``; only values of ``quality`` count.

        - LOCF: the last value at or before t_k, of any type, however old (null values are carried too).
        - LINEAR: between the numeric values p0 (last at or before t_k) and p1 (first at or after t_k)
          taken from [t_k - window, t_k + window], or without a window from [start - interval,
          end + interval]; p0 itself when it is at t_k; no value when either side is missing (no
          extrapolation). The result is a double.

        Returns up to ``limit`` rows (k, time_ns, double, integer, string, boolean), skipping the t_k
        without a value. The grid is walked in chunks of DuckDB ranges, never value by value in Python.
        """
        if kind not in ("LINEAR", "LOCF"):
            raise ValueError(f"unknown interpolation {kind!r}")
        if interval_ns <= 0:
            raise ValueError(f"interval must be positive, got {interval_ns} ns")
        last_k = (end_ns - start_ns) // interval_ns
        parts: list[pa.Table] = []
        found = 0
        k = max(first_k, 1)
        while k <= last_k and found < limit:
            k_end = min(last_k, k + _GRID_CHUNK - 1)
            part = self._interpolate_chunk(stream, start_ns, end_ns, interval_ns, kind, quality, window_ns, k,
                                           k_end, limit - found)
            parts.append(part)
            found += part.num_rows
            k = k_end + 1
        if not parts:
            return _INTERPOLATED_SCHEMA.empty_table()
        return pa.concat_tables(parts)

    def _interpolate_chunk(
        self, stream: str, start_ns: int, end_ns: int, interval_ns: int, kind: str, quality: int,
        window_ns: int | None, k0: int, k1: int, limit: int,
    ) -> pa.Table:
        t_lo, t_hi = start_ns + k0 * interval_ns, start_ns + k1 * interval_ns
        where = ["stream = ?", "quality = ?"]
        params: list[object] = [stream, quality]
        grid = f"SELECT k, {start_ns} + k * {interval_ns} AS t FROM range({k0}, {k1 + 1}) r(k)"
        value = "coalesce(double, CAST(integer AS DOUBLE))"
        if kind == "LOCF":
            where.append("time_ns <= ?")
            params.append(t_hi)
            sql = (
                f"WITH grid AS ({grid}), pts AS ({self._current(' AND '.join(where))}) "
                "SELECT g.k, g.t AS time_ns, p.double, p.integer, p.string, p.boolean "
                "FROM grid g ASOF LEFT JOIN pts p ON g.t >= p.time_ns "
                "WHERE p.time_ns IS NOT NULL ORDER BY g.k LIMIT ?"
            )
        else:
            lo, hi = ((t_lo - window_ns, t_hi + window_ns) if window_ns is not None
                      else (start_ns - interval_ns, end_ns + interval_ns))
            where += ["time_ns >= ?", "time_ns <= ?"]
            params += [lo, hi]
            in_window = "true" if window_ns is None else f"t0 >= t - {window_ns} AND t1 <= t + {window_ns}"
            at_t0 = "true" if window_ns is None else f"t0 >= t - {window_ns}"
            at_t1 = "true" if window_ns is None else f"t1 <= t + {window_ns}"
            sql = (
                f"WITH grid AS ({grid}), "
                f"pts AS (SELECT time_ns, {value} AS v FROM ({self._current(' AND '.join(where))}) "
                f"WHERE {value} IS NOT NULL), "
                "b AS (SELECT g.k, g.t, p.time_ns AS t0, p.v AS v0 FROM grid g ASOF LEFT JOIN pts p "
                "ON g.t >= p.time_ns), "
                "f AS (SELECT g.k, p.time_ns AS t1, p.v AS v1 FROM grid g ASOF LEFT JOIN pts p "
                "ON g.t <= p.time_ns), "
                "j AS (SELECT b.k, b.t, CASE "
                f"WHEN t0 = t AND {at_t0} THEN v0 "
                f"WHEN t1 = t AND {at_t1} THEN v1 "
                f"WHEN t0 IS NOT NULL AND t1 IS NOT NULL AND {in_window} "
                "THEN v0 + (v1 - v0) * (CAST(t - t0 AS DOUBLE) / CAST(t1 - t0 AS DOUBLE)) END AS v "
                "FROM b JOIN f USING (k)) "
                "SELECT k, t AS time_ns, v AS double, CAST(NULL AS BIGINT) AS integer, "
                "CAST(NULL AS VARCHAR) AS string, CAST(NULL AS BOOLEAN) AS boolean "
                "FROM j WHERE v IS NOT NULL ORDER BY k LIMIT ?"
            )
        result = self._con.sql(sql, params=[*params, limit]).to_arrow_table()
        return result.cast(_INTERPOLATED_SCHEMA)

    def streams(self) -> list[str]:
        """Every stream that has a stored value, sorted."""
        return [r[0] for r in self._con.sql("SELECT DISTINCT stream FROM raw ORDER BY 1").fetchall()]

    def count(self) -> int:
        """The number of current values (every stream, every quality)."""
        row = self._con.sql("SELECT count(*) FROM samples").fetchall()[0]
        return int(row[0]) if row else 0


RESOLUTIONS_NS = (60 * NS_PER_S, 900 * NS_PER_S, 3600 * NS_PER_S, NS_PER_DAY)  # precomputed (SiteWise's)
_AGGREGATE_COLUMNS = "stream, time_ns, quality, count, sum, avg, min, max, stddev"
_GRID_CHUNK = 1_000_000  # interpolation grid points per DuckDB query

_AGGREGATES_SCHEMA = pa.schema([
    ("stream", pa.string()), ("time_ns", pa.int64()), ("quality", pa.int8()), ("count", pa.int64()),
    ("sum", pa.float64()), ("avg", pa.float64()), ("min", pa.float64()), ("max", pa.float64()),
    ("stddev", pa.float64()),
])
_INTERPOLATED_SCHEMA = pa.schema([
    ("k", pa.int64()), ("time_ns", pa.int64()), ("double", pa.float64()), ("integer", pa.int64()),
    ("string", pa.string()), ("boolean", pa.bool_()),
])


def _bucket_sql(source: str, r: int) -> str:
    """SQL for the aggregates of the rows of ``source`` (raw's columns) per stream, ``r`` bucket and quality."""
    return (
        f"SELECT stream::VARCHAR AS stream, time_ns - (((time_ns % {r}) + {r}) % {r}) AS time_ns, quality, "
        "count(*) AS count, sum(v) AS sum, avg(v) AS avg, min(v) AS min, max(v) AS max, stddev_samp(v) AS stddev "
        f"FROM (SELECT stream, time_ns, quality, coalesce(double, CAST(integer AS DOUBLE)) AS v FROM ({source})) "
        "GROUP BY ALL"
    )


def _complement(start_ns: int, end_ns: int, whole: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(start, end] without the [lo, hi) of ``whole`` (sorted, disjoint), as (lo, hi] ranges."""
    out: list[tuple[int, int]] = []
    cur = start_ns
    for lo, hi in whole:
        if lo - 1 > cur:
            out.append((cur, lo - 1))
        cur = max(cur, hi - 1)
    if end_ns > cur:
        out.append((cur, end_ns))
    return out


def _files_sql(files: Sequence[Path]) -> str:
    """SQL reading the store's Parquet ``files`` as raw's columns, each row's version ``_v`` from its file name."""
    paths = ", ".join(_sql_string(str(p)) for p in files)
    version = f"CAST(regexp_extract(filename, '-([0-9]+)\\.parquet$', 1) AS BIGINT) << {ROW_BITS}"
    return f"SELECT {SQL_COLUMNS}, {version} AS _v FROM read_parquet([{paths}], filename=true)"


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _stream_filter(streams: Sequence[str] | None) -> list[str]:
    """The filter on a list of streams, as literals: DuckDB prunes Parquet row groups by them."""
    return [] if streams is None else [f"stream IN ({', '.join(_sql_string(s) for s in streams)})"]


def _quality_filter(quality: int | None) -> list[str]:
    return [] if quality is None else [f"quality = {int(quality)}"]


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
