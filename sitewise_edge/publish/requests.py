"""Pure request building for ``BatchPutAssetPropertyValue``: rows in, boto3 entries out.

    reasons = sitewise_rejections(table, now_s=time.time())   # "" where SiteWise will accept the row
    lanes = build_requests(table, lanes=4)                    # lanes[i] = requests, each ≤10 entries
    entries = build_entries(table)                            # any number, for the dead-letter store
    lanes = build_requests(table, lanes=4, types=StreamTypes())  # nulls typed from what each stream sent
    now, wait = gather(held_and_new, force_below=3)           # full entries now, the rest waits


No I/O and no clock (``now_s`` is passed in). An entry holds one stream's values, at most 10, in
time order; a request at most 10 entries. Every stream goes to one lane, by a stable hash of its
name, so sending a lane's requests one after the other keeps each stream in time order.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sitewise_edge.clock import NS_PER_S
from sitewise_edge.publish.streams import synthetic_ids
from sitewise_edge.samples import QUALITY_NAMES, VALUE_COLUMNS, null_value_type

Entry = dict[str, Any]
"""A ``PutAssetPropertyValueEntry`` as boto3 takes it: ``entryId``, the target, ``propertyValues``."""

MAX_ENTRIES = 10
MAX_VALUES = 10
MAX_AGE_S = 7 * 86_400
MAX_FUTURE_S = 5 * 60  # the gateway documentation's window, stricter than the API's 10 minutes
AGE_MARGIN_S = 60  # values this close to the 7-day limit would expire in flight


def entry_target(stream: str) -> dict[str, str]:
    """How an entry names its data stream: by alias, or by asset and property id for unaliased properties."""
    ids = synthetic_ids(stream)
    if ids is not None:
        return {"assetId": ids[0], "propertyId": ids[1]}
    return {"propertyAlias": stream}


def entry_key(entry: Entry) -> str:
    """The asset property an entry writes to (for the per-property rate limit)."""
    alias = entry.get("propertyAlias")
    return alias if alias is not None else f"{entry.get('assetId')}/{entry.get('propertyId')}"


def entry_values(entries: list[Entry]) -> int:
    """How many values (TQVs) the entries hold."""
    return sum(len(e["propertyValues"]) for e in entries)


def sitewise_rejections(table: pa.Table, now_s: float | None = None) -> np.ndarray:
    """Why SiteWise will never accept each row ("" for rows it will), found before sending.

    With ``now_s``, timestamps outside SiteWise's window (older than 7 days less a margin, more
    than 5 minutes ahead) are refused too."""
    n = table.num_rows
    bad = np.zeros(n, dtype=bool)
    reasons = np.full(n, "", dtype=object)

    def mark(mask: pa.ChunkedArray, reason: str) -> None:
        m = np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool) & ~bad
        reasons[m] = reason
        bad[:] |= m

    seconds = pc.divide(table.column("time").cast(pa.int64()), pa.scalar(NS_PER_S, pa.int64()))
    mark(pc.less(seconds, 1), "InvalidRequestException: timestamp before 1970-01-01T00:00:01Z")
    if now_s is not None:
        mark(pc.less(seconds, int(now_s) - MAX_AGE_S + AGE_MARGIN_S),
             "TimestampOutOfRangeException: older than 7 days (SiteWise never accepts it)")
        mark(pc.greater(seconds, int(now_s) + MAX_FUTURE_S),
             "TimestampOutOfRangeException: more than 5 minutes in the future")
    double = table.column("double")
    mark(pc.is_inf(double), "InvalidRequestException: SiteWise does not accept an infinite double")
    integer = table.column("integer")
    mark(pc.or_(pc.less(integer, -(2**31)), pc.greater(integer, 2**31 - 1)),
         "InvalidRequestException: integerValue outside the 32-bit range SiteWise stores")
    mark(pc.greater(pc.binary_length(table.column("string")), 1024),
         "InvalidRequestException: stringValue longer than 1024 bytes")
    return reasons


class StreamTypes:
    """The value type each stream last sent (``nullValue.valueType`` D, I, S or B), remembered
    across requests so a stream's nulls carry its type; bounded: past ``limit`` streams it starts over."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self.types: dict[str, str] = {}

    def resolve(self, names: Sequence[str], seen: Sequence[str]) -> list[str]:
        """Per stream: its type in this table (``seen``, "U" for none), else the remembered one."""
        out = []
        for name, t in zip(names, seen, strict=True):
            if t != "U":
                if len(self.types) >= self.limit and name not in self.types:
                    self.types.clear()
                self.types[name] = t
                out.append(t)
            else:
                out.append(self.types.get(name, "U"))
        return out


