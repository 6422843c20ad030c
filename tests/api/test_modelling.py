"""Modelling reads and writes over boto3 and HTTP: model properties, asset relationships, composite models,
UpdateAsset and UpdateAssetModel, with paging and error cases."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.api.test_control_plane import LINE, LINE1, MACHINE, PRESS1, Client, api

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
