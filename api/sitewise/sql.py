"""ExecuteQuery: the user's SQL over SiteWise's five views, in a sandbox with limits.

The statement is parsed as SiteWise's query language and translated to DuckDB (implicit joins on
``asset_id``/``property_id``, SiteWise's date and string functions: :mod:`api.sitewise.sql_dialect`); the
time-series views hold only the rows the statement's filters can reach (its ``event_timestamp`` range,
its stream literals and the metadata conditions joined to them), fetched from the store for this query.

The translated SQL runs in a fresh in-memory DuckDB connection without file access
(``enable_external_access=false``, configuration locked, no Python replacement scans) that holds
nothing but the five SiteWise views over Arrow tables taken from the store and the registry.
Before that, DuckDB's own parser checks the text: one SELECT statement, no table functions
(read_csv, glob, ...), no table but the five views (and the query's own CTEs), and none of the
functions that build a value of any size from a number (``generate_series``, ``repeat``, ``lpad``...).
Every error of the statement is a ``ValidationException``.

Limits (``api.query``): queries run on threads of their own (``Backend.run_query``: ``concurrency`` at
once, ``queue`` waiting, then ThrottlingException), never on the worker threads that store and forward;
each DuckDB gets ``memory_limit`` and ``threads``. DuckDB's ``memory_limit`` bounds its operators (joins,
sorts, aggregates) but not the lists and strings an expression builds (``SELECT len(generate_series(1,
100000000))`` took 7 GB with a 256 MB limit), hence the refused functions, and a watchdog that
interrupts a query when the process grows by more than ``memory_limit`` while it runs, or when it runs
past ``timeout`` (QueryTimeoutException). A page holds at most ``max_page_bytes`` of results (estimated
JSON), the rest comes with ``nextToken``.
"""

from __future__ import annotations

import json
import math
import os
import threading
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from fastapi import APIRouter, Request

from api.backend import Backend, BackendDep, Reader
from api.sitewise.paging import decode_bound, encode_state, page_size, request_digest, token_int
from api.sitewise.query import parse_resolution
from api.sitewise.requests import json_body
from api.sitewise.sql_dialect import SERIES_VIEWS, Scan, parse, scan_of, translate
from asset_models.registry import Registry
from sitewise_edge.config import QueryLimits
from sitewise_edge.errors import ApiError

router = APIRouter(tags=["SiteWise data plane"])

QUERY_VIEWS = ("asset", "asset_property", "raw_time_series", "latest_value_time_series", "precomputed_aggregates")
MAX_QUERY_RESULTS = 20_000
MAX_STATEMENT_CHARS = 10_000
PRECOMPUTED_RESOLUTIONS = ("1m", "15m", "1h", "1d")
_SANDBOX_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "enable_external_access": False, "python_enable_replacements": False}
_QUALITY_SQL = "CASE quality WHEN 0 THEN 'GOOD' WHEN 1 THEN 'BAD' ELSE 'UNCERTAIN' END"
_STREAM_COLUMNS = ("m.asset_id, m.property_id, "
                   "CASE WHEN m.stream IS NULL THEN r.stream ELSE m.property_alias END AS property_alias")
_VIEW_SQL = {
    "raw_time_series": (
        f"SELECT {_STREAM_COLUMNS}, r.event_timestamp, {_QUALITY_SQL} AS quality, r.boolean AS boolean_value, "
        "CAST(r.integer AS INTEGER) AS int_value, r.double AS double_value, r.string AS string_value "
        "FROM {src} r LEFT JOIN __sw_streams m ON r.stream = m.stream"
    ),
    "precomputed_aggregates": (
        f"SELECT {_STREAM_COLUMNS}, r.event_timestamp, {_QUALITY_SQL} AS quality, r.resolution, "
        "r.sum AS sum_value, r.count AS count_value, r.avg AS average_value, r.max AS maximum_value, "
        "r.min AS minimum_value, r.stddev AS stdev_value FROM __sw_aggregates r "
        "LEFT JOIN __sw_streams m ON r.stream = m.stream"
    ),
}


UNBOUNDED_FUNCTIONS = frozenset({
    "generate_series", "range", "repeat", "lpad", "rpad", "list_resize", "array_resize", "bar", "printf",
    "format",
})
"""Functions whose result grows with an argument (a count, a width) instead of the data: outside DuckDB's
memory accounting, one call can take the process down."""
_DATUM_BYTES = 24  # a datum's JSON besides its value: {"scalarValue": ""},
_WATCH_INTERVAL_S = 0.05
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def validation(message: str) -> ApiError:
    return ApiError("ValidationException", message)


