"""Precomputed aggregates (storage/aggregates.py) answer exactly what raw computation answers.

Random values over three past days arrive in several appends, late data among them (values for a day
already compacted and precomputed), with compactions, merges, aggregate rebuilds and retention in
between in a random order; every answer of the store's reader (precomputed buckets + raw edges) must
equal the raw computation over the same snapshot, for every resolution SiteWise precomputes, every
quality filter and ranges that cut buckets and days. A kill -9 between writing a partition and its
aggregates leaves a store whose answers are still right.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sitewise_edge.clock import NS_PER_DAY, NS_PER_S
from sitewise_edge.config import StorageConfig
from sitewise_edge.samples import SampleBuilder
from storage.query import RESOLUTIONS_NS, Reader
from storage.store import Store
from tests.conftest import ROOT, ended

DAY0 = 19_000 * NS_PER_DAY  # 2022-01-08, midnight UTC: long past, so every day is precomputed
STREAMS = ("/a", "/b", "/c")
SETTINGS = settings(max_examples=5, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

Row = tuple[str, int, int, Any]  # stream, time_ns, quality, value


@st.composite
def _row(draw: Callable[..., Any]) -> Row:
    stream = draw(st.sampled_from(STREAMS))
    t = DAY0 + draw(st.integers(0, 3 * 24 * 12 - 1)) * 300 * NS_PER_S + draw(st.sampled_from([0, 1, 59 * NS_PER_S]))
    quality = draw(st.sampled_from([0, 0, 0, 1, 2]))
    value = draw(st.one_of(st.integers(-20, 20), st.integers(-40, 40).map(lambda i: i / 4),
                           st.sampled_from(["on", "off"])))
    return stream, t, quality, value


STEPS = st.lists(st.tuples(st.lists(_row(), min_size=1, max_size=60),
                           st.sampled_from(["compact", "refresh", "merge", "none", "retention"])),
                 min_size=2, max_size=7)


def _batch(rows: list[Row]) -> pa.RecordBatch:
    b = SampleBuilder()
    for stream, t, q, v in rows:
        b.add(stream, t, v, q)
    return b.build()


def _close(a: pa.Table, b: pa.Table) -> None:
    assert a.num_rows == b.num_rows, (a.num_rows, b.num_rows)
    for name in a.column_names:
        x, y = a.column(name).to_pylist(), b.column(name).to_pylist()
        if name in ("sum", "avg", "min", "max", "stddev"):
            assert all((p is None and q is None) or (p is not None and q is not None and math.isclose(
                p, q, rel_tol=1e-9, abs_tol=1e-9)) for p, q in zip(x, y, strict=True)), (name, x, y)
        else:
            assert x == y, name


def check_against_raw(store: Store, queries: list[tuple[int, int, int, int | None, list[str] | None]]) -> int:
    """Every query through the store's reader equals the raw computation over the same snapshot; returns the
    days the reader had precomputed."""
    assert store._duck is not None
    with store.reader() as fast:
        with Reader(store._duck.cursor(), store.snapshot()) as raw:  # the same files: nothing runs meanwhile
            for start, end, res, quality, streams in queries:
                for descending in (False, True):
                    got = fast.aggregates(streams, start, end, res, quality=quality, descending=descending,
                                          limit=100_000)
                    want = raw.aggregates(streams, start, end, res, quality=quality, descending=descending,
                                          limit=100_000)
                    _close(got, want)
            page = fast.aggregates(None, DAY0 - 1, DAY0 + 3 * NS_PER_DAY, RESOLUTIONS_NS[0], limit=7, offset=5)
            _close(page, raw.aggregates(None, DAY0 - 1, DAY0 + 3 * NS_PER_DAY, RESOLUTIONS_NS[0], limit=7, offset=5))
        return fast.precomputed_days


QUERY = st.tuples(
    st.integers(-2, 3 * 24 * 4 + 2).map(lambda k: DAY0 + k * 900 * NS_PER_S),
    st.integers(0, 3 * 24 * 4 + 4).map(lambda k: k * 900 * NS_PER_S),
    st.sampled_from([-1, 0, 1, 30 * NS_PER_S]),  # cut a bucket, or not
    st.sampled_from(RESOLUTIONS_NS),
    st.sampled_from([None, 0, 1]),
    st.sampled_from([None, ["/a"], ["/a", "/c"]]),
).map(lambda q: (q[0] + q[2], q[0] + q[1] + q[2], q[3], q[4], q[5]))


@SETTINGS
@given(steps=STEPS, queries=st.lists(QUERY, min_size=3, max_size=6))
def test_precomputed_equals_raw_with_late_data_rewrites_and_retention(steps: Any, queries: Any) -> None:
    async def run() -> int:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = StorageConfig(compact_interval="1h", retention="10000d")  # type: ignore[arg-type]
            store = Store(Path(tmp), cfg)
            await store.open()
            used = 0
            try:
                for rows, action in steps:
                    await store.append(_batch(rows))
                    if action == "compact":
                        await store.compact()
                    elif action == "refresh":
                        await store.compact()
                        await store.refresh_aggregates()
                    elif action == "merge":
                        await store.compact()
                        await store.merge_days()
                    elif action == "retention":  # the first day goes
                        await store.compact()
                        await store.refresh_aggregates()
                        await store.apply_retention(now_ns=DAY0 + NS_PER_DAY + int(10000 * 86400 * NS_PER_S))
                        assert "day=2022-01-08" not in store.state.aggregates
                        store._compaction.empty_graveyard(0.0)  # the sidecars replaced before, buried for a minute
                        left = [p.name for p in store.state.aggregates_dir.iterdir()]
                        assert not any(name.startswith("day=2022-01-08") for name in left)
                    used = max(used, check_against_raw(store, queries))
                await store.compact()
                await store.refresh_aggregates()
                used = max(used, check_against_raw(store, queries))
                assert used > 0  # the precomputed path ran
            finally:
                await store.close()
            return used

    asyncio.run(run())


CHILD = r"""
import asyncio, os, signal, sys
from pathlib import Path
from sitewise_edge.config import StorageConfig
from sitewise_edge.samples import SampleBuilder
from storage.store import Store

