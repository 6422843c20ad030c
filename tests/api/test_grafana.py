"""Grafana's IoT SiteWise data source, replayed through boto3 in the order the plugin makes its calls.

The plugin (github.com/grafana/iot-sitewise-datasource, ``pkg/sitewise/api`` and ``pkg/resource``)
fills its query editor with ListAssetModels, ListAssets, DescribeAsset, ListAssociatedAssets and
ListAssetProperties (``filter=ALL``, ``maxResults=250``); a panel given property aliases first
resolves each with DescribeTimeSeries (``getAssetIdAndPropertyId``), queries the values by asset
and property id (or by alias for a disassociated stream), then frames them with DescribeTimeSeries
and DescribeAssetProperty (``SitewiseResources.Property``). Its ListTimeSeries query asks with
``maxResults=250``; panels by asset and property id query first and describe the property after. All 17
operations of the plugin's client interface are called; every answer is checked against botocore's shapes.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.api.test_control_plane import PRESS1, SPEED, Client, api

__all__ = ["api"]

ALIAS = "/plant1/line1/press1/speed"
LOOSE = "/site/weather/wind"
MAX = 250
PLUGIN_OPERATIONS = {  # pkg/sitewise/client/client.go: the SitewiseAPIClient interface
    "BatchGetAssetPropertyAggregates", "BatchGetAssetPropertyValue", "BatchGetAssetPropertyValueHistory",
    "DescribeAsset", "DescribeAssetModel", "ExecuteQuery", "GetAssetPropertyAggregates",
    "GetAssetPropertyValueHistory", "GetInterpolatedAssetPropertyValues", "ListAssets", "ListAssetModels",
    "ListAssetProperties", "ListAssociatedAssets", "ListTimeSeries", "DescribeAssetProperty", "DescribeTimeSeries",
    "GetAssetPropertyValue",
}


class Recorder(Client):
    """The control-plane test client, plus the operations in the order they went out."""

    def __init__(self, port: int) -> None:
        super().__init__(port)
        self.calls: list[str] = []
        self.boto.meta.events.register("before-call.iotsitewise", self._record)

    def _record(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)

    async def __call__(self, op: str, **kwargs: Any) -> Any:
        resp = await super().__call__(op, **kwargs)
        self.valid(self.calls[-1])
        return resp


async def property_frame(client: Recorder, alias: str) -> dict[str, Any]:
    """``SitewiseResources.Property``: DescribeTimeSeries, then DescribeAssetProperty if the alias is associated."""
    ts = await client("describe_time_series", alias=alias)
    if "assetId" in ts and "propertyId" in ts:
        return await client("describe_asset_property", assetId=ts["assetId"], propertyId=ts["propertyId"])  # type: ignore[no-any-return]
    return {"assetName": "", "assetProperty": {"name": alias, "dataType": "?"}}


async def test_grafana_plugin_calls_in_its_order(api: Any) -> None:
    gw, _ = api
    client = Recorder(gw.api_port)
    now = int(time.time())
    await asyncio.to_thread(client.boto.batch_put_asset_property_value, entries=[
        {"entryId": "speed", "propertyAlias": ALIAS,
         "propertyValues": [{"value": {"doubleValue": 41.0}, "timestamp": {"timeInSeconds": now - 5}}]},
        {"entryId": "wind", "propertyAlias": LOOSE,
         "propertyValues": [{"value": {"doubleValue": 7.5}, "timestamp": {"timeInSeconds": now - 5}}]}])
    client.calls.clear()

    # the query editor: models, assets, an asset, its children, the property picker
    models = await client("list_asset_models", maxResults=MAX)
    machine = next(m for m in models["assetModelSummaries"] if m["name"] == "Machine")
    assets = await client("list_assets", assetModelId=machine["id"], filter="ALL", maxResults=MAX)
    assert PRESS1 in [a["id"] for a in assets["assetSummaries"]]
    asset = await client("describe_asset", assetId=PRESS1)
    for h in asset["assetHierarchies"]:
        await client("list_associated_assets", assetId=PRESS1, hierarchyId=h["id"], maxResults=MAX)
    await client("list_associated_assets", assetId=PRESS1, traversalDirection="PARENT", maxResults=MAX)
    picker = await client("list_asset_properties", assetId=PRESS1, filter="ALL", maxResults=MAX)
    assert SPEED in [p["id"] for p in picker["assetPropertySummaries"]]

    # a panel by property alias: resolve, query by ids, frame
    resolved = await client("describe_time_series", alias=ALIAS)
    assert (resolved["assetId"], resolved["propertyId"]) == (PRESS1, SPEED)
    values = await client("batch_get_asset_property_value_history", maxResults=20000, entries=[
        {"entryId": "e1", "assetId": resolved["assetId"], "propertyId": resolved["propertyId"],
         "startDate": now - 60, "endDate": now, "timeOrdering": "ASCENDING", "qualities": ["GOOD"]}])
    [entry] = values["successEntries"]
    assert [v["value"]["doubleValue"] for v in entry["assetPropertyValueHistory"]] == [41.0]
    frame = await property_frame(client, ALIAS)
    assert frame["assetProperty"]["name"] == "Speed" and frame["assetName"] == "Press1"

    # a panel on a disassociated stream: the alias stays the key
    loose = await client("describe_time_series", alias=LOOSE)
    assert "assetId" not in loose
    latest = await client("batch_get_asset_property_value", entries=[{"entryId": "e1", "propertyAlias": LOOSE}])
    assert latest["successEntries"][0]["assetPropertyValue"]["value"]["doubleValue"] == 7.5
    assert (await property_frame(client, LOOSE))["assetProperty"]["dataType"] == "?"

    # the ListTimeSeries query
    series = await client("list_time_series", timeSeriesType="DISASSOCIATED", aliasPrefix="/site/", maxResults=MAX)
    assert [s["alias"] for s in series["TimeSeriesSummaries"]] == [LOOSE]

    # panels by asset and property id: the query, then the frame's DescribeAssetProperty; the model picker
    ids = {"assetId": PRESS1, "propertyId": SPEED}
    window = {"startDate": now - 60, "endDate": now}
    assert (await client("get_asset_property_value", **ids))["propertyValue"]["value"]["doubleValue"] == 41.0
    await client("describe_asset_property", **ids)
    history = await client("get_asset_property_value_history", **ids, **window, maxResults=MAX)
    assert len(history["assetPropertyValueHistory"]) == 1
    aggregates = await client("get_asset_property_aggregates", **ids, **window, aggregateTypes=["AVERAGE"],
                              resolution="1m", maxResults=MAX)
    assert aggregates["aggregatedValues"]
    batch = await client("batch_get_asset_property_aggregates", maxResults=4000, entries=[
        {"entryId": "e1", **ids, **window, "aggregateTypes": ["AVERAGE"], "resolution": "1m"}])
    assert batch["successEntries"][0]["aggregatedValues"]
    await client("get_interpolated_asset_property_values", **ids, startTimeInSeconds=now - 60,
                 endTimeInSeconds=now, intervalInSeconds=30, type="LOCF_INTERPOLATION", quality="GOOD",
                 maxResults=10)
    await client("describe_asset_property", **ids)
    await client("describe_asset_model", assetModelId=machine["id"])
    rows = await client("execute_query", queryStatement="SELECT asset_name FROM asset WHERE asset_id = "
                        f"'{PRESS1}'")
    assert rows["rows"][0]["data"][0]["scalarValue"] == "Press1"

    assert client.calls == [
        "ListAssetModels", "ListAssets", "DescribeAsset",
        *["ListAssociatedAssets"] * len(asset["assetHierarchies"]), "ListAssociatedAssets", "ListAssetProperties",
        "DescribeTimeSeries", "BatchGetAssetPropertyValueHistory", "DescribeTimeSeries", "DescribeAssetProperty",
        "DescribeTimeSeries", "BatchGetAssetPropertyValue", "DescribeTimeSeries",
        "ListTimeSeries",
        "GetAssetPropertyValue", "DescribeAssetProperty", "GetAssetPropertyValueHistory",
        "GetAssetPropertyAggregates", "BatchGetAssetPropertyAggregates", "GetInterpolatedAssetPropertyValues",
        "DescribeAssetProperty", "DescribeAssetModel", "ExecuteQuery",
    ]
    assert len(set(client.calls)) == len(PLUGIN_OPERATIONS) and set(client.calls) == PLUGIN_OPERATIONS