def checked_views(con: duckdb.DuckDBPyConnection, statement: str) -> set[str]:
    """The views a statement reads; ValidationException unless it is one SELECT over the views alone."""
    try:
        statements = con.extract_statements(statement)
    except duckdb.Error as exc:
        raise validation(str(exc)) from None
    if len(statements) != 1:
        raise validation(f"expected exactly one SQL statement, got {len(statements)}")
    if statements[0].type != duckdb.StatementType.SELECT:
        raise validation(f"only SELECT statements can be run, got {statements[0].type.name}")
    tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [statement]).fetchall()[0][0])
    if tree.get("error"):
        raise validation(str(tree.get("error_message") or "the statement cannot be parsed"))
    tables: set[str] = set()
    ctes: set[str] = set()
    stack: list[Any] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        kind = node.get("type")
        if kind == "FUNCTION" and str(node.get("function_name", "")).lower() in UNBOUNDED_FUNCTIONS:
            raise validation(f"the function {node['function_name']}() is not available in ExecuteQuery: its "
                             "result grows with an argument, not with the data")
        if kind == "TABLE_FUNCTION":
            name = (node.get("function") or {}).get("function_name", "?")
            raise validation(f"table functions such as {name}() cannot be used; query the views "
                             + ", ".join(QUERY_VIEWS))
        if kind == "BASE_TABLE":
            if node.get("schema_name") or node.get("catalog_name"):
                raise validation(f"unknown table {node.get('schema_name')}.{node.get('table_name')}; "
                                 "the tables are " + ", ".join(QUERY_VIEWS))
            tables.add(str(node.get("table_name", "")).lower())
        for entry in (node.get("cte_map") or {}).get("map", []) if isinstance(node.get("cte_map"), dict) else []:
            ctes.add(str(entry.get("key", "")).lower())
        stack.extend(node.values())
    unknown = sorted(tables - ctes - set(QUERY_VIEWS))
    if unknown:
        raise validation(f"unknown table {unknown[0]}; the tables are " + ", ".join(QUERY_VIEWS))
    return tables & set(QUERY_VIEWS)


def _stream_table(registry: Registry) -> pa.Table:
    rows = [(ref.stream, a.id, p.id, p.alias) for a in registry.assets() for p in a.properties
            if (ref := registry.property(a.id, p.id)) is not None]
    return pa.table({name: pa.array([r[i] for r in rows], pa.string())
                     for i, name in enumerate(("stream", "asset_id", "property_id", "property_alias"))})


def _asset_table(registry: Registry) -> pa.Table:
    parents = {a.child_id: (a.parent_id, a.hierarchy_id) for a in registry.catalog.associations}
    models = {m.id: m for m in registry.models()}
    rows = []
    for a in registry.assets():
        parent, hierarchy = parents.get(a.id, (None, None))
        model = models.get(a.model_id)
        rows.append((a.id, a.name, a.description, a.model_id, parent, a.external_id,
                     model.external_id if model else None, hierarchy))
    names = ("asset_id", "asset_name", "asset_description", "asset_model_id", "parent_asset_id",
             "asset_external_id", "asset_model_external_id", "hierarchy_id")
    return pa.table({name: pa.array([r[i] for r in rows], pa.string()) for i, name in enumerate(names)})


def _attribute(data_type: str, text: str | None) -> tuple[int | None, float | None, bool | None, str | None]:
    if text is None:
        return None, None, None, None
    try:
        if data_type == "INTEGER":
            return int(text), None, None, None
        if data_type == "DOUBLE":
            return None, float(text), None, None
    except ValueError:
        return None, None, None, None
    if data_type == "BOOLEAN":
        return None, None, text.lower() == "true", None
    return None, None, None, text


def _asset_property_table(registry: Registry) -> pa.Table:
    rows = []
    for a in registry.assets():
        model_props = {p.id: p for p in registry.model(a.model_id).properties}
        for p in a.properties:
            default = model_props[p.id].default_value if p.id in model_props else None
            values = _attribute(p.data_type, default) if p.kind.value == "attribute" else (None,) * 4
            rows.append((a.id, p.id, p.name, p.alias, p.external_id, None, p.kind.value, p.data_type,
                         *values))
    strings = ("asset_id", "property_id", "property_name", "property_alias", "property_external_id",
               "asset_composite_model_id", "property_type", "property_data_type")
    cols = {name: pa.array([r[i] for r in rows], pa.string()) for i, name in enumerate(strings)}
    cols["int_attribute_value"] = pa.array([r[8] for r in rows], pa.int32())
    cols["double_attribute_value"] = pa.array([r[9] for r in rows], pa.float64())
    cols["boolean_attribute_value"] = pa.array([r[10] for r in rows], pa.bool_())
    cols["string_attribute_value"] = pa.array([r[11] for r in rows], pa.string())
    return pa.table(cols)


