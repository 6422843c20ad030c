"""Full requests from a many-stream backlog: values gather across chunks (issue 16), cursor rules kept."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from sitewise_edge.config import SitewisePublisher, StorageConfig
from sitewise_edge.publish.pipeline import MAX_CHUNK_ROWS
from sitewise_edge.publish.quota import values_quota, verdict
from sitewise_edge.publish.requests import CHUNK, gather
from sitewise_edge.publish.sitewise import SitewisePublisherTask
from sitewise_edge.samples import from_columns
from storage.store import Store
from tests.conftest import eventually, gateway_config
from tests.gateway.fault_endpoint import FaultEndpoint

NOW_NS = time.time_ns() - 600 * 10**9


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")


def scan(streams: int, start_ns: int, prefix: str = "/g/s") -> pa.RecordBatch:
    """One value of every stream: one poll of a plant's tags (a store record)."""
    return from_columns([f"{prefix}{i}" for i in range(streams)], [start_ns + i for i in range(streams)],
                        double=[float(start_ns % 1000 + i) for i in range(streams)])


def publisher(store: Store, url: str, **kw: Any) -> SitewisePublisherTask[Any]:
    cfg = SitewisePublisher(name="cloud", type="sitewise", endpoint_url=url, batch_interval=0.05,
                            min_retry_interval=0.02, max_retry_interval=0.2, rate_limit_values=0,
                            rate_limit_requests=0, rate_limit_entries_per_property=0, live_after=3600.0, **kw)
    return SitewisePublisherTask(cfg, store, store.data_dir / "deadletter")


def all_in(ep: FaultEndpoint, total: int) -> Any:
    """``ep.distinct() == total``, counted only once enough has arrived (it walks every value)."""
    return lambda: len(ep.received) >= total and ep.distinct() == total


def assert_time_order(ep: FaultEndpoint, requests: range) -> None:
    seen: dict[str, list[tuple[int, int]]] = {}
    for v in ep.received:
        if v.request in requests:
            seen.setdefault(v.key, []).append((v.seconds, v.nanos))
    for key, stamps in seen.items():
        assert stamps == sorted(stamps), f"{key} out of order"


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    st = Store(tmp_path / "store", StorageConfig(compact_interval="1h"))
    await st.open()
    yield st
    await st.close()


async def backlog(store: Store, streams: int, scans: int) -> None:
    """``scans`` records of one value per stream; scan k is record k + 1 (the log starts at 1)."""
    for k in range(scans):
        await store.append(scan(streams, NOW_NS + k * 10**9))


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# --- the pure step ---------------------------------------------------------------------------------


def with_chunk(batch: pa.RecordBatch, chunk: int) -> pa.Table:
    t = pa.Table.from_batches([batch])
    return t.append_column(CHUNK, pa.array(np.full(t.num_rows, chunk, dtype=np.int64)))


def times_of(table: pa.Table, stream: str) -> list[int]:
    names = table.column("stream").to_pylist()
    return [t for s, t in zip(names, table.column("time").cast(pa.int64()).to_pylist(), strict=True) if s == stream]


