"""Time series and asset properties over boto3 and HTTP: list, describe, associate, disassociate, paging, errors.

SiteWise's semantics for a disassociated stream: values written by an alias no property has are a
time series of their own; associating the alias with a property makes them the property's history.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.api.test_control_plane import PRESS1, SPEED, Client, api, create_pump_model, tqv
from tests.api.test_modelling import pages

__all__ = ["api"]  # the fixture, imported from the control-plane tests

NOW = 1_700_000_000
LOOSE = "/site/loose/flow"


async def put(client: Client, alias: str, *values: dict[str, Any]) -> None:
    resp = await client("batch_put_asset_property_value",
                        entries=[{"entryId": "e1", "propertyAlias": alias, "propertyValues": list(values)}])
    assert resp["errorEntries"] == []


async def pump_asset(client: Client) -> tuple[str, str]:
    model_id = await create_pump_model(client)
    asset_id = (await client("create_asset", assetName="Pump 1", assetModelId=model_id))["assetId"]
    described = await client("describe_asset", assetId=asset_id)
    flow = next(p["id"] for p in described["assetProperties"] if p["name"] == "Flow")
    return asset_id, flow


async def test_disassociated_stream_is_listed_described_then_associated_with_its_history(api: Any) -> None:
    gw, client = api
    await put(client, LOOSE, tqv(1.5, NOW), tqv(2.5, NOW + 60))
    listed = await client("list_time_series", timeSeriesType="DISASSOCIATED")
    client.valid("ListTimeSeries")
    loose = [s for s in listed["TimeSeriesSummaries"] if s.get("alias") == LOOSE]
    assert len(loose) == 1 and "assetId" not in loose[0] and loose[0]["dataType"] == "DOUBLE"
    assert loose[0]["timeSeriesCreationDate"].timestamp() == NOW  # its first value
    described = await client("describe_time_series", alias=LOOSE)
    client.valid("DescribeTimeSeries")
    assert described["timeSeriesId"] == loose[0]["timeSeriesId"]
    assert described["timeSeriesArn"].endswith(f":time-series/{described['timeSeriesId']}")

    asset_id, flow = await pump_asset(client)
    await client("associate_time_series_to_asset_property", alias=LOOSE, assetId=asset_id, propertyId=flow)
    assert client.status["AssociateTimeSeriesToAssetProperty"] == 200
    history = await client("get_asset_property_value_history", assetId=asset_id, propertyId=flow,
                           startDate=NOW - 1, endDate=NOW + 61)
    assert [v["value"]["doubleValue"] for v in history["assetPropertyValueHistory"]] == [1.5, 2.5]
    after = await client("describe_time_series", assetId=asset_id, propertyId=flow)
    assert (after["alias"], after["assetId"], after["propertyId"]) == (LOOSE, asset_id, flow)
    assert after["timeSeriesId"] == described["timeSeriesId"]  # the same time series, now associated
    assert (await client("describe_time_series", alias=LOOSE))["propertyId"] == flow
    disassociated = await client("list_time_series", timeSeriesType="DISASSOCIATED")
    assert LOOSE not in [s.get("alias") for s in disassociated["TimeSeriesSummaries"]]
    assert gw.registry.property_by_alias(LOOSE).property_id == flow

    await client("disassociate_time_series_from_asset_property", alias=LOOSE, assetId=asset_id, propertyId=flow)
    assert gw.registry.property_by_alias(LOOSE) is None
    again = await client("describe_time_series", alias=LOOSE)
    assert "assetId" not in again and again["timeSeriesId"] == described["timeSeriesId"]
    values = await client("get_asset_property_value_history", propertyAlias=LOOSE, startDate=NOW - 1,
                          endDate=NOW + 61)
    assert len(values["assetPropertyValueHistory"]) == 2  # the values stay with the alias


async def test_associated_time_series_of_an_asset_and_their_paging(api: Any) -> None:
    _, client = api
    listed = await client("list_time_series", assetId=PRESS1)
    client.valid("ListTimeSeries")
    summaries = listed["TimeSeriesSummaries"]
    described = await client("describe_asset", assetId=PRESS1)
    assert [(s["assetId"], s["propertyId"]) for s in summaries] == [(PRESS1, p["id"])
                                                                    for p in described["assetProperties"]]
    speed = next(s for s in summaries if s["propertyId"] == SPEED)
    assert speed["alias"] == "/plant1/line1/press1/speed"
    paged = await pages(client, "list_time_series", "TimeSeriesSummaries", assetId=PRESS1,
                        PaginationConfig={"PageSize": 5})
    assert all(len(p) <= 5 for p in paged) and len(paged) > 2
    assert [s["timeSeriesId"] for p in paged for s in p] == [s["timeSeriesId"] for s in summaries]
    prefixed = await client("list_time_series", aliasPrefix="/plant1/line1/press1/", timeSeriesType="ASSOCIATED")
    assert {s["alias"] for s in prefixed["TimeSeriesSummaries"]} == {
        p["alias"] for p in described["assetProperties"] if "alias" in p}


@pytest.mark.parametrize(("op", "kwargs", "code", "expected"), [
    ("list_time_series", {"timeSeriesType": "SOME"}, "InvalidRequestException", "Invalid timeSeriesType SOME"),
    ("list_time_series", {"assetId": PRESS1, "timeSeriesType": "DISASSOCIATED"}, "InvalidRequestException",
     "cannot be combined with timeSeriesType DISASSOCIATED"),
    ("list_time_series", {"assetId": str(uuid.UUID(int=7))}, "ResourceNotFoundException", "does not exist"),
    ("list_time_series", {"maxResults": 251}, "InvalidRequestException", "maxResults: must be 1 to 250"),
    ("list_time_series", {"nextToken": "bm90LW91cnM="}, "InvalidRequestException", "not a token this API issued"),
    ("describe_time_series", {}, "InvalidRequestException", "Either alias, or assetId and propertyId"),
    ("describe_time_series", {"assetId": PRESS1}, "InvalidRequestException", "must be given together"),
    ("describe_time_series", {"alias": "/nothing/here"}, "ResourceNotFoundException",
     "Time series /nothing/here does not exist"),
    ("describe_time_series", {"assetId": PRESS1, "propertyId": str(uuid.UUID(int=9))}, "ResourceNotFoundException",
     "does not exist in asset"),
    ("associate_time_series_to_asset_property",
     {"alias": "/plant1/line1/press2/speed", "assetId": PRESS1, "propertyId": SPEED},
     "ConflictingOperationException", "disassociate it first"),
    ("associate_time_series_to_asset_property",
     {"alias": "/free/alias", "assetId": PRESS1, "propertyId": SPEED},
     "ConflictingOperationException", "is associated with the time series /plant1/line1/press1/speed"),
    ("disassociate_time_series_from_asset_property",
     {"alias": "/free/alias", "assetId": PRESS1, "propertyId": SPEED},
     "ResourceNotFoundException", "is not associated with property"),
], ids=["bad-type", "asset-and-disassociated", "unknown-asset", "page-too-big", "foreign-token", "describe-nothing",
        "describe-half", "describe-unknown-alias", "describe-unknown-property", "alias-of-another-property",
        "property-has-an-alias", "disassociate-not-associated"])
async def test_time_series_errors(api: Any, op: str, kwargs: dict[str, Any], code: str, expected: str) -> None:
    _, client = api
    err = await client.error(op, **kwargs)
    assert err["Error"]["Code"] == code, err
    assert expected in err["Error"]["Message"]


async def test_association_refuses_what_would_hide_values(api: Any) -> None:
    gw, client = api
    asset_id, flow = await pump_asset(client)
    await put(client, "/site/loose/text", {"value": {"stringValue": "on"}, "timestamp": {"timeInSeconds": NOW}})
    err = await client.error("associate_time_series_to_asset_property", alias="/site/loose/text", assetId=asset_id,
                             propertyId=flow)
    assert err["Error"]["Code"] == "InvalidRequestException"
    assert "holds STRING values; property" in err["Error"]["Message"] and "is DOUBLE" in err["Error"]["Message"]
    resp = await client("batch_put_asset_property_value", entries=[
        {"entryId": "e1", "assetId": asset_id, "propertyId": flow, "propertyValues": [tqv(3.0, NOW)]}])
    assert resp["errorEntries"] == []
    err = await client.error("associate_time_series_to_asset_property", alias=LOOSE, assetId=asset_id,
                             propertyId=flow)
    assert err["Error"]["Code"] == "ConflictingOperationException"
    assert "already has values written by its id" in err["Error"]["Message"]
    assert gw.registry.property(asset_id, flow).alias is None


async def test_associate_with_a_client_token_is_idempotent(api: Any) -> None:
    _, client = api
    asset_id, flow = await pump_asset(client)
    token = str(uuid.uuid4())
    for _ in range(2):
        await client("associate_time_series_to_asset_property", alias=LOOSE, assetId=asset_id, propertyId=flow,
                     clientToken=token)
    err = await client.error("associate_time_series_to_asset_property", alias="/other", assetId=asset_id,
                             propertyId=flow, clientToken=token)
    assert err["Error"]["Code"] == "InvalidRequestException"