def _with_event_timestamp(table: pa.Table) -> pa.Table:
    """``event_timestamp`` as DuckDB's TIMESTAMP (microseconds, UTC): unlike TIMESTAMP_NS it compares with
    ``now()`` and ``current_timestamp``. The value APIs keep nanoseconds."""
    ns = table.column("time_ns").cast(pa.int64())
    us = pc.divide(ns, 1000).cast(pa.timestamp("us"))
    return table.append_column("event_timestamp", us)


_FOREVER = 2**62
_DAY_NS = 86_400 * 10**9  # the longest precomputed resolution: a bucket at t holds values up to t + 1 d


def _aggregates_table(reader: Reader, streams: list[str] | None, start_ns: int, end_ns: int) -> pa.Table:
    parts = []
    for name in PRECOMPUTED_RESOLUTIONS:
        t = reader.aggregates(streams, start_ns, end_ns, parse_resolution(name), quality=None, limit=_FOREVER)
        parts.append(t.append_column("resolution", pa.array([name] * t.num_rows, pa.string())))
    return _with_event_timestamp(pa.concat_tables(parts))


def _raw_table(reader: Reader, streams: list[str] | None, start_ns: int, end_ns: int) -> pa.Table:
    """The store's rows in (start, end] of ``streams`` (None: all), shaped as ``Reader.current_rows``."""
    if streams is None and start_ns <= -_FOREVER and end_ns >= _FOREVER:
        return reader.current_rows()
    t = reader.points(streams, start_ns, end_ns, quality=None)
    return pa.table({"stream": t.column("stream").cast(pa.string()), "time_ns": t.column("time").cast(pa.int64()),
                     **{c: t.column(c) for c in ("double", "integer", "string", "boolean", "quality")}})


def scan_streams(con: duckdb.DuckDBPyConnection, scan: Scan) -> list[str] | None:
    """The streams a scan can reach (None: every stream), from ``__sw_streams`` and the metadata views."""
    found: set[str] | None = None

    def keep(streams: set[str]) -> None:
        nonlocal found
        found = streams if found is None else found & streams

    def column(sql: str, params: list[Any]) -> set[str]:
        return {r[0] for r in con.execute(sql, params).fetchall()}

    if scan.streams is not None:  # an unmapped stream's alias is its name; a mapped one's, the property's
        aliases = sorted(scan.streams)
        keep(set(aliases) | column("SELECT stream FROM __sw_streams WHERE list_contains(?, property_alias)",
                                   [aliases]))
    if scan.ids:
        assets = sorted({a for a, _ in scan.ids if a is not None})
        props = sorted({p for _, p in scan.ids if p is not None})
        keep(column("SELECT stream FROM __sw_streams WHERE (len(?) = 0 OR list_contains(?, asset_id)) "
                    "AND (len(?) = 0 OR list_contains(?, property_id))", [assets, assets, props, props]))
    if scan.metadata_sql is not None:
        keep(column(f"SELECT s.stream FROM __sw_streams s JOIN ({scan.metadata_sql}) m ON s.asset_id = m.asset_id "
                    "AND (m.property_id IS NULL OR s.property_id = m.property_id)", []))
    return None if found is None else sorted(found)


def _bounds(scan: Scan, extra_end: int = 0) -> tuple[int, int]:
    start = -_FOREVER if scan.start_ns is None else scan.start_ns
    end = _FOREVER if scan.end_ns is None else scan.end_ns + extra_end
    return start, end


