"""The dashboard's JSON routes on a real gateway: trends raw and aggregated, the live feed, redaction, bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from sitewise_edge.clock import NS_PER_MS, NS_PER_S, SYSTEM_CLOCK
from sitewise_edge.runtime import Gateway
from sitewise_edge.runtime.gateway import DRAIN_TIMEOUT
from sitewise_edge.samples import from_columns
from tests.conftest import gateway_config

ALIAS = "/plant1/line1/press1/temperature"


@pytest.fixture
async def gw(tmp_path: Path, start_gateway: Any) -> Any:
    sources = [{"name": "plc", "type": "opcua", "endpoint": "opc.tcp://operator:s3cret@127.0.0.1:1",
                "username": "operator", "password": "hunter2",
                "nodes": [{"node_id": "ns=2;s=Press1.Temperature", "alias": ALIAS}]}]
    return await start_gateway(gateway_config(tmp_path, sources=sources,
                                              api={"host": "127.0.0.1", "port": 0, "token": "tok3n"}))


async def test_a_day_of_1_hz_values_draws_as_aggregates_and_an_hour_raw(gw: Any) -> None:
    end = SYSTEM_CLOCK.time_ns() // NS_PER_S * NS_PER_S
    times = np.arange(end - 86400 * NS_PER_S, end, NS_PER_S)
    await gw.ingest(from_columns([ALIAS] * len(times), times, double=np.sin(np.arange(len(times)) / 600.0)))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        day = (await http.get("/dashboard/api/trend", params={"stream": ALIAS, "start": (end // NS_PER_MS) - 86_400_000,
                                                               "end": end // NS_PER_MS, "points": 1000})).json()
        hour = (await http.get("/dashboard/api/trend", params={"stream": ALIAS, "start": (end // NS_PER_MS) - 3_600_000,
                                                                "end": end // NS_PER_MS})).json()
    [s] = day["series"]
    assert s["mode"] == "aggregates" and s["resolutionSeconds"] == 300
    assert len(s["t"]) == 288 + bool(end % (300 * NS_PER_S))  # buckets on multiples of 5 min since the epoch
    assert sum(s["count"]) == 86400 - 1  # (start, end]: the first value is on the start
    assert all(lo <= v <= hi for lo, v, hi in zip(s["min"], s["v"], s["max"], strict=True))
    assert s["label"] == "Press1 / Temperature" and s["unit"] == "Celsius"
    [h] = hour["series"]
    assert h["mode"] == "raw" and len(h["t"]) == 3599 and h["t"][-1] == (end - NS_PER_S) // NS_PER_MS


@pytest.mark.parametrize(("params", "needle"), [
    ({"stream": ALIAS, "start": 10, "end": 5}, "end (5) must be after start (10)"),
    ({"start": 1, "end": 5}, "stream"),
    ({"stream": ALIAS, "start": "yesterday", "end": 5}, "start"),
    ({"stream": [ALIAS] * 17, "start": 1, "end": 5}, "stream"),
], ids=["backwards", "no-stream", "not-a-number", "too-many"])
async def test_bad_trend_requests_say_what_is_wrong(gw: Any, params: dict[str, Any], needle: str) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        r = await http.get("/dashboard/api/trend", params=params)
    assert r.status_code == 400 and r.headers["x-amzn-errortype"].startswith("InvalidRequestException")
    assert needle in r.json()["message"]


async def test_configuration_shows_no_secret(gw: Any) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        text = (await http.get("/dashboard/api/config")).text
        overview = (await http.get("/dashboard/api/overview")).json()
    for secret in ("s3cret", "hunter2", "tok3n"):
        assert secret not in text
    body = json.loads(text)
    assert body["config"]["api"]["token"] == "***" and body["config"]["sources"][0]["password"] == "***"
    assert body["config"]["sources"][0]["endpoint"] == "opc.tcp://operator:***@127.0.0.1:1"
    src = overview["sources"]["plc"]
    assert src["where"] == "opc.tcp://operator:***@127.0.0.1:1" and src["tags"] == 1 and src["type"] == "opcua"


async def test_the_live_feed_sends_the_latest_values_then_the_changes(gw: Any) -> None:
    now = SYSTEM_CLOCK.time_ns()
    await gw.ingest(from_columns([ALIAS], [now], double=[21.5]))
    events = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http, \
            http.stream("GET", "/dashboard/api/live") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                events.append([v for v in json.loads(line[6:]) if v["s"] == ALIAS])  # (and its transform)
                if len(events) == 1:
                    await gw.ingest(from_columns([ALIAS], [now + NS_PER_S], double=[22.5]))
                elif any(events[-1]):
                    break
    assert events[0] == [{"s": ALIAS, "v": 21.5, "q": "GOOD", "t": now // NS_PER_MS}]
    assert events[-1] == [{"s": ALIAS, "v": 22.5, "q": "GOOD", "t": (now + NS_PER_S) // NS_PER_MS}]


@pytest.mark.parametrize("path", ["/dashboard/static/../feeds.py", "/dashboard/static/nothing.js",
                                  "/dashboard/static/%2e%2e/feeds.py"])
async def test_only_the_dashboards_files_are_served(gw: Any, path: str) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        r = await http.get(path)
        ok = await http.get("/dashboard/static/vendor/uplot/uPlot.iife.min.js")
    assert r.status_code == 404 and "uPlot" in ok.text


async def test_with_auth_read_the_page_and_its_files_are_open_and_the_data_needs_the_token(
        tmp_path: Path, start_gateway: Any) -> None:
    gw = await start_gateway(gateway_config(tmp_path, api={"host": "127.0.0.1", "port": 0, "token": "tok3n",
                                                           "auth": "read"}))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        for path in ("/", "/dashboard/static/app.js", "/dashboard/static/vendor/redoc/redoc.standalone.js", "/docs",
                     "/redoc", "/openapi.json"):
            assert (await http.get(path)).status_code == 200, path
        assert (await http.get("/dashboard/api/overview")).status_code == 401
        r = await http.get("/dashboard/api/overview", headers={"Authorization": "Bearer tok3n"})
        assert r.status_code == 200 and r.json()["gateway"] == "test"


async def test_an_open_live_feed_does_not_hold_the_gateways_stop(tmp_path: Path) -> None:
    gw = Gateway(gateway_config(tmp_path))
    await gw.start()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http, \
            http.stream("GET", "/dashboard/api/live") as r:
        lines = r.aiter_lines()
        while not (await anext(lines)).startswith("data: "):
            pass
        began = SYSTEM_CLOCK.monotonic()
        await gw.stop()
        assert SYSTEM_CLOCK.monotonic() - began < DRAIN_TIMEOUT  # the feed ended itself, not at the drain timeout
        async for _ in lines:  # and the page sees its end (it reconnects)
            pass
