"""A metric created through CreateAssetModel is computed, on a gateway that started with no metric at all,
and the window open when it was created gets its value (from the values of that window, before and after)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sitewise_edge.clock import NS_PER_S, ManualClock
from sitewise_edge.runtime import Gateway
from tests.conftest import eventually, gateway_config, sitewise_client

MIN = 60 * NS_PER_S
W = 1_700_000_040 * NS_PER_S  # a window end (minute aligned); the model is created 1 s before it
ALIAS = "/tank1/level"


def tqv(value: float, t_ns: int) -> dict[str, Any]:
    seconds, nanos = divmod(t_ns, NS_PER_S)
    return {"value": {"doubleValue": value}, "timestamp": {"timeInSeconds": seconds, "offsetInNanos": nanos},
            "quality": "GOOD"}


async def test_a_metric_created_through_the_api_computes_the_window_open_at_creation(tmp_path: Path) -> None:
    assert W % MIN == 0
    clock = ManualClock(W - NS_PER_S)
    gw = Gateway(gateway_config(tmp_path, models=[]), clock)
    await gw.start()
    try:
        assert not gw.metrics.plan.groups
        client = sitewise_client(gw.api_port)

        def call(op: str, **kwargs: Any) -> Any:
            return asyncio.to_thread(getattr(client, op), **kwargs)

        model = await call("create_asset_model", assetModelName="Tank", assetModelProperties=[
            {"name": "Level", "dataType": "DOUBLE", "type": {"measurement": {}}},
            {"name": "Avg Level", "dataType": "DOUBLE", "type": {"metric": {
                "expression": "avg(l)", "variables": [{"name": "l", "value": {"propertyId": "Level"}}],
                "window": {"tumbling": {"interval": "1m"}}}}}])
        asset_id = (await call("create_asset", assetName="Tank 1", assetModelId=model["assetModelId"]))["assetId"]
        props = {p["name"]: p["id"] for p in (await call("describe_asset", assetId=asset_id))["assetProperties"]}
        await call("update_asset_property", assetId=asset_id, propertyId=props["Level"], propertyAlias=ALIAS)
        assert [g.prop.name for g in gw.metrics.plan.groups] == ["Avg Level"]

        # one value before the model existed, one after, both in the window open at creation (W - 1m, W]
        resp = await call("batch_put_asset_property_value", entries=[{"entryId": "e", "propertyAlias": ALIAS,
                                                                      "propertyValues": [tqv(2.0, W - 30 * NS_PER_S),
                                                                                         tqv(4.0, W)]}])
        assert resp["errorEntries"] == []
        clock.advance(4)  # past the window's end and its grace: the runner computes it at its next pass

        async def avg() -> Any:
            got = await call("get_asset_property_value", assetId=asset_id, propertyId=props["Avg Level"])
            return got["propertyValue"]

        def computed() -> Any:
            return gw.store.latest(gw.registry.stream_of(asset_id, props["Avg Level"])).num_rows

        await eventually(computed, within=20)
        value = await avg()
        assert value["value"]["doubleValue"] == 3.0
        assert value["timestamp"]["timeInSeconds"] * NS_PER_S == W
    finally:
        await gw.stop()
