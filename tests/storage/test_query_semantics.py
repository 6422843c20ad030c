"""Query semantics against a brute-force reference, over random data (property-based).

Random values of two streams arrive in several appends, out of order and with repeated
(stream, time, quality) keys, and some of them are compacted to Parquet in between; the
reference applies SiteWise's rule (a later write of the same key replaces the earlier one)
to a plain dict and answers history, aggregates and interpolation point by point in Python.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sitewise_edge.config import StorageConfig
from sitewise_edge.samples import SampleBuilder, column_type
from storage.query import Reader
from storage.store import Store

T0 = 1_700_000_000 * 10**9 + 123_456_789  # not aligned to any bucket
TICK = 10**8  # times are T0 + x * TICK: 0.1 s steps over one minute, so keys repeat
STREAMS = ("/num", "/txt")

SETTINGS = settings(max_examples=20, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

Key = tuple[str, int, int]  # stream, time_ns, quality


@dataclass(frozen=True)
class Value:
    column: str | None  # double, integer, string, boolean or None (a null value)
    value: Any

    @property
    def numeric(self) -> float | None:
        return float(self.value) if self.column in ("double", "integer") else None


def _value(stream: str) -> st.SearchStrategy[Value]:
    if stream == "/num":
        return st.one_of(st.builds(Value, st.just("double"), st.integers(-50, 50).map(lambda i: i / 4)),
                         st.builds(Value, st.just("integer"), st.integers(-20, 20)))
    return st.one_of(st.builds(Value, st.just("string"), st.sampled_from(["on", "off", "idle"])),
                     st.builds(Value, st.just("boolean"), st.booleans()))


@st.composite
def _row(draw: Callable[..., Any]) -> tuple[Key, Value]:
    stream = draw(st.sampled_from(STREAMS))
    quality = draw(st.sampled_from([0, 0, 0, 1, 2]))
    value = draw(_value(stream))
    if quality and draw(st.integers(0, 4)) == 0:
        value = Value(None, None)
    return (stream, T0 + draw(st.integers(0, 600)) * TICK, quality), value


# appends (each a list of rows, in any time order) and how many of them are compacted first
HISTORY = st.tuples(st.lists(st.lists(_row(), min_size=10, max_size=40), min_size=2, max_size=5),
                    st.integers(0, 5))


def _apply(appends: list[list[tuple[Key, Value]]]) -> dict[Key, Value]:
    current: dict[Key, Value] = {}
    for rows in appends:
        for key, value in rows:
            current[key] = value
    return current


def _with_store(appends: list[list[tuple[Key, Value]]], compact_after: int, check: Callable[[Reader], None]) -> None:
    """Write the appends (compacting after the first ``compact_after`` of them), then run ``check``."""

    async def run() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(Path(tmp), StorageConfig(compact_interval="1h"))  # type: ignore[arg-type]
            await store.open()
            try:
                for i, rows in enumerate(appends):
                    if i == compact_after:
                        await store.compact()
                    builder = SampleBuilder()
                    for (stream, t, q), v in rows:
                        builder.add(stream, t, v.value, q, as_type=column_type(v.column) if v.column else None)
                    await store.append(builder.build())
                with store.reader() as reader:
                    check(reader)
            finally:
                await store.close()

    asyncio.run(run())


def _window(draw: Callable[..., Any]) -> tuple[int, int]:
    a = draw(st.integers(-20, 100))
    b = a + draw(st.sampled_from([640, 400, 200, 50, 5, 0]))  # mostly wide: pages and buckets need rows
    return T0 + a * TICK, T0 + b * TICK


def _rows_of(table: pa.Table) -> list[tuple[int, int, Any]]:
    times = table.column("time").cast(pa.int64()).to_pylist()
    quality = table.column("quality").to_pylist()
    cols = [table.column(c).to_pylist() for c in ("double", "integer", "string", "boolean")]
    values = [next((c[i] for c in cols if c[i] is not None), None) for i in range(table.num_rows)]
    return list(zip(times, quality, values, strict=True))


# --- history ---------------------------------------------------------------------------------------


@SETTINGS
@given(data=HISTORY, query=st.data())
def test_history_matches_reference_and_pages_by_keyset(data: Any, query: st.DataObject) -> None:
    appends, compact_after = data
    stream = query.draw(st.sampled_from(STREAMS))
    start, end = query.draw(st.composite(_window)())
    quality = query.draw(st.sampled_from([None, 0, 1, 2]))
    descending = query.draw(st.booleans())
    page = query.draw(st.integers(1, 7))
    current = _apply(appends)
    expected = sorted(((t, q, v.value) for (s, t, q), v in current.items()
                       if s == stream and start < t <= end and (quality is None or q == quality)),
                      key=lambda r: ((-r[0] if descending else r[0]), r[1]))

    def check(reader: Reader) -> None:
        whole = _rows_of(reader.history(stream, start, end, quality=quality, descending=descending))
        assert whole == expected
        paged: list[tuple[int, int, Any]] = []
        after = None
        for _ in range(len(expected) + 2):  # bounded: a keyset that repeats a row must fail, not hang
            rows = _rows_of(reader.history(stream, start, end, quality=quality, descending=descending,
                                           limit=page + 1, after=after))
            paged += rows[:page]
            if len(rows) <= page:
                break
            after = (rows[page - 1][0], rows[page - 1][1])
        assert paged == expected

    _with_store(appends, compact_after, check)


# --- aggregates ------------------------------------------------------------------------------------


def _reference_aggregates(current: dict[Key, Value], streams: list[str] | None, start: int, end: int, res: int,
                          quality: int | None) -> dict[tuple[str, int, int], dict[str, Any]]:
    buckets: dict[tuple[str, int, int], list[Value]] = {}
    for (s, t, q), v in current.items():
        if (streams is None or s in streams) and start < t <= end and (quality is None or q == quality):
            buckets.setdefault((s, t - t % res, q), []).append(v)
    out = {}
    for key, values in buckets.items():
        nums = [v.numeric for v in values if v.numeric is not None]
        out[key] = {
            "count": len(values),
            "sum": sum(nums) if nums else None,
            "avg": sum(nums) / len(nums) if nums else None,
            "min": min(nums) if nums else None,
            "max": max(nums) if nums else None,
            "stddev": statistics.stdev(nums) if len(nums) > 1 else None,
        }
    return out


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@SETTINGS
@given(data=HISTORY, query=st.data())
def test_aggregates_match_reference(data: Any, query: st.DataObject) -> None:
    appends, compact_after = data
    streams = query.draw(st.sampled_from([None, ["/num"], ["/txt"], ["/num", "/txt"]]))
    start, end = query.draw(st.composite(_window)())
    res = query.draw(st.sampled_from([TICK, 10**9, 7 * 10**9, 60 * 10**9]))
    quality = query.draw(st.sampled_from([None, 0, 1]))
    descending = query.draw(st.booleans())
    expected = _reference_aggregates(_apply(appends), streams, start, end, res, quality)

    def check(reader: Reader) -> None:
        table = reader.aggregates(streams, start, end, res, quality=quality, descending=descending, limit=100_000)
        rows = table.to_pylist()
        keys = [(r["stream"], r["time_ns"], r["quality"]) for r in rows]
        assert keys == sorted(keys, key=lambda k: (k[0], -k[1] if descending else k[1], k[2]))
        assert set(keys) == set(expected)
        for r in rows:
            want = expected[(r["stream"], r["time_ns"], r["quality"])]
            assert r["count"] == want["count"]
            for name in ("sum", "avg", "min", "max", "stddev"):
                assert _close(r[name], want[name]), (name, r, want)
        # paging by offset gives the same rows (floats up to DuckDB's parallel summation order)
        pages = [reader.aggregates(streams, start, end, res, quality=quality, descending=descending, limit=3,
                                   offset=o).to_pylist() for o in range(0, len(rows) + 3, 3)]
        paged = [r for p in pages for r in p]
        assert len(paged) == len(rows)
        for a, b in zip(paged, rows, strict=True):
            assert all(_close(a[c], b[c]) if isinstance(b[c], float) else a[c] == b[c] for c in b), (a, b)

    _with_store(appends, compact_after, check)


# --- interpolation ---------------------------------------------------------------------------------


def _reference_interpolation(current: dict[Key, Value], stream: str, start: int, end: int, step: int, kind: str,
                             quality: int, window: int | None) -> list[tuple[int, Any]]:
    pts = sorted((t, v) for (s, t, q), v in current.items() if s == stream and q == quality)
    out: list[tuple[int, Any]] = []
    k = 1
    while start + k * step <= end:
        t = start + k * step
        if kind == "LOCF":
            before = [p for p in pts if p[0] <= t]
            if before:
                out.append((t, before[-1][1].value))
        else:
            lo, hi = (t - window, t + window) if window is not None else (start - step, end + step)
            nums = [(pt, v.numeric) for pt, v in pts if v.numeric is not None and lo <= pt <= hi]
            p0 = [p for p in nums if p[0] <= t]
            p1 = [p for p in nums if p[0] >= t]
            if p0 and p0[-1][0] == t:
                out.append((t, p0[-1][1]))
            elif p1 and p1[0][0] == t:
                out.append((t, p1[0][1]))
            elif p0 and p1:
                (t0, v0), (t1, v1) = p0[-1], p1[0]
                out.append((t, v0 + (v1 - v0) * ((t - t0) / (t1 - t0))))
        k += 1
    return out


@SETTINGS
@given(data=HISTORY, query=st.data())
def test_interpolation_matches_reference(data: Any, query: st.DataObject) -> None:
    appends, compact_after = data
    kind = query.draw(st.sampled_from(["LINEAR", "LOCF"]))
    stream = "/num" if kind == "LINEAR" else query.draw(st.sampled_from(STREAMS))
    start, end = query.draw(st.composite(_window)())
    step = query.draw(st.sampled_from([TICK, 3 * TICK, 10**9, 7 * 10**9]))
    quality = query.draw(st.sampled_from([0, 0, 1]))
    window = query.draw(st.sampled_from([None, TICK, 2 * 10**9])) if kind == "LINEAR" else None
    limit = query.draw(st.integers(1, 12))
    expected = _reference_interpolation(_apply(appends), stream, start, end, step, kind, quality, window)

    def check(reader: Reader) -> None:
        got: list[tuple[int, Any]] = []
        k = 1
        for _ in range(len(expected) + 2):  # page as the API does: from the k after the last one returned
            table = reader.interpolated(stream, start, end, step, kind=kind, quality=quality, window_ns=window,
                                        first_k=k, limit=limit)
            rows = table.to_pylist()
            got += [(r["time_ns"], next((r[c] for c in ("double", "integer", "string", "boolean")
                                         if r[c] is not None), None)) for r in rows]
            if len(rows) < limit:
                break
            k = rows[-1]["k"] + 1
        assert [t for t, _ in got] == [t for t, _ in expected]
        for (_, a), (_, b) in zip(got, expected, strict=True):
            if isinstance(b, float):
                assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
            else:
                assert a == b and type(a) is type(b)

    _with_store(appends, compact_after, check)


# --- points and edges (the metric windows' reads) ------------------------------------------------------


def _stream_rows_of(table: pa.Table) -> list[tuple[str, int, int, Any]]:
    streams = table.column("stream").cast(pa.string()).to_pylist()
    return [(s, *row) for s, row in zip(streams, _rows_of(table), strict=True)]


@SETTINGS
@given(data=HISTORY, query=st.data())
def test_points_of_several_streams_match_reference(data: Any, query: st.DataObject) -> None:
    appends, compact_after = data
    streams = query.draw(st.sampled_from([None, [], ["/num"], ["/txt", "/none"], list(STREAMS)]))
    start, end = query.draw(st.composite(_window)())
    quality = query.draw(st.sampled_from([None, 0, 1]))
    expected = sorted((s, t, q, v.value) for (s, t, q), v in _apply(appends).items()
                      if (streams is None or s in streams) and start < t <= end and (quality is None or q == quality))

    def check(reader: Reader) -> None:
        assert _stream_rows_of(reader.points(streams, start, end, quality=quality)) == expected

    _with_store(appends, compact_after, check)


@SETTINGS
@given(data=HISTORY, query=st.data())
def test_first_and_latest_value_per_stream_match_reference(data: Any, query: st.DataObject) -> None:
    appends, compact_after = data
    at = query.draw(st.one_of(st.none(), st.integers(-20, 640).map(lambda x: T0 + x * TICK)))
    first = query.draw(st.booleans())
    quality = query.draw(st.sampled_from([0, 1, 2]))
    current = _apply(appends)
    expected = []
    for stream in sorted((*STREAMS, "/none")):
        times = sorted(t for (s, t, q) in current if s == stream and q == quality and (at is None or t <= at))
        if times:
            t = times[0] if first else times[-1]
            expected.append((stream, t, quality, current[(stream, t, quality)].value))

    def check(reader: Reader) -> None:
        table = reader.edge([*STREAMS, "/none"], at, first=first, quality=quality)
        assert _stream_rows_of(table) == expected

    _with_store(appends, compact_after, check)
