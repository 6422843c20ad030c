"""The SiteWise-compatible API, driven by a real boto3 client over HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import botocore.exceptions
import httpx
import pytest

from api.sitewise.data import get_latest
from tests.botocore_shapes import assert_valid_output
from tests.conftest import gateway_config, sitewise_client

PRESS1_TEMP = "/plant1/line1/press1/temperature"
NOW = int(time.time())


def tqv(value: dict[str, Any], t: int, nanos: int = 0, quality: str = "GOOD") -> dict[str, Any]:
    return {"value": value, "timestamp": {"timeInSeconds": t, "offsetInNanos": nanos}, "quality": quality}


@pytest.fixture
async def api(tmp_path: Path, start_gateway: Any) -> Any:
    gw = await start_gateway(gateway_config(tmp_path))
    return gw, sitewise_client(gw.api_port)


def call(client: Any, op: str, **kwargs: Any) -> Any:
    """Run a boto3 call off the event loop (the server runs on it)."""
    return asyncio.to_thread(getattr(client, op), **kwargs)


def asset_named(gw: Any, name: str) -> Any:
    return next(a for a in gw.registry.assets() if a.name == name)


async def test_batch_put_then_latest_and_history(api: Any) -> None:
    gw, client = api
    values = [tqv({"doubleValue": 20.0 + i}, NOW - 10 + i, nanos=i * 1000) for i in range(10)]
    resp = await call(client, "batch_put_asset_property_value",
                      entries=[{"entryId": "t", "propertyAlias": PRESS1_TEMP, "propertyValues": values}])
    assert resp["errorEntries"] == []
    latest = await call(client, "get_asset_property_value", propertyAlias=PRESS1_TEMP)
    assert latest["propertyValue"]["value"] == {"doubleValue": 29.0}
    assert latest["propertyValue"]["timestamp"] == {"timeInSeconds": NOW - 1, "offsetInNanos": 9000}
    assert latest["propertyValue"]["quality"] == "GOOD"
    # by asset and property id, as a boto3 script using ids does
    asset = asset_named(gw, "Press1")
    prop = gw.registry.property_by_alias(PRESS1_TEMP)
    by_id = await call(client, "get_asset_property_value", assetId=asset.id, propertyId=prop.property_id)
    assert by_id["propertyValue"] == latest["propertyValue"]
    hist = await call(client, "get_asset_property_value_history", propertyAlias=PRESS1_TEMP,
                      startDate=NOW - 11, endDate=NOW, timeOrdering="DESCENDING")
    got = [v["value"]["doubleValue"] for v in hist["assetPropertyValueHistory"]]
    assert got == [29.0 - i for i in range(10)]


async def test_history_window_is_start_exclusive_end_inclusive(api: Any) -> None:
    _, client = api
    values = [tqv({"doubleValue": float(i)}, NOW - 100 + i) for i in range(10)]
    await call(client, "batch_put_asset_property_value",
               entries=[{"entryId": "a", "propertyAlias": PRESS1_TEMP, "propertyValues": values}])
    hist = await call(client, "get_asset_property_value_history", propertyAlias=PRESS1_TEMP,
                      startDate=NOW - 100, endDate=NOW - 95)
    assert [v["value"]["doubleValue"] for v in hist["assetPropertyValueHistory"]] == [1.0, 2.0, 3.0, 4.0, 5.0]


async def test_history_pages_with_the_boto3_paginator(api: Any) -> None:
    _, client = api
    entries = [{"entryId": f"e{k}", "propertyAlias": "/free/stream",
                "propertyValues": [tqv({"integerValue": k * 10 + i}, NOW - 200 + k * 10 + i) for i in range(10)]}
               for k in range(10)]
    resp = await call(client, "batch_put_asset_property_value", entries=entries)
    assert resp["errorEntries"] == []

    def pages() -> list[int]:
        paginator = client.get_paginator("get_asset_property_value_history")
        out = []
        for page in paginator.paginate(propertyAlias="/free/stream", startDate=NOW - 1000, endDate=NOW,
                                       PaginationConfig={"PageSize": 7}):
            assert len(page["assetPropertyValueHistory"]) <= 7
            out += [v["value"]["integerValue"] for v in page["assetPropertyValueHistory"]]
        return out

    assert await asyncio.to_thread(pages) == list(range(100))


async def test_quality_filter(api: Any) -> None:
    _, client = api
    values = [tqv({"doubleValue": 1.0}, NOW - 5), tqv({"doubleValue": 2.0}, NOW - 4, quality="BAD"),
              tqv({"nullValue": {"valueType": "D"}}, NOW - 3, quality="UNCERTAIN")]
    await call(client, "batch_put_asset_property_value",
               entries=[{"entryId": "q", "propertyAlias": PRESS1_TEMP, "propertyValues": values}])
    bad = await call(client, "get_asset_property_value_history", propertyAlias=PRESS1_TEMP,
                     startDate=NOW - 10, endDate=NOW, qualities=["BAD"])
    assert [v["value"] for v in bad["assetPropertyValueHistory"]] == [{"doubleValue": 2.0}]
    unc = await call(client, "get_asset_property_value_history", propertyAlias=PRESS1_TEMP,
                     startDate=NOW - 10, endDate=NOW, qualities=["UNCERTAIN"])
    assert unc["assetPropertyValueHistory"][0]["quality"] == "UNCERTAIN"


async def test_wrong_type_rejected_per_value_with_partial_processing(api: Any) -> None:
    _, client = api
    values = [tqv({"doubleValue": 1.0}, NOW - 3), tqv({"integerValue": 2}, NOW - 2), tqv({"doubleValue": 3.0}, NOW - 1)]
    resp = await call(client, "batch_put_asset_property_value", enablePartialEntryProcessing=True,
                      entries=[{"entryId": "p", "propertyAlias": PRESS1_TEMP, "propertyValues": values}])
    (err,) = resp["errorEntries"]
    assert err["entryId"] == "p"
    assert err["errors"][0]["errorCode"] == "InvalidRequestException"
    assert "DOUBLE" in err["errors"][0]["errorMessage"]
    assert err["errors"][0]["timestamps"] == [{"timeInSeconds": NOW - 2, "offsetInNanos": 0}]
    hist = await call(client, "get_asset_property_value_history", propertyAlias=PRESS1_TEMP,
                      startDate=NOW - 10, endDate=NOW)
    assert [v["value"]["doubleValue"] for v in hist["assetPropertyValueHistory"]] == [1.0, 3.0]


async def test_without_partial_processing_a_bad_value_fails_its_entry(api: Any) -> None:
    _, client = api
    values = [tqv({"doubleValue": 1.0}, NOW - 3), tqv({"integerValue": 2}, NOW - 2)]
    resp = await call(client, "batch_put_asset_property_value",
                      entries=[{"entryId": "p", "propertyAlias": PRESS1_TEMP, "propertyValues": values},
                               {"entryId": "ok", "propertyAlias": "/free/x",
                                "propertyValues": [tqv({"doubleValue": 5.0}, NOW - 1)]}])
    assert [e["entryId"] for e in resp["errorEntries"]] == ["p"]
    stamps = [t for e in resp["errorEntries"][0]["errors"] for t in e["timestamps"]]
    assert len(stamps) == 2
    with pytest.raises(botocore.exceptions.ClientError) as err:
        # nothing of the failed entry was stored, and the property has no other data
        await call(client, "get_asset_property_value_history", propertyAlias=PRESS1_TEMP,
                   startDate=NOW - 10, endDate=NOW, qualities=["GOOD", "BAD"])
    assert err.value.response["Error"]["Code"] == "InvalidRequestException"
    latest = await call(client, "get_asset_property_value", propertyAlias=PRESS1_TEMP)
    assert "propertyValue" not in latest
    assert (await call(client, "get_asset_property_value", propertyAlias="/free/x"))["propertyValue"]


async def test_unknown_asset_is_a_per_entry_error(api: Any) -> None:
    _, client = api
    resp = await call(client, "batch_put_asset_property_value", entries=[
        {"entryId": "x", "assetId": "11111111-2222-4333-8444-555555555555",
         "propertyId": "11111111-2222-4333-8444-555555555556", "propertyValues": [tqv({"doubleValue": 1.0}, NOW)]}])
    assert resp["errorEntries"][0]["errors"][0]["errorCode"] == "ResourceNotFoundException"


@pytest.mark.parametrize(
    ("op", "kwargs", "code"),
    [
        ("get_asset_property_value", {"propertyAlias": "/no/such/stream"}, "ResourceNotFoundException"),
        ("get_asset_property_value", {}, "InvalidRequestException"),
        ("get_asset_property_value_history", {"propertyAlias": PRESS1_TEMP, "maxResults": 20001},
         "InvalidRequestException"),
        ("get_asset_property_value_history", {"propertyAlias": PRESS1_TEMP, "nextToken": "bm90LWEtdG9rZW4="},
         "InvalidRequestException"),
        ("describe_asset", {"assetId": "11111111-2222-4333-8444-555555555555"}, "ResourceNotFoundException"),
        ("list_assets", {"filter": "ALL"}, "InvalidRequestException"),
    ],
    ids=["unknown-alias", "no-identity", "max-results", "bad-token", "unknown-asset", "list-all-without-model"],
)
async def test_errors_arrive_as_modelled_exceptions(api: Any, op: str, kwargs: dict[str, Any], code: str) -> None:
    _, client = api
    with pytest.raises(botocore.exceptions.ClientError) as err:
        await call(client, op, **kwargs)
    assert err.value.response["Error"]["Code"] == code
    assert err.value.response["Error"]["Message"]


async def test_too_many_entries_is_refused_whole(api: Any) -> None:
    _, client = api
    entries = [{"entryId": f"e{i}", "propertyAlias": "/free/x", "propertyValues": [tqv({"doubleValue": 1.0}, NOW)]}
               for i in range(11)]
    with pytest.raises(botocore.exceptions.ClientError) as err:
        await call(client, "batch_put_asset_property_value", entries=entries)
    assert err.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "at most 10 entries" in err.value.response["Error"]["Message"]


async def test_malformed_json_body(api: Any) -> None:
    gw, _ = api
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        r = await http.post("/properties", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.headers["x-amzn-errortype"] == "InvalidRequestException"
    assert r.json() == {"message": "the request body is not valid JSON"}


async def test_list_and_describe_assets_match_the_service_model(api: Any) -> None:
    gw, client = api
    top = await call(client, "list_assets", filter="TOP_LEVEL")
    assert [a["name"] for a in top["assetSummaries"]] == ["Line 1"]
    machine = asset_named(gw, "Press1")
    listed = await call(client, "list_assets", assetModelId=machine.model_id)
    assert sorted(a["name"] for a in listed["assetSummaries"]) == ["Oven1", "Press1", "Press2"]
    described = await call(client, "describe_asset", assetId=machine.id)
    aliases = {p["name"]: p.get("alias") for p in described["assetProperties"]}
    assert aliases["Temperature"] == PRESS1_TEMP
    models = await call(client, "list_asset_models")
    assert {m["name"] for m in models["assetModelSummaries"]} == {"Machine", "Line"}
    # the raw bodies carry every member the service model requires
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        raw = {
            "ListAssets": (await http.get("/assets", params={"filter": "TOP_LEVEL"})).json(),
            "DescribeAsset": (await http.get(f"/assets/{machine.id}")).json(),
            "DescribeAssetModel": (await http.get(f"/asset-models/{machine.model_id}")).json(),
            "ListAssetModels": (await http.get("/asset-models")).json(),
            "GetAssetPropertyValueHistory": (await http.get(
                "/properties/history", params={"propertyAlias": PRESS1_TEMP})).json(),
        }
    for op, body in raw.items():
        assert_valid_output(op, body)


async def test_openapi_schema_is_served(api: Any) -> None:
    gw, _ = api
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        schema = (await http.get("/openapi.json")).json()
        health = (await http.get("/health")).json()
    assert "/properties" in schema["paths"] and "/properties/history" in schema["paths"]
    assert health["status"] == "ok"
    assert json.dumps(health)  # serialisable


async def test_write_routes_need_the_token_when_configured(tmp_path: Path, start_gateway: Any) -> None:
    cfg = gateway_config(tmp_path, api={"host": "127.0.0.1", "port": 0, "token": "t0ken"})
    gw = await start_gateway(cfg)
    body = {"entries": [{"entryId": "a", "propertyAlias": "/x", "propertyValues": [tqv({"doubleValue": 1.0}, NOW)]}]}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        denied = await http.post("/properties", json=body)
        allowed = await http.post("/properties", json=body, headers={"Authorization": "Bearer t0ken"})
        read = await http.get("/properties/latest", params={"propertyAlias": "/x"})
    assert denied.status_code == 401 and denied.headers["x-amzn-errortype"] == "UnauthorizedException"
    assert allowed.status_code == 200 and allowed.json() == {"errorEntries": []}
    assert read.status_code == 200


async def test_writing_to_a_transform_is_refused_per_entry(api: Any) -> None:
    gw, client = api
    press1 = asset_named(gw, "Press1")
    prop = next(p for p in gw.registry.model(press1.model_id).properties if p.name == "Temperature F")
    resp = await call(client, "batch_put_asset_property_value", entries=[
        {"entryId": "t", "assetId": press1.id, "propertyId": prop.id,
         "propertyValues": [tqv({"doubleValue": 1.0}, NOW)]}])
    (err,) = resp["errorEntries"][0]["errors"]
    assert err["errorCode"] == "InvalidRequestException" and "measurements" in err["errorMessage"]


async def test_date_bounds_are_exact_to_the_microsecond(api: Any) -> None:
    gw, _ = api
    t = NOW - 30
    values = [tqv({"doubleValue": float(i)}, t, nanos=17_701_000 + i * 1000) for i in range(3)]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        await http.post("/properties", json={"entries": [{"entryId": "a", "propertyAlias": "/exact",
                                                          "propertyValues": values}]})
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))
        page = (await http.get("/properties/history", params={
            "propertyAlias": "/exact", "startDate": f"{stamp}.017701Z", "endDate": f"{stamp}.017703Z"})).json()
        bad = await http.get("/properties/history", params={"propertyAlias": "/exact", "startDate": "inf"})
    # start exclusive, end inclusive, at microsecond resolution
    assert [v["value"]["doubleValue"] for v in page["assetPropertyValueHistory"]] == [1.0, 2.0]
    assert bad.status_code == 400 and bad.headers["x-amzn-errortype"] == "InvalidRequestException"


async def test_reads_sent_as_post_need_no_write_token(tmp_path: Path, start_gateway: Any) -> None:
    gw = await start_gateway(gateway_config(tmp_path, api={"host": "127.0.0.1", "port": 0, "token": "t0ken"}))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        latest = await http.post("/properties/batch/latest", json={"entries": [
            {"entryId": "a", "propertyAlias": PRESS1_TEMP}]})
        query = await http.post("/queries/execution", json={"queryStatement": "SELECT asset_name FROM asset"})
    assert latest.status_code == 200 and query.status_code == 200


async def test_latest_on_the_hot_path_answers_as_the_fastapi_route(api: Any) -> None:
    """``GET /properties/latest`` skips FastAPI's routing (api/app.py HotRoutes): its answers, errors and
    metric label are those of the route, whose function it calls."""
    gw, client = api
    await call(client, "batch_put_asset_property_value", entries=[
        {"entryId": "t", "propertyAlias": PRESS1_TEMP, "propertyValues": [tqv({"doubleValue": 5.5}, NOW - 1)]}])
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        ok = await http.get("/properties/latest", params=[("propertyAlias", "/nowhere"),
                                                          ("propertyAlias", PRESS1_TEMP)])  # the last one counts
        assert ok.status_code == 200 and ok.headers["content-type"] == "application/json"
        assert ok.json()["propertyValue"]["value"] == {"doubleValue": 5.5}
        assert ok.json() == await get_latest(backend=gw, propertyAlias=PRESS1_TEMP)
        bad = await http.get("/properties/latest", params={"assetId": "not-an-id", "propertyId": "x"})
        assert bad.status_code == 400 and bad.headers["x-amzn-ErrorType"] == "InvalidRequestException"
        assert "assetId: 'not-an-id' is not a valid ID" in bad.json()["message"]
        unknown = await http.get("/properties/latest", params={"propertyAlias": "/no/such/alias"})
        assert unknown.status_code == 404 and unknown.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
        none = await http.get("/properties/latest")
        assert none.status_code == 400 and none.headers["x-amzn-ErrorType"] == "InvalidRequestException"
        scraped = (await http.get("/metrics")).text
    assert 'operation="/properties/latest",status="200"' in scraped
    assert 'operation="/properties/latest",status="404"' in scraped


async def test_latest_answers_every_value_type_as_the_history_does(api: Any) -> None:
    """GetAssetPropertyValue reads the latest-value index's scalars (no table): each value type, NaN and
    infinities, a typed null and a non-GOOD quality come out as the history's newest value, on the wire."""
    gw, _ = api
    cases = {
        "/free/double": tqv({"doubleValue": 2.5}, NOW - 3, nanos=17),
        "/free/nan": tqv({"doubleValue": "NaN"}, NOW - 3),
        "/free/inf": tqv({"doubleValue": "-Infinity"}, NOW - 3, quality="BAD"),
        "/free/integer": tqv({"integerValue": -(2**31)}, NOW - 3),
        "/free/string": tqv({"stringValue": "recipe ä"}, NOW - 3, quality="UNCERTAIN"),
        "/free/boolean": tqv({"booleanValue": False}, NOW - 3),
        PRESS1_TEMP: tqv({"nullValue": {"valueType": "D"}}, NOW - 3, quality="UNCERTAIN"),  # a DOUBLE property
    }
    entries = [{"entryId": f"e{i}", "propertyAlias": alias, "propertyValues": [tqv({"doubleValue": 0.0}, NOW - 9)]
                if alias == PRESS1_TEMP else []} for i, alias in enumerate(cases)]
    for entry, value in zip(entries, cases.values(), strict=True):
        entry["propertyValues"] = [*entry["propertyValues"], value]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        put = await http.post("/properties", json={"entries": entries})
        assert put.status_code == 200 and put.json()["errorEntries"] == []
        for alias, sent in cases.items():
            latest = await http.get("/properties/latest", params={"propertyAlias": alias})
            history = await http.get("/properties/history", params={
                "propertyAlias": alias, "startDate": NOW - 10, "endDate": NOW, "timeOrdering": "DESCENDING"})
            assert latest.status_code == 200, latest.text
            assert latest.json()["propertyValue"] == history.json()["assetPropertyValueHistory"][0] == sent, alias
        unknown = await http.get("/properties/latest", params={"propertyAlias": "/never/written"})
        assert unknown.status_code == 404 and unknown.headers["x-amzn-ErrorType"].startswith("ResourceNotFound")
