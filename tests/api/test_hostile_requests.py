"""Bad requests answer SiteWise-style 4xx errors naming what is wrong, never a 500 (issue 9, item 5).

Against a real gateway over HTTP: raw httpx where the request is one no SDK would send (a 300-deep
body, a chunked upload), boto3 where it can send it (a year-2200 timestamp, a deep expression).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import httpx
import pytest

from tests.conftest import gateway_config, sitewise_client

TEMP = "/plant1/line1/press1/temperature"
JSON = {"content-type": "application/json"}


@pytest.fixture
async def gw(tmp_path: Path, start_gateway: Any) -> Any:
    return await start_gateway(gateway_config(tmp_path, api={"host": "127.0.0.1", "port": 0,
                                                              "max_body_size": "1MiB", "future_limit": "10m"}))


def tqv(t: int, v: float = 1.0) -> dict[str, Any]:
    return {"value": {"doubleValue": v}, "timestamp": {"timeInSeconds": t, "offsetInNanos": 0}, "quality": "GOOD"}


def nested(depth: int) -> bytes:
    return b'{"entries": ' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize("path", ["/properties", "/properties/batch/history", "/queries/execution",
                                  "/asset-models", "/deadletters/replay"])
@pytest.mark.parametrize("depth", [40, 100_000], ids=["past-the-limit", "past-the-parser"])
async def test_a_deeply_nested_body_is_an_invalid_request(gw: Any, path: str, depth: int) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        r = await http.post(path, content=nested(depth), headers=JSON)
    assert r.status_code == 400, r.text
    assert r.headers["x-amzn-errortype"] == "InvalidRequestException"
    if path != "/deadletters/replay":  # a pydantic-typed route: FastAPI's own parser refuses it
        assert "nested deeper than 32 levels" in r.json()["message"]


@pytest.mark.parametrize("date", ["1e30", "-1", "Infinity", "NaN", "1e300"])
@pytest.mark.parametrize("path", ["/properties/batch/history", "/properties/batch/aggregates"])
async def test_an_out_of_range_date_in_a_batch_read_is_an_entry_error(gw: Any, date: str, path: str) -> None:
    body = (f'{{"entries": [{{"entryId": "e", "propertyAlias": "{TEMP}", "startDate": {date}, '
            f'"endDate": 1700000000, "aggregateTypes": ["AVERAGE"], "resolution": "1m"}}]}}')
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        r = await http.post(path, content=body.encode(), headers=JSON)
    assert r.status_code == 200, r.text
    [error] = r.json()["errorEntries"]
    assert error["errorCode"] == "InvalidRequestException"
    assert error["errorMessage"].startswith("startDate: epoch seconds must be 0..")


@pytest.mark.parametrize("expression", ["(" * 300 + "x" + ")" * 300, "-" * 400 + "x", "+".join(["x"] * 400)],
                         ids=["parentheses", "unary", "chain"])
async def test_a_deeply_nested_expression_is_an_invalid_request(gw: Any, expression: str) -> None:
    client = sitewise_client(gw.api_port)
    properties = [{"name": "X", "dataType": "DOUBLE", "type": {"measurement": {}}},
                  {"name": "Y", "dataType": "DOUBLE", "type": {"transform": {
                      "expression": expression, "variables": [{"name": "x", "value": {"propertyId": "X"}}]}}}]
    with pytest.raises(botocore.exceptions.ClientError) as err:
        await asyncio.to_thread(client.create_asset_model, assetModelName="Deep", assetModelProperties=properties)
    assert err.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "property 'Y': expression: nested deeper than" in err.value.response["Error"]["Message"]


async def test_a_body_over_the_limit_is_refused_with_413_before_it_is_read(gw: Any) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        r = await http.post("/properties", content=b" " * (2 * 2**20), headers=JSON)
        assert r.status_code == 413
        assert r.headers["x-amzn-errortype"] == "InvalidRequestException"
        assert r.json()["message"] == "the request body is larger than api.max_body_size (1048576 bytes)"
        # just under the limit is read (and is then only not JSON)
        r = await http.post("/properties", content=b" " * (2**20 - 10) + b"[", headers=JSON)
        assert r.status_code == 400


async def test_a_chunked_body_is_counted_as_it_arrives(gw: Any) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(16):  # 16 MiB offered, no Content-Length: the route sees at most 1 MiB of it
            yield b" " * 2**20

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        r = await http.post("/properties", content=_async(chunks()), headers=JSON)
        assert "content-length" not in r.request.headers
        assert r.status_code == 413
        assert r.headers["x-amzn-errortype"] == "InvalidRequestException"
        assert "api.max_body_size" in r.json()["message"]
        assert (await http.get("/health")).status_code == 200  # the gateway still serves


async def _async(it: Iterator[bytes]) -> Any:
    for chunk in it:
        yield chunk
        await asyncio.sleep(0)


async def test_a_value_beyond_the_future_limit_is_refused_per_value(gw: Any) -> None:
    client = sitewise_client(gw.api_port)
    now = int(time.time())
    year_2200 = 7258118400
    resp = await asyncio.to_thread(client.batch_put_asset_property_value, enablePartialEntryProcessing=True, entries=[
        {"entryId": "a", "propertyAlias": TEMP, "propertyValues": [tqv(now - 1, 20.0), tqv(year_2200, 99.0),
                                                                  tqv(now + 700, 98.0)]},
        {"entryId": "b", "propertyAlias": TEMP, "propertyValues": [tqv(now + 500, 21.0)]},  # within 10 minutes
    ])
    [entry] = resp["errorEntries"]
    assert entry["entryId"] == "a"
    [error] = entry["errors"]
    assert error["errorCode"] == "TimestampOutOfRangeException"
    assert "more than 600 s ahead of the gateway's clock (api.future_limit)" in error["errorMessage"]
    assert [t["timeInSeconds"] for t in error["timestamps"]] == [year_2200, now + 700]
    latest = await asyncio.to_thread(client.get_asset_property_value, propertyAlias=TEMP)
    assert latest["propertyValue"]["value"] == {"doubleValue": 21.0}  # not the year-2200 value


async def test_without_partial_processing_a_future_value_fails_its_whole_entry(gw: Any) -> None:
    client = sitewise_client(gw.api_port)
    now = int(time.time())
    resp = await asyncio.to_thread(client.batch_put_asset_property_value, entries=[
        {"entryId": "a", "propertyAlias": TEMP, "propertyValues": [tqv(now - 1), tqv(now + 3600)]}])
    codes = {e["errorCode"] for e in resp["errorEntries"][0]["errors"]}
    assert codes == {"TimestampOutOfRangeException", "InvalidRequestException"}
    assert "propertyValue" not in await asyncio.to_thread(client.get_asset_property_value, propertyAlias=TEMP)


def test_the_limits_are_checked_in_the_configuration(tmp_path: Path) -> None:
    from sitewise_edge.config import parse_config
    from sitewise_edge.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        parse_config({"api": {"max_body_size": "lots", "max_json_depth": 2, "future_limit": -1}}, env={})
    text = str(err.value)
    assert "api.max_body_size: expected a size" in text
    assert "api.max_json_depth" in text and "api.future_limit: expected a positive duration" in text
