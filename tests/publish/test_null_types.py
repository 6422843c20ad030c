"""Nulls go as ``nullValue`` with their stream's type (D, I, S, B), "U" only for a stream never seen with a value."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from sitewise_edge.config import SitewisePublisher, StorageConfig
from sitewise_edge.publish.requests import StreamTypes, build_requests
from sitewise_edge.publish.sitewise import SitewisePublisherTask
from sitewise_edge.samples import Quality, concat, from_columns
from storage.store import Store
from tests.gateway.fault_endpoint import FaultEndpoint

NOW_NS = time.time_ns() - 600 * 10**9
BAD = int(Quality.BAD)


def null_types(lanes: list[list[list[dict[str, Any]]]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for lane in lanes:
        for request in lane:
            for entry in request:
                for v in entry["propertyValues"]:
                    if "nullValue" in v["value"]:
                        out.setdefault(entry["propertyAlias"], []).append(v["value"]["nullValue"]["valueType"])
    return out


def test_a_null_takes_the_type_of_its_streams_values_in_the_table() -> None:
    table = concat([
        from_columns(["/d", "/i", "/s", "/b"], [NOW_NS] * 4, double=[1.5, None, None, None],
                     integer=[None, 7, None, None], string=[None, None, "x", None], boolean=[None, None, None, True]),
        from_columns(["/d", "/i", "/s", "/b", "/never"], [NOW_NS + 1] * 5, quality=[BAD] * 5),
    ])
    lanes = build_requests(table, lanes=2)
    assert null_types(lanes) == {"/d": ["D"], "/i": ["I"], "/s": ["S"], "/b": ["B"], "/never": ["U"]}
    values = [v for lane in lanes for r in lane for e in r if e["propertyAlias"] == "/d" for v in e["propertyValues"]]
    assert [v["value"] for v in values] == [{"doubleValue": 1.5}, {"nullValue": {"valueType": "D"}}]
    assert values[1]["quality"] == "BAD"


def test_the_type_is_remembered_across_tables_and_the_memory_is_bounded() -> None:
    types = StreamTypes(limit=3)  # /i, /s, then /a fill it: /b starts it over
    build_requests(concat([from_columns(["/i", "/s"], [NOW_NS] * 2, integer=[1, None], string=[None, "a"])]),
                   types=types)  # no nulls here: the memory learns all the same
    nulls = concat([from_columns(["/i", "/s", "/x"], [NOW_NS + 1] * 3, quality=[BAD] * 3)])
    assert null_types(build_requests(nulls, types=types)) == {"/i": ["I"], "/s": ["S"], "/x": ["U"]}
    assert null_types(build_requests(nulls)) == {"/i": ["U"], "/s": ["U"], "/x": ["U"]}  # no memory: unknown
    build_requests(concat([from_columns(["/a", "/b"], [NOW_NS] * 2, double=[1.0, 2.0])]), types=types)
    assert types.types == {"/b": "D"}  # past its limit the memory starts over


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")


async def test_the_publisher_sends_a_later_null_with_the_type_sent_before(tmp_path: Path) -> None:
    store = Store(tmp_path / "store", StorageConfig(compact_interval="1h"))
    await store.open()
    try:
        async with FaultEndpoint() as ep:
            cfg = SitewisePublisher(name="cloud", type="sitewise", endpoint_url=ep.url, batch_interval=0.05,
                                    min_retry_interval=0.02, max_retry_interval=0.2, rate_limit_values=0,
                                    rate_limit_requests=0, rate_limit_entries_per_property=0)
            pub = SitewisePublisherTask(cfg, store, store.data_dir / "deadletter")
            run = asyncio.create_task(pub.run())
            try:
                await store.append(from_columns(["/p/temp", "/p/count"], [NOW_NS] * 2, double=[20.5, None],
                                                integer=[None, 3]))
                await ep.wait_for(lambda: len(ep.received) == 2)
                await store.append(from_columns(["/p/temp", "/p/count"], [NOW_NS + 1] * 2, quality=[BAD] * 2))
                await ep.wait_for(lambda: len(ep.received) == 4)
            finally:
                run.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await run
        nulls = {v.key: v.value for v in ep.received[2:]}
        assert nulls == {"/p/temp": {"nullValue": {"valueType": "D"}}, "/p/count": {"nullValue": {"valueType": "I"}}}
    finally:
        await store.close()
