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
