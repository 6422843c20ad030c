"""Modelling reads and writes over boto3 and HTTP: model properties, asset relationships, composite models,
UpdateAsset and UpdateAssetModel, with paging and error cases."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from tests.api.test_control_plane import LINE, LINE1, MACHINE, NOW, PRESS1, Client, api, create_pump_model, tqv
from tests.conftest import eventually

__all__ = ["api"]


async def pages(client: Client, op: str, key: str, **kwargs: Any) -> list[list[dict[str, Any]]]:
    paginator = client.boto.get_paginator(op)
    return [p[key] for p in await asyncio.to_thread(lambda: list(paginator.paginate(**kwargs)))]


@pytest.mark.parametrize(("op", "ref", "describe", "members", "parent"), [
    ("list_asset_model_properties", {"assetModelId": MACHINE}, "describe_asset_model", "assetModelProperties",
     {"id": MACHINE, "name": "Machine"}),
    ("list_asset_properties", {"assetId": PRESS1}, "describe_asset", "assetProperties",
     {"id": PRESS1, "name": "Press1"}),
], ids=["model", "asset"])
async def test_list_properties_pages_and_filters(api: Any, op: str, ref: dict[str, str], describe: str,
                                                  members: str, parent: dict[str, str]) -> None:
    _, client = api
    described = await client(describe, **ref)
    name = "".join(w.title() for w in op.split("_"))
    key = "assetModelPropertySummaries" if "model" in op else "assetPropertySummaries"
    listed = await client(op, **ref, filter="ALL")
    client.valid(name)
    summaries = listed[key]
    assert [s["id"] for s in summaries] == [p["id"] for p in described[members]]
    for s, p in zip(summaries, described[members], strict=True):
        assert s["path"] == [parent, {"id": p["id"], "name": p["name"]}]
        assert s.get("alias") == p.get("alias") and ("type" not in s or s["type"] == p["type"])
    paged = await pages(client, op, key, **ref, PaginationConfig={"PageSize": 10})
    assert [len(p) for p in paged] == [10, 10, len(summaries) - 20]
    assert [s["id"] for p in paged for s in p] == [s["id"] for s in summaries]
    err = await client.error(op, **ref, filter="SOME")
    assert err["Error"]["Code"] == "InvalidRequestException" and "Valid values are ALL and BASE" in \
        err["Error"]["Message"]
    err = await client.error(op, **{k: LINE1 if "model" in op else MACHINE for k in ref})
    assert err["Error"]["Code"] == "ResourceNotFoundException"


async def test_list_asset_relationships_is_the_path_to_the_root(api: Any) -> None:
    gw, client = api
    path = await client("list_asset_relationships", assetId=PRESS1, traversalType="PATH_TO_ROOT")
    client.valid("ListAssetRelationships")
    assert path["assetRelationshipSummaries"] == [
        {"hierarchyInfo": {"parentAssetId": LINE1, "childAssetId": PRESS1}, "relationshipType": "HIERARCHY"}]
    root = await client("list_asset_relationships", assetId=LINE1, traversalType="PATH_TO_ROOT")
    assert root["assetRelationshipSummaries"] == []
    err = await client.error("list_asset_relationships", assetId=PRESS1, traversalType="SIDEWAYS")
    assert err["Error"]["Code"] == "InvalidRequestException" and "PATH_TO_ROOT" in err["Error"]["Message"]
    err = await client.error("list_asset_relationships", assetId=MACHINE, traversalType="PATH_TO_ROOT")
    assert err["Error"]["Code"] == "ResourceNotFoundException"
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        r = await http.get(f"/assets/{PRESS1}/assetRelationships")  # traversalType is required
    assert r.status_code == 400 and "traversalType" in r.json()["message"]


@pytest.mark.parametrize("model", [MACHINE, LINE])
async def test_model_properties_of_each_example_model(api: Any, model: str) -> None:
    _, client = api
    listed = await client("list_asset_model_properties", assetModelId=model)
    assert listed["assetModelPropertySummaries"]
    client.valid("ListAssetModelProperties")


ALARM = {"name": "High temperature", "type": "AWS/ALARM", "description": "over 80 C", "externalId": "high-temp",
         "properties": [
             {"name": "AWS/ALARM_TYPE", "dataType": "STRING", "type": {"attribute": {"defaultValue": "IOT_EVENTS"}}},
             {"name": "AWS/ALARM_STATE", "dataType": "STRUCT", "dataTypeSpec": "AWS/ALARM_STATE",
              "type": {"measurement": {}}},
             {"name": "AWS/ALARM_SOURCE", "dataType": "STRING", "type": {"attribute": {}}}]}


async def test_composite_models_are_kept_and_described(api: Any) -> None:
    gw, client = api
    model_id = (await client("create_asset_model", assetModelName="Boiler", assetModelProperties=[
        {"name": "Temperature", "dataType": "DOUBLE", "type": {"measurement": {}}}],
        assetModelCompositeModels=[ALARM]))["assetModelId"]
    model = await client("describe_asset_model", assetModelId=model_id)
    client.valid("DescribeAssetModel")
    [composite] = model["assetModelCompositeModels"]
    assert (composite["name"], composite["type"], composite["externalId"]) == ("High temperature", "AWS/ALARM",
                                                                               "high-temp")
    assert [p["name"] for p in composite["properties"]] == [p["name"] for p in ALARM["properties"]]
    assert [p["name"] for p in model["assetModelProperties"]] == ["Temperature"]  # not the model's own

    listed = await client("list_asset_model_composite_models", assetModelId=model_id)
    client.valid("ListAssetModelCompositeModels")
    assert [c["id"] for c in listed["assetModelCompositeModelSummaries"]] == [composite["id"]]
    described = await client("describe_asset_model_composite_model", assetModelId=model_id,
                             assetModelCompositeModelId="externalId:high-temp")
    client.valid("DescribeAssetModelCompositeModel")
    assert described["assetModelCompositeModelProperties"] == composite["properties"]

    asset_id = (await client("create_asset", assetName="Boiler 1", assetModelId=model_id))["assetId"]
    asset = await client("describe_asset", assetId=asset_id)
    client.valid("DescribeAsset")
    assert [c["id"] for c in asset["assetCompositeModels"]] == [composite["id"]]
    on_asset = await client("describe_asset_composite_model", assetId=asset_id,
                            assetCompositeModelId=composite["id"])
    client.valid("DescribeAssetCompositeModel")
    assert on_asset["assetCompositeModelType"] == "AWS/ALARM"
    assert on_asset["assetCompositeModelPath"] == [{"id": asset_id, "name": "Boiler 1"},
                                                   {"id": composite["id"], "name": "High temperature"}]
    base = await client("list_asset_properties", assetId=asset_id)
    every = await client("list_asset_properties", assetId=asset_id, filter="ALL")
    assert len(base["assetPropertySummaries"]) == 1 and len(every["assetPropertySummaries"]) == 4
    assert {s.get("assetCompositeModelId") for s in every["assetPropertySummaries"][1:]} == {composite["id"]}
    model_every = await client("list_asset_model_properties", assetModelId=model_id, filter="ALL")
    assert model_every["assetModelPropertySummaries"][3]["path"][1] == {"id": composite["id"],
                                                                        "name": "High temperature"}

    err = await client.error("describe_asset_composite_model", assetId=asset_id, assetCompositeModelId=MACHINE)
    assert err["Error"]["Code"] == "ResourceNotFoundException" and "Composite model" in err["Error"]["Message"]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:  # botocore would refuse it
        r = await http.post("/asset-models", json={"assetModelName": "Bad boiler",
                                                   "assetModelCompositeModels": [{"name": "No type"}]})
    assert r.status_code == 400 and r.headers["x-amzn-ErrorType"] == "InvalidRequestException"
    assert "composite model 'No type': missing required member 'type'" in r.json()["message"]
    assert gw.registry.model(model_id).composite_models[0].name == "High temperature"


def test_a_composite_model_survives_the_files_the_gateway_writes() -> None:
    """The gateway persists DescribeAssetModel bodies and loads them at start: composite models included."""
    from api.sitewise.render import describe_asset_model
    from asset_models.documents import build_catalog
    from asset_models.registry import Registry

    doc = {"assetModelName": "Boiler", "assetModelCompositeModels": [ALARM]}
    first = Registry(build_catalog([("boiler.json", doc)]))
    body = describe_asset_model(first, first.models()[0].id)
    again = Registry(build_catalog([("asset-model.json", body)]))
    assert again.models()[0].composite_models == first.models()[0].composite_models
    assert again.models()[0].composite_models[0].properties[1].data_type_spec == "AWS/ALARM_STATE"


# --- UpdateAsset, UpdateAssetModel ----------------------------------------------------------------


async def test_update_asset_renames_describes_and_sets_an_external_id_once(api: Any) -> None:
    _, client = api
    model_id = await create_pump_model(client)
    asset_id = (await client("create_asset", assetName="Pump 1", assetModelId=model_id))["assetId"]
    other = (await client("create_asset", assetName="Pump 2", assetModelId=model_id, assetExternalId="p2"))["assetId"]
    resp = await client("update_asset", assetId=asset_id, assetName="Feed pump", assetDescription="north side",
                        assetExternalId="feed-pump")
    assert client.status["UpdateAsset"] == 202 and resp["assetStatus"]["state"] == "UPDATING"
    client.valid("UpdateAsset")
    await client.wait("asset_active", assetId=asset_id)
    described = await client("describe_asset", assetId="externalId:feed-pump")
    assert (described["assetName"], described["assetDescription"]) == ("Feed pump", "north side")
    await client("update_asset", assetId=asset_id, assetName="Feed pump")  # description omitted: removed
    assert "assetDescription" not in await client("describe_asset", assetId=asset_id)
    err = await client.error("update_asset", assetId=asset_id, assetName="X", assetExternalId="other-ext")
    assert err["Error"]["Code"] == "InvalidRequestException" and "cannot change" in err["Error"]["Message"]
    err = await client.error("update_asset", assetId=other, assetName="X", assetExternalId="feed-pump")
    assert err["Error"]["Code"] == "InvalidRequestException" and "cannot change" in err["Error"]["Message"]
    third = (await client("create_asset", assetName="Pump 3", assetModelId=model_id))["assetId"]
    err = await client.error("update_asset", assetId=third, assetName="X", assetExternalId="feed-pump")
    assert err["Error"]["Code"] == "ResourceAlreadyExistsException" and err["resourceId"] == asset_id
    err = await client.error("update_asset", assetId=MACHINE, assetName="X")
    assert err["Error"]["Code"] == "ResourceNotFoundException"


async def test_update_asset_model_adds_changes_and_removes_properties(api: Any) -> None:
    gw, client = api
    model_id = await create_pump_model(client)
    asset_id = (await client("create_asset", assetName="Pump 1", assetModelId=model_id))["assetId"]
    props = {p["name"]: p for p in (await client("describe_asset_model", assetModelId=model_id))
             ["assetModelProperties"]}
    await client("update_asset_property", assetId=asset_id, propertyId=props["Flow"]["id"], propertyAlias="/p1/flow")
    flow = {**props["Flow"], "name": "Flow rate"}
    ls = {**props["Flow l/s"], "type": {"transform": {"expression": "flow * 1000 / 3600", "variables": [
        {"name": "flow", "value": {"propertyId": flow["id"]}}]}}}
    pressure = {"name": "Pressure", "dataType": "DOUBLE", "unit": "bar", "type": {"measurement": {}}}
    metric = props["Max flow"]["type"]["metric"]
    max_flow = {**props["Max flow"], "type": {"metric": {**metric, "variables": [
        {"name": "flow", "value": {"propertyId": flow["id"]}}]}}}  # it named Flow by name: now by id
    resp = await client("update_asset_model", assetModelId=model_id, assetModelName="Pump v2",
                        assetModelProperties=[flow, ls, pressure, max_flow])
    assert client.status["UpdateAssetModel"] == 202 and resp["assetModelStatus"]["state"] == "UPDATING"
    client.valid("UpdateAssetModel")
    await client.wait("asset_model_active", assetModelId=model_id)
    model = await client("describe_asset_model", assetModelId=model_id)
    assert model["assetModelName"] == "Pump v2"
    assert [p["name"] for p in model["assetModelProperties"]] == ["Flow rate", "Flow l/s", "Pressure", "Max flow"]
    asset = {p["name"]: p for p in (await client("describe_asset", assetId=asset_id))["assetProperties"]}
    assert asset["Flow rate"]["alias"] == "/p1/flow" and asset["Flow rate"]["id"] == flow["id"]
    assert "alias" not in asset["Pressure"] and "Rated flow" not in asset
    resp = await client("batch_put_asset_property_value", entries=[
        {"entryId": "e", "propertyAlias": "/p1/flow", "propertyValues": [tqv(36.0, NOW)]}])
    assert resp["errorEntries"] == []
    stream = gw.registry.stream_of(asset_id, ls["id"])
    assert await eventually(lambda: gw.store.latest(stream).column("double").to_pylist()) == [10.0]  # the new one


async def two_level_site(client: Client) -> tuple[str, str, dict[str, Any]]:
    """An API-made Farm model over a Turbine model, with one farm and one turbine associated."""
    turbine = (await client("create_asset_model", assetModelName="Turbine", assetModelProperties=[
        {"name": "Power", "dataType": "DOUBLE", "type": {"measurement": {}}},
        {"name": "Avg power", "dataType": "DOUBLE", "type": {"metric": {
            "expression": "avg(p)", "variables": [{"name": "p", "value": {"propertyId": "Power"}}],
            "window": {"tumbling": {"interval": "1m"}}}}}]))["assetModelId"]
    turbine_model = await client("describe_asset_model", assetModelId=turbine)
    avg = next(p["id"] for p in turbine_model["assetModelProperties"] if p["name"] == "Avg power")
    farm_body: dict[str, Any] = {"assetModelName": "Farm", "assetModelHierarchies": [
        {"name": "Turbines", "childAssetModelId": turbine}]}
    farm = (await client("create_asset_model", **farm_body))["assetModelId"]
    hierarchy = (await client("describe_asset_model", assetModelId=farm))["assetModelHierarchies"][0]
    farm_body["assetModelHierarchies"] = [hierarchy]
    farm_body["assetModelProperties"] = [{"name": "Farm power", "dataType": "DOUBLE", "type": {"metric": {
        "expression": "sum(p)", "variables": [{"name": "p", "value": {"propertyId": avg,
                                                                      "hierarchyId": hierarchy["id"]}}],
        "window": {"tumbling": {"interval": "1m"}}}}}]
    await client("update_asset_model", assetModelId=farm, **farm_body)
    farm_asset = (await client("create_asset", assetName="North", assetModelId=farm))["assetId"]
    turbine_asset = (await client("create_asset", assetName="T1", assetModelId=turbine))["assetId"]
    await client("associate_assets", assetId=farm_asset, hierarchyId=hierarchy["id"], childAssetId=turbine_asset)
    return farm, turbine, farm_body


async def test_update_asset_model_keeps_sitewise_rules(api: Any) -> None:
    _, client = api
    farm, turbine, farm_body = await two_level_site(client)
    turbine_props = (await client("describe_asset_model", assetModelId=turbine))["assetModelProperties"]
    power = next(p for p in turbine_props if p["name"] == "Power")

    async def refused(model_id: str, **body: Any) -> dict[str, Any]:
        err = await client.error("update_asset_model", assetModelId=model_id, **body)
        return {"code": err["Error"]["Code"], "message": err["Error"]["Message"]}

    got = await refused(turbine, assetModelName="Turbine",
                        assetModelProperties=[{**power, "dataType": "INTEGER"}, turbine_props[1]])
    assert got["code"] == "InvalidRequestException" and "its dataType and type cannot change" in got["message"]
    got = await refused(turbine, assetModelName="Turbine", assetModelProperties=[
        {**power, "type": {"attribute": {}}}, turbine_props[1]])
    assert "is a DOUBLE measurement" in got["message"] and "got DOUBLE attribute" in got["message"]
    got = await refused(turbine, assetModelName="Turbine", assetModelProperties=[power])
    assert got["code"] == "InvalidRequestException" and "reads it through a hierarchy" in got["message"]
    got = await refused(farm, **{**farm_body, "assetModelHierarchies": [], "assetModelProperties": []})
    assert got["code"] == "ConflictingOperationException" and "disassociate it first" in got["message"]
    got = await refused(turbine, assetModelName="Machine", assetModelProperties=turbine_props)
    assert got["code"] == "ResourceAlreadyExistsException"
    got = await refused(turbine, assetModelName="Turbine", assetModelProperties=[
        power, {**turbine_props[1], "type": {"metric": {**turbine_props[1]["type"]["metric"],
                                                        "expression": "avg(p) + nope(p)"}}}])
    assert got["code"] == "InvalidRequestException" and "unknown function 'nope'" in got["message"]
    got = await refused(MACHINE, assetModelName="Machine")
    assert got["code"] == "InvalidRequestException" and "defined in the configuration file" in got["message"]
    got = await refused(str(uuid.UUID(int=3)), assetModelName="Nothing")
    assert got["code"] == "ResourceNotFoundException"
    assert [p["name"] for p in (await client("describe_asset_model", assetModelId=turbine))
            ["assetModelProperties"]] == ["Power", "Avg power"]


def test_updated_models_and_their_assets_load_again(tmp_path: Any) -> None:
    """What UpdateAssetModel and UpdateAsset change is saved as the gateway saves every change, and loads again."""
    from api.sitewise.render import describe_asset, describe_asset_model
    from sitewise_edge.runtime.models import ModelStore

    store = ModelStore(tmp_path / "models")
    registry = store.open([], loaded_at=1.0)
    model = registry.create_asset_model({"assetModelName": "Valve", "assetModelProperties": [
        {"name": "Open", "dataType": "BOOLEAN", "type": {"measurement": {}}}]}, 1.0)
    store.save(model)
    asset = model.registry.create_asset({"assetName": "V1", "assetModelId": model.subject}, 2.0)
    store.save(asset)
    described = describe_asset_model(asset.registry, model.subject)
    updated = asset.registry.update_asset_model(model.subject, {
        "assetModelName": "Valve v2", "assetModelCompositeModels": [ALARM], "assetModelProperties": [
            *described["assetModelProperties"],
            {"name": "Cycles", "dataType": "INTEGER", "type": {"measurement": {}}}]},
        3.0)
    store.save(updated)
    renamed = updated.registry.update_asset(asset.subject, {"assetName": "Valve 1"}, 4.0)
    store.save(renamed)
    again = ModelStore(tmp_path / "models").open([], loaded_at=5.0)
    assert describe_asset_model(again, model.subject) == describe_asset_model(renamed.registry, model.subject)
    assert describe_asset(again, asset.subject) == describe_asset(renamed.registry, asset.subject)
    assert [p.name for p in again.asset(asset.subject).properties] == ["Open", "Cycles"]
    assert again.asset(asset.subject).name == "Valve 1"
