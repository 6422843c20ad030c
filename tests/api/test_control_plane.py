"""The SiteWise control plane (create, update, associate, delete models and assets), through boto3 over HTTP."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from sitewise_edge.runtime import Gateway
from tests.botocore_shapes import assert_valid_output
from tests.conftest import gateway_config, sitewise_client

MACHINE = "b17cff1d-0f50-4a16-bb5c-b976b38ccfa1"
LINE = "4a384ff5-835e-47b0-9e23-247b35d30658"
MACHINES_HIERARCHY = "a21b66a1-b82f-41f1-a62a-c0c60c7a044c"
LINE1 = "b2fb3ddf-f62c-4302-9796-c73c8ea2c296"
PRESS1 = "d5391ca4-4057-4be8-9775-3ab9e010adbd"
SPEED = "20bbc9f5-55dd-49ee-9cd0-0432208345f0"
NOW = int(time.time())

PUMP_PROPERTIES = [
    {"name": "Flow", "dataType": "DOUBLE", "unit": "m3/h", "type": {"measurement": {}}},
    {"name": "Rated flow", "dataType": "DOUBLE", "type": {"attribute": {"defaultValue": "12.5"}}},
    {"name": "Flow l/s", "dataType": "DOUBLE", "unit": "l/s",
     "type": {"transform": {"expression": "flow / 3.6",
                            "variables": [{"name": "flow", "value": {"propertyId": "Flow"}}]}}},
    {"name": "Max flow", "dataType": "DOUBLE",
     "type": {"metric": {"expression": "max(flow)", "variables": [{"name": "flow", "value": {"propertyId": "Flow"}}],
                         "window": {"tumbling": {"interval": "5m"}}}}},
]


class Client:
    """A boto3 client plus the raw JSON body of each response (to check against the service model)."""

    def __init__(self, port: int) -> None:
        self.boto = sitewise_client(port)
        self.raw: dict[str, Any] = {}
        self.status: dict[str, int] = {}
        self.boto.meta.events.register("after-call.iotsitewise", self._capture)

    def _capture(self, http_response: Any, model: Any, **_: Any) -> None:
        self.raw[model.name] = json.loads(http_response.content or b"{}")
        self.status[model.name] = http_response.status_code

    async def __call__(self, op: str, **kwargs: Any) -> Any:
        return await asyncio.to_thread(getattr(self.boto, op), **kwargs)

    def valid(self, operation: str) -> dict[str, Any]:
        return assert_valid_output(operation, self.raw[operation])

    async def wait(self, waiter: str, **kwargs: Any) -> None:
        await asyncio.to_thread(self.boto.get_waiter(waiter).wait, **kwargs,
                                WaiterConfig={"Delay": 1, "MaxAttempts": 3})

    async def error(self, op: str, **kwargs: Any) -> dict[str, Any]:
        with pytest.raises(botocore.exceptions.ClientError) as info:
            await self(op, **kwargs)
        return info.value.response  # type: ignore[no-any-return]


@pytest.fixture
async def api(tmp_path: Path, start_gateway: Any) -> tuple[Gateway, Client]:
    gw = await start_gateway(gateway_config(tmp_path))
    return gw, Client(gw.api_port)


async def create_pump_model(client: Client, name: str = "Pump") -> str:
    resp = await client("create_asset_model", assetModelName=name, assetModelDescription="A pump",
                        assetModelProperties=PUMP_PROPERTIES)
    return str(resp["assetModelId"])


def tqv(value: float, t: int) -> dict[str, Any]:
    return {"value": {"doubleValue": value}, "timestamp": {"timeInSeconds": t, "offsetInNanos": 0}, "quality": "GOOD"}


# --- asset models -------------------------------------------------------------------------------


async def test_create_asset_model_then_waiter_describe_and_list(api: Any) -> None:
    gw, client = api
    resp = await client("create_asset_model", assetModelName="Pump", assetModelDescription="A pump",
                        assetModelProperties=PUMP_PROPERTIES,
                        assetModelHierarchies=[{"name": "Spares", "childAssetModelId": MACHINE}])
    assert client.status["CreateAssetModel"] == 202
    client.valid("CreateAssetModel")
    assert resp["assetModelStatus"]["state"] in ("CREATING", "ACTIVE")
    model_id = resp["assetModelId"]
    assert resp["assetModelArn"].endswith(f":asset-model/{model_id}")
    await client.wait("asset_model_active", assetModelId=model_id)

    described = await client("describe_asset_model", assetModelId=model_id)
    client.valid("DescribeAssetModel")
    assert described["assetModelStatus"] == {"state": "ACTIVE"}
    assert described["assetModelDescription"] == "A pump"
    assert [p["name"] for p in described["assetModelProperties"]] == [p["name"] for p in PUMP_PROPERTIES]
    transform = next(p for p in described["assetModelProperties"] if p["name"] == "Flow l/s")
    assert transform["type"]["transform"]["expression"] == "flow / 3.6"
    assert described["assetModelHierarchies"][0]["childAssetModelId"] == MACHINE

    listed = await client("list_asset_models")
    client.valid("ListAssetModels")
    assert model_id in [m["id"] for m in listed["assetModelSummaries"]]
    assert gw.registry.model(model_id).name == "Pump"


async def test_create_asset_model_with_own_id_and_external_id(api: Any) -> None:
    _, client = api
    own = str(uuid.uuid4())
    resp = await client("create_asset_model", assetModelName="Valve", assetModelId=own,
                        assetModelExternalId="valve-model")
    assert resp["assetModelId"] == own
    described = await client("describe_asset_model", assetModelId="externalId:valve-model")
    assert described["assetModelId"] == own
    err = await client.error("create_asset_model", assetModelName="Other", assetModelId=own)
    assert err["Error"]["Code"] == "ResourceAlreadyExistsException"
    assert err["resourceId"] == own and err["resourceArn"].endswith(own)


@pytest.mark.parametrize(("kwargs", "code", "expected"), [
    ({"assetModelName": "Machine"}, "ResourceAlreadyExistsException", "Machine"),
    ({"assetModelName": "Bad", "assetModelProperties": [
        {"name": "X", "dataType": "DOUBLE", "type": {"measurement": {}}},
        {"name": "Y", "dataType": "DOUBLE", "type": {"transform": {
            "expression": "x + foo(x)", "variables": [{"name": "x", "value": {"propertyId": "X"}}]}}}]},
     "InvalidRequestException", "property 'Y': expression: unknown function 'foo' at column 5"),
    ({"assetModelName": "Bad", "assetModelProperties": [
        {"name": "Y", "dataType": "DOUBLE", "type": {"transform": {
            "expression": "2 * x", "variables": [{"name": "x", "value": {"propertyId": "Nope"}}]}}}]},
     "InvalidRequestException", "property 'Y' variable 'x': no property 'Nope'"),
    ({"assetModelName": "Bad", "assetModelProperties": [
        {"name": "Z", "dataType": "NUMBER", "type": {"measurement": {}}}]},
     "InvalidRequestException", "property 'Z': unknown dataType 'NUMBER'"),
    ({"assetModelName": "Bad", "assetModelProperties": [
        {"name": "A", "dataType": "INTEGER", "type": {"attribute": {"defaultValue": "ten"}}}]},
     "InvalidRequestException", "defaultValue 'ten' is not a INTEGER"),
    ({"assetModelName": "Bad", "assetModelProperties": [
        {"name": "X", "dataType": "DOUBLE", "type": {"measurement": {}}},
        {"name": "M", "dataType": "DOUBLE", "type": {"metric": {
            "expression": "avg(X)", "variables": [{"name": "X", "value": {"propertyId": "X"}}],
            "window": {"tumbling": {"interval": "1m"}}}}}]},
     "InvalidRequestException", "property 'M' variable 'X': name must match"),
    ({"assetModelName": "Bad", "assetModelHierarchies": [
        {"name": "H", "childAssetModelId": "0b4e3c3e-1111-4a4a-9b9b-123456789abc"}]},
     "ResourceNotFoundException", "0b4e3c3e-1111-4a4a-9b9b-123456789abc"),
    ({"assetModelName": "Bad", "assetModelHierarchies": [{"name": "H", "childAssetModelId": "Machine-by-name"}]},
     "InvalidRequestException", "neither a UUID nor externalId"),
], ids=["duplicate-name", "bad-expression", "unknown-variable-property", "bad-data-type", "bad-default",
        "bad-variable-name", "unknown-child-model", "child-model-by-name"])
async def test_create_asset_model_errors(api: Any, kwargs: dict[str, Any], code: str, expected: str) -> None:
    gw, client = api
    before = len(gw.registry.models())
    err = await client.error("create_asset_model", **kwargs)
    assert err["Error"]["Code"] == code
    assert expected in err["Error"]["Message"]
    if code == "ResourceAlreadyExistsException":
        assert err["ResponseMetadata"]["HTTPStatusCode"] == 409
        assert err["resourceId"] == MACHINE
    assert len(gw.registry.models()) == before


# --- assets ---------------------------------------------------------------------------------------


async def test_create_asset_then_waiter_describe_and_list(api: Any) -> None:
    _, client = api
    model_id = await create_pump_model(client)
    resp = await client("create_asset", assetName="Pump 1", assetModelId=model_id, assetDescription="first pump",
                        assetExternalId="pump-1")
    assert client.status["CreateAsset"] == 202
    client.valid("CreateAsset")
    asset_id = resp["assetId"]
    await client.wait("asset_active", assetId=asset_id)
    described = await client("describe_asset", assetId="externalId:pump-1")
    client.valid("DescribeAsset")
    assert described["assetId"] == asset_id
    assert described["assetDescription"] == "first pump"
    assert [p["name"] for p in described["assetProperties"]] == [p["name"] for p in PUMP_PROPERTIES]
    assert all("alias" not in p for p in described["assetProperties"])
    listed = await client("list_assets", assetModelId=model_id)
    client.valid("ListAssets")
    assert [a["id"] for a in listed["assetSummaries"]] == [asset_id]
    top = await client("list_assets", filter="TOP_LEVEL")
    assert asset_id in [a["id"] for a in top["assetSummaries"]]


async def test_create_asset_errors(api: Any) -> None:
    _, client = api
    err = await client.error("create_asset", assetName="X", assetModelId="0b4e3c3e-1111-4a4a-9b9b-123456789abc")
    assert err["Error"]["Code"] == "ResourceNotFoundException"
    err = await client.error("create_asset", assetName="Press1 again", assetModelId=MACHINE, assetId=PRESS1)
    assert err["Error"]["Code"] == "ResourceAlreadyExistsException"
    assert err["resourceId"] == PRESS1
    await client("create_asset", assetName="P", assetModelId=MACHINE, assetExternalId="ext-p")
    err = await client.error("create_asset", assetName="Q", assetModelId=MACHINE, assetExternalId="ext-p")
    assert err["Error"]["Code"] == "ResourceAlreadyExistsException"


async def test_client_token_makes_creates_idempotent(api: Any) -> None:
    gw, client = api
    token = str(uuid.uuid4())
    first = await client("create_asset", assetName="Pump A", assetModelId=MACHINE, clientToken=token)
    again = await client("create_asset", assetName="Pump A", assetModelId=MACHINE, clientToken=token)
    assert again["assetId"] == first["assetId"]
    assert [a.name for a in gw.registry.assets()].count("Pump A") == 1
    err = await client.error("create_asset", assetName="Pump B", assetModelId=MACHINE, clientToken=token)
    assert err["Error"]["Code"] == "InvalidRequestException"
    assert "clientToken" in err["Error"]["Message"]
    # without a token (botocore fills a fresh one each call) the same body creates another asset
    await client("create_asset", assetName="Pump A", assetModelId=MACHINE)
    assert [a.name for a in gw.registry.assets()].count("Pump A") == 2


# --- UpdateAssetProperty, DescribeAssetProperty --------------------------------------------------------


async def test_alias_adopts_the_stream_history_and_get_by_id_finds_it(api: Any) -> None:
    _, client = api
    alias = "/plant1/line2/press9/speed"
    values = [tqv(100.0 + i, NOW - 10 + i) for i in range(5)]
    put = await client("batch_put_asset_property_value",
                       entries=[{"entryId": "a", "propertyAlias": alias, "propertyValues": values}])
    assert put["errorEntries"] == []
    asset_id = (await client("create_asset", assetName="Press9", assetModelId=MACHINE))["assetId"]
    empty = await client("get_asset_property_value", assetId=asset_id, propertyId=SPEED)
    assert "propertyValue" not in empty  # nothing yet under the property's own key

    await client("update_asset_property", assetId=asset_id, propertyId=SPEED, propertyAlias=alias,
                 propertyNotificationState="ENABLED")
    assert client.status["UpdateAssetProperty"] == 200
    latest = await client("get_asset_property_value", assetId=asset_id, propertyId=SPEED)
    assert latest["propertyValue"]["value"] == {"doubleValue": 104.0}
    history = await client("get_asset_property_value_history", assetId=asset_id, propertyId=SPEED,
                           startDate=NOW - 60, endDate=NOW)
    assert [v["value"]["doubleValue"] for v in history["assetPropertyValueHistory"]] == [100.0 + i for i in range(5)]

    described = await client("describe_asset_property", assetId=asset_id, propertyId=SPEED)
    client.valid("DescribeAssetProperty")
    prop = described["assetProperty"]
    assert prop["alias"] == alias
    assert prop["notification"]["state"] == "ENABLED"
    assert prop["type"] == {"measurement": {}}
    assert prop["unit"] == "rpm"
    asset = await client("describe_asset", assetId=asset_id)
    assert next(p for p in asset["assetProperties"] if p["id"] == SPEED)["alias"] == alias

    # new values written by id now go to the alias stream too
    await client("batch_put_asset_property_value", entries=[
        {"entryId": "b", "assetId": asset_id, "propertyId": SPEED, "propertyValues": [tqv(7.0, NOW)]}])
    latest = await client("get_asset_property_value", propertyAlias=alias)
    assert latest["propertyValue"]["value"] == {"doubleValue": 7.0}


async def test_update_asset_property_alias_rules(api: Any) -> None:
    _, client = api
    asset_id = (await client("create_asset", assetName="Press9", assetModelId=MACHINE))["assetId"]
    err = await client.error("update_asset_property", assetId=asset_id, propertyId=SPEED,
                             propertyAlias="/plant1/line1/press1/speed")
    assert err["Error"]["Code"] == "InvalidRequestException"
    assert "already in use" in err["Error"]["Message"] and "Press1" in err["Error"]["Message"]

    await client("update_asset_property", assetId=asset_id, propertyId=SPEED, propertyAlias="/x/speed",
                 propertyUnit="rev/min")
    prop = (await client("describe_asset_property", assetId=asset_id, propertyId=SPEED))["assetProperty"]
    assert (prop["alias"], prop["unit"], prop["notification"]["state"]) == ("/x/speed", "rev/min", "DISABLED")
    # SiteWise overwrites: omitting propertyAlias removes the alias (and the unit goes back to the model's)
    await client("update_asset_property", assetId=asset_id, propertyId=SPEED)
    prop = (await client("describe_asset_property", assetId=asset_id, propertyId=SPEED))["assetProperty"]
    assert "alias" not in prop and prop["unit"] == "rpm"
    # the freed alias can go to another property
    await client("update_asset_property", assetId=PRESS1, propertyId=SPEED, propertyAlias="/x/speed")

    err = await client.error("update_asset_property", assetId=asset_id,
                             propertyId="0b4e3c3e-1111-4a4a-9b9b-123456789abc", propertyAlias="/y")
    assert err["Error"]["Code"] == "ResourceNotFoundException"
    err = await client.error("describe_asset_property", assetId="0b4e3c3e-1111-4a4a-9b9b-123456789abc",
                             propertyId=SPEED)
    assert err["Error"]["Code"] == "ResourceNotFoundException"


# --- hierarchies --------------------------------------------------------------------------------------


async def test_associate_list_and_disassociate(api: Any) -> None:
    _, client = api
    line2 = (await client("create_asset", assetName="Line 2", assetModelId=LINE))["assetId"]
    press9 = (await client("create_asset", assetName="Press9", assetModelId=MACHINE))["assetId"]
    await client("associate_assets", assetId=line2, hierarchyId=MACHINES_HIERARCHY, childAssetId=press9)
    children = await client("list_associated_assets", assetId=line2, hierarchyId=MACHINES_HIERARCHY,
                            traversalDirection="CHILD")
    client.valid("ListAssociatedAssets")
    assert [a["id"] for a in children["assetSummaries"]] == [press9]
    parent = await client("list_associated_assets", assetId=press9, traversalDirection="PARENT")
    assert [a["id"] for a in parent["assetSummaries"]] == [line2]
    top = await client("list_assets", filter="TOP_LEVEL")
    assert press9 not in [a["id"] for a in top["assetSummaries"]]

    err = await client.error("associate_assets", assetId=line2, hierarchyId=MACHINES_HIERARCHY, childAssetId=press9)
    assert err["Error"]["Code"] == "ResourceAlreadyExistsException"
    err = await client.error("associate_assets", assetId=line2, hierarchyId=MACHINES_HIERARCHY, childAssetId=PRESS1)
    assert err["Error"]["Code"] == "InvalidRequestException" and "one parent" in err["Error"]["Message"]
    err = await client.error("associate_assets", assetId=line2, hierarchyId=MACHINES_HIERARCHY, childAssetId=LINE1)
    assert err["Error"]["Code"] == "InvalidRequestException" and "asset model" in err["Error"]["Message"]
    err = await client.error("associate_assets", assetId=line2, hierarchyId="Machines-by-name", childAssetId=press9)
    assert err["Error"]["Code"] == "InvalidRequestException"
    err = await client.error("associate_assets", assetId=line2, hierarchyId=str(uuid.uuid4()), childAssetId=press9)
    assert err["Error"]["Code"] == "ResourceNotFoundException"

    await client("disassociate_assets", assetId=line2, hierarchyId=MACHINES_HIERARCHY, childAssetId=press9)
    children = await client("list_associated_assets", assetId=line2, hierarchyId=MACHINES_HIERARCHY)
    assert children["assetSummaries"] == []
    err = await client.error("disassociate_assets", assetId=line2, hierarchyId=MACHINES_HIERARCHY,
                             childAssetId=press9)
    assert err["Error"]["Code"] == "ResourceNotFoundException"


async def test_associations_refuse_cycles(api: Any) -> None:
    _, client = api
    own = str(uuid.uuid4())
    await client("create_asset_model", assetModelName="Area", assetModelId=own,
                 assetModelHierarchies=[{"name": "Sub-areas", "childAssetModelId": own}])
    hierarchy = (await client("describe_asset_model", assetModelId=own))["assetModelHierarchies"][0]["id"]
    a, b, c = [(await client("create_asset", assetName=n, assetModelId=own))["assetId"] for n in "ABC"]
    await client("associate_assets", assetId=a, hierarchyId=hierarchy, childAssetId=b)
    await client("associate_assets", assetId=b, hierarchyId=hierarchy, childAssetId=c)
    err = await client.error("associate_assets", assetId=c, hierarchyId=hierarchy, childAssetId=a)
    assert err["Error"]["Code"] == "InvalidRequestException" and "cycle" in err["Error"]["Message"]
    err = await client.error("associate_assets", assetId=a, hierarchyId=hierarchy, childAssetId=a)
    assert err["Error"]["Code"] == "InvalidRequestException" and "cycle" in err["Error"]["Message"]
    parents = await client("list_associated_assets", assetId=c, traversalDirection="PARENT")
    assert [x["id"] for x in parents["assetSummaries"]] == [b]


# --- deletes --------------------------------------------------------------------------------------


async def test_delete_asset_and_model(api: Any) -> None:
    gw, client = api
    model_id = await create_pump_model(client)
    asset_id = (await client("create_asset", assetName="Pump 1", assetModelId=model_id))["assetId"]

    err = await client.error("delete_asset_model", assetModelId=model_id)
    assert err["Error"]["Code"] == "ConflictingOperationException" and err["resourceId"] == model_id
    err = await client.error("delete_asset", assetId=PRESS1)
    assert err["Error"]["Code"] == "InvalidRequestException" and "plant.json" in err["Error"]["Message"]

    resp = await client("delete_asset", assetId=asset_id)
    assert client.status["DeleteAsset"] == 202
    client.valid("DeleteAsset")
    assert resp["assetStatus"]["state"] == "DELETING"
    await client.wait("asset_not_exists", assetId=asset_id)

    resp = await client("delete_asset_model", assetModelId=model_id)
    client.valid("DeleteAssetModel")
    await client.wait("asset_model_not_exists", assetModelId=model_id)
    assert all(m.id != model_id for m in gw.registry.models())


async def test_delete_refuses_an_associated_asset(api: Any) -> None:
    _, client = api
    line2 = (await client("create_asset", assetName="Line 2", assetModelId=LINE))["assetId"]
    press9 = (await client("create_asset", assetName="Press9", assetModelId=MACHINE))["assetId"]
    await client("associate_assets", assetId=line2, hierarchyId=MACHINES_HIERARCHY, childAssetId=press9)
    for asset_id in (line2, press9):
        err = await client.error("delete_asset", assetId=asset_id)
        assert err["Error"]["Code"] == "ConflictingOperationException"
        assert err["resourceId"] == asset_id


# --- persistence -----------------------------------------------------------------------------------


async def test_changes_survive_a_restart(tmp_path: Path) -> None:
    config = gateway_config(tmp_path)
    gw = Gateway(config)
    await gw.start()
    try:
        client = Client(gw.api_port)  # type: ignore[arg-type]
        model_id = await create_pump_model(client)
        pump = (await client("create_asset", assetName="Pump 1", assetModelId=model_id))["assetId"]
        flow = next(p.id for p in gw.registry.model(model_id).properties if p.name == "Flow")
        await client("update_asset_property", assetId=pump, propertyId=flow, propertyAlias="/plant1/pump1/flow")
        line2 = (await client("create_asset", assetName="Line 2", assetModelId=LINE))["assetId"]
        # changes to the configuration's objects: an alias on Press1, Press1 moved from Line 1 to Line 2
        await client("update_asset_property", assetId=PRESS1, propertyId=SPEED, propertyAlias="/renamed/speed")
        await client("disassociate_assets", assetId=LINE1, hierarchyId=MACHINES_HIERARCHY, childAssetId=PRESS1)
        await client("associate_assets", assetId=line2, hierarchyId=MACHINES_HIERARCHY, childAssetId=PRESS1)
        doomed = (await client("create_asset", assetName="Doomed", assetModelId=MACHINE))["assetId"]
        await client("delete_asset", assetId=doomed)
        before = {
            "model": await client("describe_asset_model", assetModelId=model_id),
            "pump": await client("describe_asset", assetId=pump),
            "press1": await client("describe_asset", assetId=PRESS1),
            "line2": await client("list_associated_assets", assetId=line2, hierarchyId=MACHINES_HIERARCHY),
            "line1": await client("list_associated_assets", assetId=LINE1, hierarchyId=MACHINES_HIERARCHY),
        }
    finally:
        await gw.stop()
    folder = config.gateway.data_dir / "models"
    assert (folder / "asset-models" / f"{model_id}.json").is_file()
    assert sorted(p.stem for p in (folder / "assets").glob("*.json")) == sorted([pump, line2, PRESS1])
    assert not list(folder.rglob(".*.tmp"))

    gw = Gateway(config)
    await gw.start()
    try:
        client = Client(gw.api_port)  # type: ignore[arg-type]
        after = {
            "model": await client("describe_asset_model", assetModelId=model_id),
            "pump": await client("describe_asset", assetId=pump),
            "press1": await client("describe_asset", assetId=PRESS1),
            "line2": await client("list_associated_assets", assetId=line2, hierarchyId=MACHINES_HIERARCHY),
            "line1": await client("list_associated_assets", assetId=LINE1, hierarchyId=MACHINES_HIERARCHY),
        }
        err = await client.error("describe_asset", assetId=doomed)
        assert err["Error"]["Code"] == "ResourceNotFoundException"
        # the alias set before the restart still maps the stream onto the property
        assert gw.registry.property_by_alias("/plant1/pump1/flow").asset_id == pump
        err = await client.error("delete_asset", assetId=PRESS1)  # still the configuration's asset
        assert err["Error"]["Code"] == "InvalidRequestException"
    finally:
        await gw.stop()
    for value in [*before.values(), *after.values()]:
        value.pop("ResponseMetadata")
    # the configuration's assets (no dates in their file) are dated by each start; the rest keeps its dates
    for key in ("line1",):
        before[key] = [a["id"] for a in before[key]["assetSummaries"]]
        after[key] = [a["id"] for a in after[key]["assetSummaries"]]
    assert after == before
    assert PRESS1 in [a["id"] for a in after["line2"]["assetSummaries"]]
    assert PRESS1 not in after["line1"]
