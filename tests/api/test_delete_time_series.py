"""DeleteTimeSeries over boto3 and the AWS CLI: a disassociated time series and its values go from every read;
values written by the alias afterwards are a new time series; an associated one is refused (409), an unknown
one is 404 (storage/tombstones.py keeps the delete)."""

from __future__ import annotations

import uuid
from typing import Any

import botocore.exceptions
import httpx
import pytest

from tests.api.test_aws_cli import cli
from tests.api.test_control_plane import PRESS1, SPEED, Client, api, tqv
from tests.api.test_timeseries import NOW, pump_asset, put

__all__ = ["api"]

ALIAS = "/site/old/level"
OTHER = "/site/old/other"


async def answer(client: Client, op: str, **kwargs: Any) -> Any:
    """The response, or the error code it answered with."""
    try:
        return await client(op, **kwargs)
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]


NOT_FOUND = "ResourceNotFoundException"


async def reads(client: Client, alias: str) -> dict[str, Any]:
    """What each read operation answers for ``alias``."""
    history = await answer(client, "get_asset_property_value_history", propertyAlias=alias, startDate=NOW - 10,
                           endDate=NOW + 1000)
    aggregates = await answer(client, "get_asset_property_aggregates", propertyAlias=alias, startDate=NOW - 3600,
                              endDate=NOW + 3600, aggregateTypes=["COUNT"], resolution="1h")
    rows = await client("execute_query", queryStatement="SELECT double_value FROM raw_time_series WHERE "
                        f"property_alias = '{alias}' ORDER BY event_timestamp")
    listed = await client("list_time_series", timeSeriesType="DISASSOCIATED")
    return {
        "history": history if isinstance(history, str) else [
            v["value"]["doubleValue"] for v in history["assetPropertyValueHistory"]],
        "count": aggregates if isinstance(aggregates, str) else sum(
            a["value"]["count"] for a in aggregates["aggregatedValues"]),
        "sql": [float(r["data"][0]["scalarValue"]) for r in rows["rows"]],
        "listed": alias in [s.get("alias") for s in listed["TimeSeriesSummaries"]],
    }


GONE = {"history": NOT_FOUND, "count": NOT_FOUND, "sql": [], "listed": False}


async def test_a_deleted_time_series_is_gone_and_its_alias_starts_a_new_one(api: Any) -> None:
    gw, client = api
    await put(client, ALIAS, tqv(1.0, NOW), tqv(2.0, NOW + 60))
    await put(client, OTHER, tqv(7.0, NOW))
    assert await reads(client, ALIAS) == {"history": [1.0, 2.0], "count": 2, "sql": [1.0, 2.0], "listed": True}
    assert await client("delete_time_series", alias=ALIAS, clientToken=str(uuid.uuid4())) is not None
    assert await reads(client, ALIAS) == GONE  # the alias is unknown again, as after SiteWise's delete
    err = await client.error("describe_time_series", alias=ALIAS)
    assert err["Error"]["Code"] == "ResourceNotFoundException"
    err = await client.error("get_asset_property_value", propertyAlias=ALIAS)
    assert err["Error"]["Code"] == "ResourceNotFoundException"
    assert (await reads(client, OTHER))["history"] == [7.0]  # the other stream keeps its values
    await put(client, ALIAS, tqv(5.0, NOW + 30))  # a new time series under the same alias
    assert await reads(client, ALIAS) == {"history": [5.0], "count": 1, "sql": [5.0], "listed": True}
    described = await client("describe_time_series", alias=ALIAS)
    assert described["timeSeriesCreationDate"].timestamp() == NOW + 30
    latest = await client("get_asset_property_value", propertyAlias=ALIAS)
    assert latest["propertyValue"]["value"]["doubleValue"] == 5.0
    await gw.store.compact()
    assert (await reads(client, ALIAS))["history"] == [5.0]