def build_sandbox(con: duckdb.DuckDBPyConnection, views: set[str], reader: Reader, backend: Backend,
                  scans: dict[str, Scan] | None = None) -> None:
    """Register the Arrow tables behind the ``views`` the statement reads, then lock the connection.

    ``scans``: per time-series view, the rows the statement can reach (default: all of them).
    """
    registry = backend.registry
    scans = scans or {}
    con.register("__sw_streams", _stream_table(registry))
    if "asset" in views or any(s.metadata_sql for s in scans.values()):
        con.register("__sw_asset", _asset_table(registry))
        con.execute("CREATE VIEW asset AS SELECT * FROM __sw_asset")
    if "asset_property" in views or any(s.metadata_sql for s in scans.values()):
        con.register("__sw_asset_property", _asset_property_table(registry))
        con.execute("CREATE VIEW asset_property AS SELECT * FROM __sw_asset_property")
    if "raw_time_series" in views:
        scan = scans.get("raw_time_series", Scan())
        con.register("__sw_raw", _with_event_timestamp(_raw_table(reader, scan_streams(con, scan), *_bounds(scan))))
        con.execute("CREATE VIEW raw_time_series AS " + _VIEW_SQL["raw_time_series"].format(src="__sw_raw"))
    if "latest_value_time_series" in views:
        latest = backend.latest_all()
        table = pa.table({
            "stream": latest.column("stream").cast(pa.string()),
            "time_ns": latest.column("time").cast(pa.int64()),
            **{c: latest.column(c) for c in ("double", "integer", "string", "boolean", "quality")},
        })
        con.register("__sw_latest", _with_event_timestamp(table))
        con.execute("CREATE VIEW latest_value_time_series AS "
                    + _VIEW_SQL["raw_time_series"].format(src="__sw_latest"))
    if "precomputed_aggregates" in views:
        scan = scans.get("precomputed_aggregates", Scan())
        con.register("__sw_aggregates", _aggregates_table(reader, scan_streams(con, scan),
                                                          *_bounds(scan, extra_end=_DAY_NS)))
        con.execute("CREATE VIEW precomputed_aggregates AS " + _VIEW_SQL["precomputed_aggregates"])
    con.execute("SET lock_configuration = true")


def _rss() -> int:
    """The process's resident memory in bytes (Linux)."""
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * _PAGE_SIZE


class _Watchdog(threading.Thread):
    """Interrupts a query that runs past ``timeout`` or grows the process by more than ``memory``."""

    def __init__(self, con: duckdb.DuckDBPyConnection, limits: QueryLimits) -> None:
        super().__init__(name="query-watchdog", daemon=True)
        self.con, self.limits = con, limits
        self.done = threading.Event()
        self.reason: str | None = None

    def run(self) -> None:
        base, waited = _rss(), 0.0
        while not self.done.wait(_WATCH_INTERVAL_S):
            waited += _WATCH_INTERVAL_S
            if waited >= self.limits.timeout:
                self.reason = "timeout"
            elif _rss() - base > self.limits.memory_limit:
                self.reason = "memory"
            if self.reason:
                self.con.interrupt()
                return

    def error(self) -> ApiError:
        if self.reason == "memory":
            return validation(f"the query needs more memory than api.query.memory_limit "
                              f"({self.limits.memory_limit} bytes) and was stopped")
        return ApiError("QueryTimeoutException",
                        f"the query ran longer than {self.limits.timeout:g} s (api.query.timeout) and was stopped")


def _row_bytes(batch: pa.RecordBatch) -> np.ndarray:
    """The estimated JSON bytes of each row of a batch in an ExecuteQuery response."""
    sizes = np.full(batch.num_rows, _DATUM_BYTES * batch.num_columns + 16, dtype=np.int64)
    for column in batch.columns:
        t = column.type
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t):
            sizes += pc.fill_null(pc.binary_length(column), 0).to_numpy(zero_copy_only=False)
        elif pa.types.is_nested(t):
            sizes += 2 * column.nbytes // max(1, batch.num_rows)  # lists, structs: as JSON, about twice Arrow
        else:
            sizes += 24  # a number or a date as text
    return sizes


def _constant_ns(con: duckdb.DuckDBPyConnection, expression: str) -> int | None:
    """The nanoseconds of a constant timestamp expression (a filter's bound), None if it is not one."""
    try:
        rows = con.execute(f"SELECT epoch_ns(CAST(({expression}) AS TIMESTAMP))").fetchall()
    except duckdb.Error:
        return None
    return None if len(rows) != 1 or rows[0][0] is None else int(rows[0][0])


