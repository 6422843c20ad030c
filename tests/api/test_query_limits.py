"""ExecuteQuery cannot take the gateway down (issue 9, item 1): its own threads, DuckDB limits, a watchdog on
time and memory, a byte cap per page. Real boto3 against a real gateway."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import botocore.exceptions
import httpx
import pytest

from sitewise_edge.samples import NS_PER_S, from_columns
from tests.conftest import eventually, gateway_config, sitewise_client

TEMP = "/plant1/line1/press1/temperature"
NOW = int(time.time())
# a 4-way cross join of 600 rows: hours of work, stopped by the timeout
SLOW = ("SELECT count(*) FROM raw_time_series a, raw_time_series b, raw_time_series c, raw_time_series d "
        "WHERE a.double_value + b.double_value + c.double_value + d.double_value = -1")


async def start(tmp_path: Path, start_gateway: Any, **query: Any) -> Any:
    gw = await start_gateway(gateway_config(tmp_path, api={"host": "127.0.0.1", "port": 0, "query": query}))
    secs = range(1, 601)
    await gw.ingest(from_columns([TEMP] * 600, [(NOW - 700 + s) * NS_PER_S for s in secs],
                                 double=[float(s) for s in secs]))
    return gw, sitewise_client(gw.api_port)


async def query_error(client: Any, sql: str) -> tuple[str, str]:
    with pytest.raises(botocore.exceptions.ClientError) as err:
        await asyncio.to_thread(client.execute_query, queryStatement=sql)
    return err.value.response["Error"]["Code"], err.value.response["Error"]["Message"]


async def test_the_issue_query_is_refused_and_the_gateway_lives(tmp_path: Path, start_gateway: Any) -> None:
    _, client = await start(tmp_path, start_gateway)
    code, message = await query_error(client, "SELECT len(generate_series(1, 100000000))")
    assert code == "ValidationException"
    assert "generate_series() is not available in ExecuteQuery" in message
    for sql in ("SELECT repeat('x', 1000000000)", "SELECT lpad('x', 1000000000, ' ')",
                "SELECT len(range(100000000))", "SELECT printf('%1000000000d', 1)"):
        assert (await query_error(client, sql))[0] == "ValidationException"
    rows = await asyncio.to_thread(client.execute_query, queryStatement=(
        f"SELECT count(*) FROM raw_time_series WHERE property_alias = '{TEMP}'"))
    assert rows["rows"] == [{"data": [{"scalarValue": "600"}]}]


async def test_a_query_that_grows_memory_is_stopped(tmp_path: Path, start_gateway: Any) -> None:
    _, client = await start(tmp_path, start_gateway, memory_limit="64MiB", timeout="60s")
    # one string of 216 million numbers (a GB) through no refused function (WITH RECURSIVE, which doubled a
    # string 40 times here before, is not part of SiteWise's query language)
    code, message = await query_error(client, (
        "SELECT length(string_agg(CAST(a.double_value AS VARCHAR), ',')) FROM raw_time_series a "
        "JOIN raw_time_series b ON true JOIN raw_time_series c ON true"))
    assert code == "ValidationException"
    assert "more memory than api.query.memory_limit (67108864 bytes)" in message
    assert (await asyncio.to_thread(client.get_asset_property_value, propertyAlias=TEMP))["propertyValue"]


async def test_each_query_gets_the_configured_duckdb_limits(tmp_path: Path, start_gateway: Any) -> None:
    _, client = await start(tmp_path, start_gateway, memory_limit="100MiB", threads=1)
    rows = await asyncio.to_thread(client.execute_query, queryStatement=(
        "SELECT current_setting('memory_limit'), current_setting('threads')"))
    assert [d["scalarValue"] for d in rows["rows"][0]["data"]] == ["100.0 MiB", "1"]


async def test_ingest_goes_on_while_every_query_thread_is_busy(tmp_path: Path, start_gateway: Any) -> None:
    """8 slow queries (the issue's figure: they stalled BatchPut for 28 s on the shared worker threads)."""
    gw, client = await start(tmp_path, start_gateway, concurrency=2, queue=8, timeout="6s")
    # the queries from an async client: the test's own threads would take the executor the gateway shares
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}", timeout=60)
    queries = [asyncio.create_task(http.post("/queries/execution", json={"queryStatement": SLOW}))
               for _ in range(8)]
    try:
        await eventually(lambda: gw._queries == 8)
        for i in range(20):  # more than the default executor has threads, each needing one to write the WAL
            resp = await asyncio.to_thread(client.batch_put_asset_property_value, entries=[
                {"entryId": "e", "propertyAlias": TEMP, "propertyValues": [
                    {"value": {"doubleValue": 1000.0 + i}, "timestamp": {"timeInSeconds": NOW, "offsetInNanos": i},
                     "quality": "GOOD"}]}])
            assert resp["errorEntries"] == []
        latest = await asyncio.to_thread(client.get_asset_property_value, propertyAlias=TEMP)
        assert latest["propertyValue"]["value"] == {"doubleValue": 1019.0}
        assert gw._queries == 8  # every query still running or waiting: ingest did not wait for them
    finally:
        gw.api_config = gw.api_config.model_copy(update={"query": gw.api_config.query.model_copy(
            update={"timeout": 0.1})})  # the queries waiting for a thread end at once
        codes = [r.headers["x-amzn-errortype"] for r in await asyncio.gather(*queries)]
        await http.aclose()
    assert codes == ["QueryTimeoutException"] * 8


async def test_a_query_past_the_queue_is_throttled(tmp_path: Path, start_gateway: Any) -> None:
    gw, client = await start(tmp_path, start_gateway, concurrency=1, queue=0, timeout="3s")
    slow = asyncio.create_task(query_error(sitewise_client(gw.api_port), SLOW))
    await eventually(lambda: gw._queries == 1)
    code, message = await query_error(client, "SELECT 1")
    assert code == "ThrottlingException"
    assert "api.query.concurrency + api.query.queue" in message
    assert (await slow)[0] == "QueryTimeoutException"
    await asyncio.to_thread(client.execute_query, queryStatement="SELECT 1")  # a thread is free again


async def test_pages_are_cut_at_the_byte_cap(tmp_path: Path, start_gateway: Any) -> None:
    _, client = await start(tmp_path, start_gateway, max_page_bytes="16KiB")
    sql = ("SELECT property_alias, event_timestamp, double_value FROM raw_time_series "
           f"WHERE property_alias = '{TEMP}' ORDER BY event_timestamp")
    pages = await asyncio.to_thread(lambda: list(client.get_paginator("execute_query").paginate(
        queryStatement=sql)))
    assert len(pages) > 3
    values = [float(row["data"][2]["scalarValue"]) for page in pages for row in page["rows"]]
    assert values == [float(s) for s in range(1, 601)]  # every row once, in order, across the pages
    code, message = await query_error(client, "SELECT string_agg(property_alias, ',') FROM raw_time_series")
    assert code == "ValidationException"
    assert message == "a row of the result is larger than api.query.max_page_bytes (16384 bytes)"