DAY0, S = int(sys.argv[2]), 10**9

def batch(offset, value):
    b = SampleBuilder()
    for i in range(0, 86400, 30):
        b.add("/k", DAY0 + i * S + offset, float(value + i % 7), 0)
    return b.build()

async def main():
    store = Store(Path(sys.argv[1]), StorageConfig(compact_interval="1h"))
    await store.open()
    await store.append(batch(0, 1.0))
    await store.compact()
    assert await store.refresh_aggregates() == 1
    await store.append(batch(0, 100.0))   # late data: every value of the day rewritten
    await store.append(batch(5 * S, 3.0))  # and new values in it
    await store.compact()                  # the partition is written; its aggregates are not
    print("compacted", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


def test_kill_9_between_a_partition_and_its_aggregates_leaves_right_answers(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), str(DAY0)], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "compacted\n", proc.stderr.read() if proc.stderr else ""
    assert ended(proc) == -9
    queries = [(DAY0 - 1, DAY0 + NS_PER_DAY, r, 0, ["/k"]) for r in RESOLUTIONS_NS]
    queries.append((DAY0 + 7 * NS_PER_S, DAY0 + 5 * 3600 * NS_PER_S - 1, RESOLUTIONS_NS[0], None, None))

    async def run() -> None:
        store = Store(tmp_path, StorageConfig(compact_interval="1h"))  # type: ignore[arg-type]
        await store.open()
        try:
            assert len(store.state.aggregates) == 1  # the stale sidecar of the first write is there ...
            assert check_against_raw(store, queries) == 0  # ... and not used: the day's files changed
            with store.reader() as r:
                day = r.aggregates(["/k"], DAY0 - 1, DAY0 + NS_PER_DAY, NS_PER_DAY)
            assert day.select(["count", "min", "max"]).to_pylist() == [{"count": 2 * 2880, "min": 3.0, "max": 106.0}]
            assert await store.refresh_aggregates() == 1
            assert check_against_raw(store, queries) == 1
            with store.reader() as r:
                _close(r.aggregates(["/k"], DAY0 - 1, DAY0 + NS_PER_DAY, NS_PER_DAY), day)
        finally:
            await store.close()

    asyncio.run(run())


def test_an_older_store_gets_its_aggregates_on_the_next_pass(tmp_path: Path) -> None:
    """A layout-3 store has no aggregates: it opens, answers raw, and the compactor's pass builds them."""

    async def write() -> None:
        store = Store(tmp_path, StorageConfig(compact_interval="1h"))  # type: ignore[arg-type]
        await store.open()
        await store.append(_batch([("/o", DAY0 + i * 10 * NS_PER_S, 0, float(i)) for i in range(5000)]))
        await store.compact()
        await store.close()

    asyncio.run(write())
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    (tmp_path / "manifest.json").write_text(json.dumps({**manifest, "layout": 3}))
    for p in (tmp_path / "aggregates").glob("*"):
        os.unlink(p)
    (tmp_path / "aggregates").rmdir()

    async def reopen() -> None:
        store = Store(tmp_path, StorageConfig(compact_interval="1h"))  # type: ignore[arg-type]
        await store.open()
        try:
            queries = [(DAY0, DAY0 + NS_PER_DAY, r, 0, None) for r in RESOLUTIONS_NS]
            assert check_against_raw(store, queries) == 0
            assert await store.refresh_aggregates() == 1
            assert await store.refresh_aggregates() == 0  # built once
            assert check_against_raw(store, queries) == 1
        finally:
            await store.close()
        assert json.loads((tmp_path / "manifest.json").read_text())["layout"] == 4

    asyncio.run(reopen())


def test_a_deleted_stream_is_not_answered_from_a_day_precomputed_before_its_delete(tmp_path: Path) -> None:
    """DeleteTimeSeries after a day's aggregates were built: the sidecar still holds the stream, the reads must not."""

    async def run() -> None:
        store = Store(tmp_path, StorageConfig(compact_interval="1h"))  # type: ignore[arg-type]
        await store.open()
        try:
            await store.append(_batch([(s, DAY0 + i * 60 * NS_PER_S, 0, float(i)) for s in ("/a", "/b")
                                       for i in range(600)]))
            await store.compact()
            assert await store.refresh_aggregates() == 1
            await store.delete_stream("/a")
            queries = [(DAY0 - 1, DAY0 + NS_PER_DAY, r, 0, streams) for r in RESOLUTIONS_NS
                       for streams in (None, ["/a"], ["/a", "/b"], ["/b"])]
            assert check_against_raw(store, queries) == 1  # /b alone still uses the day's sidecar
            with store.reader() as r:
                assert r.aggregates(["/a"], DAY0 - 1, DAY0 + NS_PER_DAY, NS_PER_DAY).num_rows == 0
                every = r.aggregates(None, DAY0 - 1, DAY0 + NS_PER_DAY, NS_PER_DAY)
            assert every.column("stream").to_pylist() == ["/b"] and every.column("count").to_pylist() == [600]
        finally:
            await store.close()

    asyncio.run(run())