def run_statement(reader: Reader, backend: Backend, statement: str, offset: int,
                  limit: int) -> tuple[pa.Table, bool]:
    """Rows ``offset`` .. ``offset + limit`` of the statement's result that fit ``max_page_bytes``, and
    whether more follow."""
    limits = backend.api_config.query
    con = duckdb.connect(":memory:", config={**_SANDBOX_CONFIG, "memory_limit": f"{limits.memory_limit}B",
                                              "threads": limits.threads})
    try:
        try:
            tree = parse(statement)
        except ApiError:
            checked_views(con, statement)  # DuckDB's diagnosis names a table function or a statement type
            raise
        sql = translate(tree, backend.clock.time_ns() // 1_000_000)
        views = checked_views(con, sql)
        watchdog = _Watchdog(con, limits)
        watchdog.start()
        try:
            build_sandbox(con, views, reader, backend,
                          {v: scan_of(tree, v, lambda e: _constant_ns(con, e)) for v in SERIES_VIEWS})
            batches: list[pa.RecordBatch] = []
            skip, want, room = offset, limit, limits.max_page_bytes
            stream = con.sql(sql).to_arrow_reader(4096)
            schema = stream.schema
            for batch in stream:
                if skip >= batch.num_rows:
                    skip -= batch.num_rows
                    continue
                batch = batch.slice(skip)
                skip = 0
                if want == 0 or room <= 0:
                    return pa.Table.from_batches(batches, schema=schema), True
                part = batch.slice(0, want)
                used = np.cumsum(_row_bytes(part))
                fits = int(np.searchsorted(used, room, side="right"))
                if fits == 0 and not batches:
                    raise validation(f"a row of the result is larger than api.query.max_page_bytes "
                                     f"({limits.max_page_bytes} bytes)")
                batches.append(part.slice(0, fits))
                want -= fits
                room -= int(used[fits - 1]) if fits else room
                if fits < batch.num_rows:
                    return pa.Table.from_batches(batches, schema=schema), True
            return pa.Table.from_batches(batches, schema=schema), False
        except duckdb.InterruptException:
            raise (watchdog.error() if watchdog.reason else validation("the query was interrupted")) from None
        except duckdb.OutOfMemoryException:
            raise validation(f"the query needs more memory than api.query.memory_limit "
                             f"({limits.memory_limit} bytes)") from None
        except duckdb.Error as exc:
            raise validation(str(exc)) from None
        finally:
            watchdog.done.set()
            watchdog.join()
    finally:
        con.close()


def _scalar_type(t: pa.DataType) -> str:
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_integer(t):
        return "INT"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "DOUBLE"
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "TIMESTAMP"
    return "STRING"


def _double_text(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return repr(v)


def _as_strings(column: pa.ChunkedArray) -> list[str | None]:
    """Scalars as strings: doubles as Python writes them (``1.0``, not Arrow's ``1``), the rest by Arrow."""
    if pa.types.is_floating(column.type):
        return [None if v is None else _double_text(v) for v in column.to_pylist()]
    try:
        return column.cast(pa.string()).to_pylist()
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return [None if v is None else json.dumps(v, default=str) for v in column.to_pylist()]


def query_response(table: pa.Table) -> dict[str, Any]:
    """An ``ExecuteQuery`` body: every scalar as a string, nulls as ``nullValue``."""
    columns = [{"name": f.name, "type": {"scalarType": _scalar_type(f.type)}} for f in table.schema]
    values = [_as_strings(table.column(i)) for i in range(table.num_columns)]
    rows = [{"data": [{"nullValue": True} if col[i] is None else {"scalarValue": col[i]} for col in values]}
            for i in range(table.num_rows)]
    return {"columns": columns, "rows": rows}


@router.post("/queries/execution", summary="ExecuteQuery")
async def execute_query(request: Request, backend: BackendDep) -> dict[str, Any]:
    body = await json_body(request)
    statement = body.get("queryStatement")
    if not isinstance(statement, str) or not statement.strip():
        raise validation("queryStatement: required, a SQL SELECT statement")
    if len(statement) > MAX_STATEMENT_CHARS:
        raise validation(f"queryStatement: at most {MAX_STATEMENT_CHARS} characters, got {len(statement)}")
    limit = page_size(body.get("maxResults"), MAX_QUERY_RESULTS, MAX_QUERY_RESULTS, code="ValidationException")
    digest = request_digest(statement)
    offset = 0
    token = body.get("nextToken")
    if token is not None:
        if not isinstance(token, str):
            raise validation("nextToken: not a token this API issued")
        offset = token_int(decode_bound(token, digest, "queryStatement", code="ValidationException"), "o")
    table, more = await backend.run_query(lambda r: run_statement(r, backend, statement, offset, limit))
    response = query_response(table)
    if more:
        response["nextToken"] = encode_state({"o": offset + table.num_rows, "h": digest})
    return response