def run_types(table: pa.Table, run_starts: np.ndarray) -> list[str]:
    """Per run of one stream (rows sorted by stream), the type of its values: "U" for a run of nulls only."""
    out = np.full(len(run_starts), "U", dtype=object)
    for name in reversed(VALUE_COLUMNS):  # the first column with values wins
        col = table.column(name)
        if col.null_count == table.num_rows:
            continue
        valid = np.asarray(pc.is_valid(col).to_numpy(zero_copy_only=False), dtype=bool)
        out[np.maximum.reduceat(valid, run_starts)] = null_value_type(name)
    return out.tolist()


def property_values(table: pa.Table, null_types: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Rows -> SiteWise ``AssetPropertyValue`` dicts for boto3 (NaN as a float): the one per-value loop.

    ``null_types``: per row, the ``valueType`` of a null there (default "U")."""
    t = table.column("time").cast(pa.int64()).to_numpy()
    secs = (t // NS_PER_S).tolist()
    nanos = (t % NS_PER_S).tolist()
    quality = [QUALITY_NAMES[q] for q in table.column("quality").to_pylist()]
    n = table.num_rows
    variants: list[dict[str, Any] | None] = [None] * n
    filled = np.zeros(n, dtype=bool)
    for name, key in (("double", "doubleValue"), ("integer", "integerValue"), ("string", "stringValue"),
                      ("boolean", "booleanValue")):
        col = table.column(name)
        if col.null_count == n:
            continue
        valid = np.asarray(pc.is_valid(col).to_numpy(zero_copy_only=False), dtype=bool) & ~filled
        if valid.all():
            variants = [{key: v} for v in col.to_pylist()]
            filled[:] = True
            break
        for i, v in zip(np.flatnonzero(valid).tolist(), col.filter(pa.array(valid)).to_pylist(), strict=True):
            variants[i] = {key: v}
        filled |= valid
    if not filled.all():
        for i in np.flatnonzero(~filled).tolist():
            variants[i] = {"nullValue": {"valueType": "U" if null_types is None else null_types[i]}}
    return [{"value": v, "timestamp": {"timeInSeconds": s, "offsetInNanos": ns}, "quality": q}
            for v, s, ns, q in zip(variants, secs, nanos, quality, strict=True)]


def build_requests(table: pa.Table, lanes: int = 1, types: StreamTypes | None = None) -> list[list[list[Entry]]]:
    """Rows -> lanes of requests: ≤10 entries × ≤10 values, one stream per entry, time order per stream.

    A null goes as ``nullValue`` with its stream's type: from the stream's values in the table, else
    from what ``types`` remembers the stream sent before, else "U".

    Every stream goes to one lane (by a stable hash of its name), so each stream's values go out in
    time order when the requests of a lane are sent one after the other. Empty lanes are kept (the
    list has ``lanes`` items) unless the table is empty.
    """
    if table.num_rows == 0:
        return []
    streams_col = table.column("stream").cast(pa.string())
    keys = pa.table({"s": streams_col, "t": table.column("time")})
    order = pc.sort_indices(keys, [("s", "ascending"), ("t", "ascending")])
    table = table.take(order)
    streams = np.asarray(table.column("stream").cast(pa.string()).to_numpy(zero_copy_only=False))
    n = len(streams)
    # entry boundaries: where the stream changes, and every 10 values within a stream
    change = np.flatnonzero(streams[1:] != streams[:-1]) + 1
    run_starts = np.concatenate([[0], change])
    run_ends = np.concatenate([change, [n]])
    lengths = run_ends - run_starts
    run_names = streams[run_starts].tolist()
    null_types = None
    has_nulls = sum(n - table.column(name).null_count for name in VALUE_COLUMNS) < n  # one column set per value
    if has_nulls or types is not None:  # the memory learns from every table, nulls or not
        kinds = run_types(table, run_starts)
        if types is not None:
            kinds = types.resolve(run_names, kinds)
        if has_nulls:
            null_types = np.repeat(np.asarray(kinds, dtype=object), lengths)
    values = property_values(table, null_types)
    per_run = -(-lengths // MAX_VALUES)
    starts = np.repeat(run_starts, per_run) + MAX_VALUES * (np.arange(per_run.sum()) - np.repeat(
        np.cumsum(per_run) - per_run, per_run))
    ends = np.minimum(starts + MAX_VALUES, np.repeat(run_ends, per_run))
    run_lane = [zlib.crc32(s.encode()) % lanes for s in run_names]
    targets = [entry_target(s) for s in run_names]
    lane_entries: list[list[Entry]] = [[] for _ in range(lanes)]
    run_of = np.repeat(np.arange(len(run_names)), per_run).tolist()
    for r, a, b in zip(run_of, starts.tolist(), ends.tolist(), strict=True):
        lane_entries[run_lane[r]].append({**targets[r], "propertyValues": values[a:b]})
    out = []
    for entries in lane_entries:
        requests = []
        for i in range(0, len(entries), MAX_ENTRIES):
            group = entries[i:i + MAX_ENTRIES]
            for j, e in enumerate(group):
                e["entryId"] = f"e{j}"
            requests.append(group)
        out.append(requests)
    return out


CHUNK = "_chunk"
"""The column :func:`gather` reads: which chunk of the log a row came from (ids increase with the log)."""


def gather(table: pa.Table, force_below: int = 0, flush: bool = False) -> tuple[pa.Table, pa.Table]:
    """Rows of several chunks -> (rows to send now, rows that wait for more of their stream).

    Per stream, in time order: the values that fill entries of 10 go now, the rest waits, unless it
    comes from a chunk below ``force_below`` (held long enough): then the stream's values up to the
    last such one go too, so a stream's values always leave in time order, and its later waiting values fill
    that last entry up to 10. ``flush``: everything goes.
    Columnar: one sort, no loop per value."""
    if flush or table.num_rows == 0:
        return table, table.slice(0, 0)
    order = pc.sort_indices(pa.table({"s": table.column("stream").cast(pa.string()), "t": table.column("time")}),
                            [("s", "ascending"), ("t", "ascending")])
    table = table.take(order)
    n = table.num_rows
    streams = table.column("stream").cast(pa.string()).combine_chunks()
    change = np.asarray(pc.not_equal(streams.slice(1), streams.slice(0, n - 1)).to_numpy(zero_copy_only=False),
                        dtype=bool)
    starts = np.concatenate([[0], np.flatnonzero(change) + 1])
    lengths = np.diff(np.concatenate([starts, [n]]))
    rank = np.arange(n) - np.repeat(starts, lengths)
    forced = table.column(CHUNK).to_numpy() < force_below
    # a forced entry goes full of what its stream has waiting (later chunks too): it leaves anyway
    forced_cut = np.maximum.reduceat(np.where(forced, rank + 1, 0), starts)
    filled = np.minimum(lengths, -(-forced_cut // MAX_VALUES) * MAX_VALUES)
    cut = np.maximum(lengths // MAX_VALUES * MAX_VALUES, filled)
    now = rank < np.repeat(cut, lengths)
    return table.filter(pa.array(now)), table.filter(pa.array(~now))


def build_entries(table: pa.Table) -> list[Entry]:
    """Rows -> entries (any number), for the dead-letter store."""
    return [entry for lane in build_requests(table) for request in lane for entry in request]