def test_gather_sends_full_entries_and_keeps_the_rest_in_time_order() -> None:
    table = pa.concat_tables([with_chunk(scan(3, NOW_NS + k * 10**9), k // 5) for k in range(13)])
    now, wait = gather(table)  # 13 values per stream: 10 go, 3 wait
    assert now.num_rows == 30 and wait.num_rows == 9
    for name in ("/g/s0", "/g/s1", "/g/s2"):
        sent, kept = times_of(now, name), times_of(wait, name)
        assert sent == sorted(sent) and len(sent) == 10 and max(sent) < min(kept)
    now, wait = gather(table, force_below=3)  # every chunk held long enough: all of it goes
    assert now.num_rows == 39 and wait.num_rows == 0
    late = with_chunk(from_columns(["/g/s0"], [NOW_NS - 1], double=[0.0]), 2)  # late data of a newer chunk
    now, wait = gather(pa.concat_tables([table.slice(0, 9), late]), force_below=1)
    # chunk 0 (3 scans) must go, and s0's older value of chunk 2 with it: order per stream holds
    assert now.num_rows == 10 and wait.num_rows == 0
    now, wait = gather(table.slice(0, 6), flush=True)
    assert now.num_rows == 6 and wait.num_rows == 0


# --- the pipeline against an endpoint -------------------------------------------------------------


async def test_a_many_stream_backlog_goes_in_full_requests(store: Store) -> None:
    """6,000 streams × 10 scans: a chunk (≤ 50,000 rows) holds ~8 values per stream, so requests built
    chunk by chunk carried ~70 values; gathered across chunks they carry 100."""
    streams, scans = 6000, 10
    assert streams * scans > MAX_CHUNK_ROWS  # the backlog spans several chunks
    await backlog(store, streams, scans)
    async with FaultEndpoint() as ep:
        pub = publisher(store, ep.url, max_in_flight=4)
        run = asyncio.create_task(pub.run())
        try:
            await ep.wait_for(all_in(ep, streams * scans), within=120)
            await eventually(lambda: pub.stats.values_sent == streams * scans)  # the answers are in too
        finally:
            await stop(run)
        per_request = sum(r.values for r in ep.requests) / len(ep.requests)
        assert per_request >= 95, per_request
        assert ep.duplicates() == 0
        assert_time_order(ep, range(len(ep.requests)))
    assert store.cursor(pub.cursor_name).seq == store.next_seq  # everything acknowledged and saved


async def test_a_partial_entry_waits_at_most_the_batch_interval(store: Store) -> None:
    async with FaultEndpoint() as ep:
        pub = publisher(store, ep.url, max_in_flight=1)  # one lane: one request
        run = asyncio.create_task(pub.run())
        try:
            await store.append(scan(5, time.time_ns()))
            await ep.wait_for(lambda: ep.distinct() == 5, within=5)  # 1 value per stream: goes after the interval
            assert [r.values for r in ep.requests] == [5]
        finally:
            await stop(run)


# --- can the destination keep up? ----------------------------------------------------------------


@pytest.mark.parametrize(("ingest", "quota", "sending", "age", "warns", "catch_up"), [
    (2400.0, 1000.0, 1000.0, 300.0, "above the quota of 1,000 values/s", None),
    (800.0, 1000.0, 1000.0, 300.0, None, 300.0 * 800 / 200),  # drains: 1,200 s at 200 values/s net
    (800.0, None, 700.0, 60.0, "the backlog grows", None),  # no quota, but the endpoint is slower than ingest
    (800.0, 1000.0, 800.0, 2.0, None, None),  # caught up: nothing to say
    (None, 1000.0, 0.0, 600.0, None, None),  # ingest not known
], ids=["over-quota", "draining", "endpoint-slower", "caught-up", "unknown"])
def test_the_verdict_on_ingest_quota_and_sending(ingest: float | None, quota: float | None, sending: float,
                                                 age: float, warns: str | None, catch_up: float | None) -> None:
    v = verdict(ingest, quota, sending, age)
    assert (v.warning is None) == (warns is None) and (warns is None or warns in str(v.warning))
    assert v.catch_up == (None if catch_up is None else pytest.approx(catch_up))


def test_the_quota_is_the_tightest_rate_limit() -> None:
    def cfg(**kw: float) -> SitewisePublisher:
        return SitewisePublisher(name="c", type="sitewise", **kw)

    assert values_quota(cfg()) == (1000.0, "rate_limit_values 1,000/s")  # SiteWise's documented default
    assert values_quota(cfg(rate_limit_values=0, rate_limit_requests=5))[0] == 500.0
    assert values_quota(cfg(rate_limit_values=0, rate_limit_requests=0)) == (None, "no rate limit")


async def test_ingest_above_the_quota_is_said_in_health_and_the_stats(tmp_path: Path, start_gateway: Any) -> None:
    async with FaultEndpoint() as ep:
        gw = await start_gateway(gateway_config(
            tmp_path, gateway={"name": "edge", "data_dir": str(tmp_path / "edge")}, models=[],
            publishers=[{"name": "cloud", "type": "sitewise", "endpoint_url": ep.url, "batch_interval": "50ms",
                         "rate_limit_values": 50, "rate_limit_requests": 0, "rate_limit_entries_per_property": 0,
                         "status_log_interval": "1s"}]))

        def reason() -> str | None:
            found = [r for r in gw.health.verdict()["reasons"] if r["component"] == "publisher cloud quota"]
            return found[0]["reason"] if found else None

        k = 0
        while reason() is None:  # 400 values/s into the store against a quota of 50 values/s
            assert k < 300, gw.status()["publishers"]["cloud"]
            await gw.ingest(scan(40, time.time_ns(), prefix="/q/s"))
            k += 1
            await asyncio.sleep(0.1)  # the plant's pace, not a wait for a result
        # the warning's figures move every status interval: the health reason follows the publisher's text
        status = await eventually(lambda: (s := gw.status()["publishers"]["cloud"])["quotaWarning"] == reason() and s)
        assert "above the quota of 50 values/s" in str(status["quotaWarning"])
        assert status["ingestValuesPerSecond"] > 50
