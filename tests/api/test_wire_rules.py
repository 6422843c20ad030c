"""Wire rules of the reads (issue 13 item 8), through boto3 over HTTP: typed nulls, default page sizes,
malformed ids, SiteWise's resolutions."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import botocore.exceptions
import httpx
import pytest

from sitewise_edge.samples import NS_PER_S, from_columns
from tests.botocore_shapes import assert_valid_output
from tests.conftest import gateway_config, sitewise_client

TEMP = "/plant1/line1/press1/temperature"  # DOUBLE
STATE = "/plant1/line1/press1/state"  # INTEGER
RUNNING = "/plant1/line1/press1/running"  # BOOLEAN
STATUS = "/plant1/line1/press1/status"  # STRING
LOOSE = "/not/a/property"  # a stream of no asset
PRESS1 = "d5391ca4-4057-4be8-9775-3ab9e010adbd"
TEMPERATURE = "f78e1bd2-d3cf-4813-9d51-e5b84c5d661f"
HOUR = 3600
BASE = (int(time.time()) // HOUR - 3) * HOUR


@pytest.fixture
async def api(tmp_path: Path, start_gateway: Any) -> Any:
    gw = await start_gateway(gateway_config(tmp_path))
    secs = list(range(1, 1801))  # TEMP: one value a second for 30 minutes
    await gw.ingest(from_columns([TEMP] * len(secs), [(BASE + s) * NS_PER_S for s in secs],
                                 double=[float(s) for s in secs]))
    return gw, sitewise_client(gw.api_port)


def call(client: Any, op: str, **kwargs: Any) -> Any:
    return asyncio.to_thread(getattr(client, op), **kwargs)


async def error_of(coro: Any) -> tuple[str, str, int]:
    with pytest.raises(botocore.exceptions.ClientError) as err:
        await coro
    r = err.value.response
    return r["Error"]["Code"], r["Error"]["Message"], r["ResponseMetadata"]["HTTPStatusCode"]


def null_entry(i: int, alias: str, value_type: str) -> dict[str, Any]:
    return {"entryId": f"e{i}", "propertyAlias": alias, "propertyValues": [{
        "value": {"nullValue": {"valueType": value_type}}, "quality": "BAD",
        "timestamp": {"timeInSeconds": BASE + 2000, "offsetInNanos": 0}}]}


async def test_a_null_value_keeps_the_type_of_its_property(api: Any) -> None:
    _, client = api
    cases = [(TEMP, "D"), (STATE, "I"), (RUNNING, "B"), (STATUS, "S"), (LOOSE, "U")]
    put = await call(client, "batch_put_asset_property_value",
                     entries=[null_entry(i, alias, "U") for i, (alias, _) in enumerate(cases)])
    assert put["errorEntries"] == []
    for alias, value_type in cases:
        latest = await call(client, "get_asset_property_value", propertyAlias=alias)
        assert latest["propertyValue"]["value"] == {"nullValue": {"valueType": value_type}}, alias
        assert latest["propertyValue"]["quality"] == "BAD"
        history = await call(client, "get_asset_property_value_history", propertyAlias=alias,
                             startDate=BASE + 1999, endDate=BASE + 2001, qualities=["BAD"])
        assert [v["value"] for v in history["assetPropertyValueHistory"]] == [
            {"nullValue": {"valueType": value_type}}], alias
    batch = await call(client, "batch_get_asset_property_value",
                       entries=[{"entryId": f"e{i}", "propertyAlias": alias} for i, (alias, _) in enumerate(cases)])
    assert [e["assetPropertyValue"]["value"] for e in sorted(batch["successEntries"], key=lambda e: e["entryId"])] \
        == [{"nullValue": {"valueType": t}} for _, t in cases]
    batch_history = await call(client, "batch_get_asset_property_value_history", entries=[
        {"entryId": "s", "propertyAlias": STATE, "startDate": BASE + 1999, "endDate": BASE + 2001,
         "qualities": ["BAD"]}])
    assert batch_history["successEntries"][0]["assetPropertyValueHistory"][0]["value"] == {
        "nullValue": {"valueType": "I"}}
    locf = await call(client, "get_interpolated_asset_property_values", propertyAlias=STATUS,
                      startTimeInSeconds=BASE + 1990, endTimeInSeconds=BASE + 2010, quality="BAD",
                      intervalInSeconds=10, type="LOCF_INTERPOLATION")
    assert {"nullValue": {"valueType": "S"}} in [v["value"] for v in locf["interpolatedAssetPropertyValues"]]


async def test_pages_hold_20_values_without_max_results(api: Any) -> None:
    """The user guide's default page for history and aggregates; interpolation 10 (botocore's doc)."""
    gw, client = api
    history = await call(client, "get_asset_property_value_history", propertyAlias=TEMP, startDate=BASE,
                         endDate=BASE + 1800)
    assert len(history["assetPropertyValueHistory"]) == 20 and "nextToken" in history
    aggregates = await call(client, "get_asset_property_aggregates", propertyAlias=TEMP, startDate=BASE,
                            endDate=BASE + 1800, resolution="1m", aggregateTypes=["COUNT"])
    assert len(aggregates["aggregatedValues"]) == 20 and "nextToken" in aggregates
    rest = await call(client, "get_asset_property_aggregates", propertyAlias=TEMP, startDate=BASE,
                      endDate=BASE + 1800, resolution="1m", aggregateTypes=["COUNT"],
                      nextToken=aggregates["nextToken"])
    assert sum(v["value"]["count"] for v in aggregates["aggregatedValues"] + rest["aggregatedValues"]) == 1800
    interpolated = await call(client, "get_interpolated_asset_property_values", propertyAlias=TEMP,
                              startTimeInSeconds=BASE, endTimeInSeconds=BASE + 1800, quality="GOOD",
                              intervalInSeconds=60, type="LINEAR_INTERPOLATION")
    assert len(interpolated["interpolatedAssetPropertyValues"]) == 10
    full = await call(client, "get_asset_property_value_history", propertyAlias=TEMP, startDate=BASE,
                      endDate=BASE + 1800, maxResults=2000)
    assert len(full["assetPropertyValueHistory"]) == 1800 and "nextToken" not in full
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        raw = await http.get("/properties/history", params={"propertyAlias": TEMP})
    assert len(assert_valid_output("GetAssetPropertyValueHistory", raw.json())["assetPropertyValueHistory"]) == 20


@pytest.mark.parametrize("op", ["get_asset_property_value", "get_asset_property_value_history",
                                "get_asset_property_aggregates", "get_interpolated_asset_property_values"])
async def test_a_malformed_id_is_an_invalid_request_not_a_missing_resource(api: Any, op: str) -> None:
    _, client = api
    extra: dict[str, Any] = {
        "get_asset_property_value_history": {},
        "get_asset_property_value": {},
        "get_asset_property_aggregates": {"startDate": BASE, "endDate": BASE + 60, "resolution": "1m",
                                          "aggregateTypes": ["COUNT"]},
        "get_interpolated_asset_property_values": {"startTimeInSeconds": BASE, "endTimeInSeconds": BASE + 60,
                                                   "quality": "GOOD", "intervalInSeconds": 60,
                                                   "type": "LOCF_INTERPOLATION"},
    }[op]
    upper = PRESS1.upper()  # 36 characters (boto3's length check passes), not SiteWise's lower-case form
    code, message, status = await error_of(call(client, op, assetId=upper, propertyId=TEMPERATURE, **extra))
    assert (code, status) == ("InvalidRequestException", 400)
    assert f"assetId: '{upper}' is not a valid ID" in message
    code, _, status = await error_of(call(client, op, assetId=PRESS1, propertyId="0" * 8 + TEMPERATURE[8:] + "",
                                          **extra))
    assert (code, status) == ("ResourceNotFoundException", 404)  # well-formed, unknown
    ok = await call(client, op, assetId=PRESS1, propertyId=TEMPERATURE, **extra)
    assert ok["ResponseMetadata"]["HTTPStatusCode"] == 200


async def test_a_malformed_id_in_a_batch_entry_is_an_invalid_request(api: Any) -> None:
    _, client = api
    resp = await call(client, "batch_get_asset_property_value", entries=[
        {"entryId": "bad", "assetId": PRESS1.upper(), "propertyId": TEMPERATURE},
        {"entryId": "ok", "assetId": PRESS1, "propertyId": TEMPERATURE}])
    assert [(e["entryId"], e["errorCode"]) for e in resp["errorEntries"]] == [("bad", "InvalidRequestException")]
    assert [e["entryId"] for e in resp["successEntries"]] == ["ok"]


async def test_a_short_malformed_id_over_plain_http(api: Any) -> None:
    gw, _ = api
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        r = await http.get("/properties/latest", params={"assetId": "press1", "propertyId": TEMPERATURE})
    assert r.status_code == 400 and r.headers["x-amzn-ErrorType"].startswith("InvalidRequestException")
    assert "assetId: 'press1' is not a valid ID" in r.json()["message"]


async def test_only_sitewise_resolutions_without_the_opt_in(api: Any) -> None:
    gw, client = api
    for resolution in ("1m", "15m", "1h", "1d"):
        await call(client, "get_asset_property_aggregates", propertyAlias=TEMP, startDate=BASE, endDate=BASE + 60,
                   resolution=resolution, aggregateTypes=["COUNT"])
    code, message, status = await error_of(call(
        client, "get_asset_property_aggregates", propertyAlias=TEMP, startDate=BASE, endDate=BASE + 60,
        resolution="30s", aggregateTypes=["COUNT"]))
    assert (code, status) == ("InvalidRequestException", 400)
    assert message == ("resolution: expected 1m, 15m, 1h or 1d (others, such as 30s or 5m, with the setting "
                       "api.any_resolution: true), got '30s'")
    batch = await call(client, "batch_get_asset_property_aggregates", entries=[{
        "entryId": "a", "propertyAlias": TEMP, "aggregateTypes": ["COUNT"], "resolution": "30s",
        "startDate": BASE, "endDate": BASE + 60}])
    assert [e["errorCode"] for e in batch["errorEntries"]] == ["InvalidRequestException"]
    gw.api_config = gw.api_config.model_copy(update={"any_resolution": True})
    opted = await call(client, "get_asset_property_aggregates", propertyAlias=TEMP, startDate=BASE,
                       endDate=BASE + 60, resolution="30s", aggregateTypes=["COUNT"])
    assert [v["value"]["count"] for v in opted["aggregatedValues"]] == [29.0, 30.0, 1.0]