@pytest.mark.parametrize(("kwargs", "code", "expected"), [
    ({"alias": "/plant1/line1/press1/speed"}, "ConflictingOperationException", "disassociate it first"),
    ({"assetId": PRESS1, "propertyId": SPEED}, "ConflictingOperationException", "is associated with property"),
    ({"alias": "/no/such/series"}, "ResourceNotFoundException", "Time series /no/such/series does not exist"),
    ({"assetId": PRESS1, "propertyId": str(uuid.UUID(int=9))}, "ResourceNotFoundException", "does not exist"),
    ({"assetId": PRESS1}, "InvalidRequestException", "must be given together"),
    ({}, "InvalidRequestException", "Either alias, or assetId and propertyId"),
], ids=["associated-alias", "associated-property", "unknown-alias", "unknown-property", "half", "nothing"])
async def test_delete_time_series_errors(api: Any, kwargs: dict[str, Any], code: str, expected: str) -> None:
    gw, client = api
    await put(client, ALIAS, tqv(1.0, NOW))
    err = await client.error("delete_time_series", **kwargs)
    assert err["Error"]["Code"] == code, err
    assert expected in err["Error"]["Message"]
    assert err["ResponseMetadata"]["HTTPStatusCode"] == {"ConflictingOperationException": 409,
                                                          "ResourceNotFoundException": 404}.get(code, 400)
    assert (await reads(client, ALIAS))["history"] == [1.0]  # nothing was deleted
    assert gw.registry.property(PRESS1, SPEED).alias == "/plant1/line1/press1/speed"


async def test_a_disassociated_series_can_be_deleted_after_disassociating(api: Any) -> None:
    _, client = api
    asset_id, flow = await pump_asset(client)
    await put(client, ALIAS, tqv(3.0, NOW))
    await client("associate_time_series_to_asset_property", alias=ALIAS, assetId=asset_id, propertyId=flow)
    err = await client.error("delete_time_series", alias=ALIAS)
    assert err["Error"]["Code"] == "ConflictingOperationException"
    await client("disassociate_time_series_from_asset_property", alias=ALIAS, assetId=asset_id, propertyId=flow)
    await client("delete_time_series", alias=ALIAS)
    assert await reads(client, ALIAS) == GONE


async def test_aws_cli_deletes_a_time_series(api: Any) -> None:
    gw, client = api
    await put(client, ALIAS, tqv(1.0, NOW))
    await cli(gw.api_port, "delete-time-series", "--alias", ALIAS)
    assert await reads(client, ALIAS) == GONE


async def test_a_malformed_client_token_is_refused(api: Any) -> None:
    gw, client = api  # boto3 checks the length itself: a raw request, as another client could send it
    await put(client, ALIAS, tqv(1.0, NOW))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        r = await http.post("/timeseries/delete/", params={"alias": ALIAS}, json={"clientToken": "short"})
    assert (r.status_code, r.headers["x-amzn-ErrorType"]) == (400, "InvalidRequestException")
    assert "clientToken" in r.json()["message"]
    assert (await reads(client, ALIAS))["history"] == [1.0]


async def test_a_retry_with_the_same_client_token_answers_again_and_deletes_nothing_newer(api: Any) -> None:
    _, client = api
    token = str(uuid.uuid4())
    await put(client, ALIAS, tqv(1.0, NOW))
    await put(client, OTHER, tqv(2.0, NOW))
    await client("delete_time_series", alias=ALIAS, clientToken=token)
    await put(client, ALIAS, tqv(3.0, NOW + 5))  # written after the delete: a retry keeps it
    await client("delete_time_series", alias=ALIAS, clientToken=token)
    assert (await reads(client, ALIAS))["history"] == [3.0]
    err = await client.error("delete_time_series", alias=OTHER, clientToken=token)
    assert err["Error"]["Code"] == "InvalidRequestException"
    assert f"was used by a request to delete {ALIAS}" in err["Error"]["Message"]
    assert (await reads(client, OTHER))["history"] == [2.0]
