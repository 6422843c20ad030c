"""SiteWise control-plane reads over the asset registry: assets, asset models, properties and hierarchies.

The writes (CreateAssetModel, CreateAsset, UpdateAssetProperty, AssociateAssets...) are in
``control.py``; this router includes them, so ``create_app`` mounts the whole control plane.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from api.sitewise import render
from api.sitewise.control import router as control_router
from api.sitewise.data import decode_token, encode_token, invalid

router = APIRouter(tags=["SiteWise control plane"])
router.include_router(control_router)

MAX_LIST_RESULTS = 250
DEFAULT_LIST_RESULTS = 50


def _page(items: list[dict[str, Any]], key: str, next_token: str | None, max_results: int | None) -> dict[str, Any]:
    limit = DEFAULT_LIST_RESULTS if max_results is None else max_results
    if not 1 <= limit <= MAX_LIST_RESULTS:
        raise invalid(f"maxResults: must be 1 to {MAX_LIST_RESULTS}, got {max_results}")
    offset = decode_token(next_token)
    out: dict[str, Any] = {key: items[offset:offset + limit]}
    if offset + limit < len(items):
        out["nextToken"] = encode_token(offset + limit)
    return out


def _registry(request: Request) -> Any:
    return request.app.state.backend.registry


@router.get("/assets", summary="ListAssets")
async def list_assets(
    request: Request,
    assetModelId: str | None = None,
    filter: str | None = None,
    nextToken: str | None = None,
    maxResults: int | None = None,
) -> dict[str, Any]:
    items = render.list_assets(_registry(request), assetModelId, filter or "ALL")
    return _page(items, "assetSummaries", nextToken, maxResults)


@router.get("/assets/{assetId}", summary="DescribeAsset")
async def describe_asset(request: Request, assetId: str, excludeProperties: bool = False) -> dict[str, Any]:
    return render.describe_asset(_registry(request), assetId, exclude_properties=excludeProperties)


@router.get("/asset-models", summary="ListAssetModels")
async def list_asset_models(
    request: Request,
    assetModelTypes: list[str] | None = Query(default=None),  # noqa: B008
    nextToken: str | None = None,
    maxResults: int | None = None,
) -> dict[str, Any]:
    items = render.list_asset_models(_registry(request), assetModelTypes)
    return _page(items, "assetModelSummaries", nextToken, maxResults)


@router.get("/asset-models/{assetModelId}", summary="DescribeAssetModel")
async def describe_asset_model(request: Request, assetModelId: str, excludeProperties: bool = False) -> dict[str, Any]:
    return render.describe_asset_model(_registry(request), assetModelId, exclude_properties=excludeProperties)


@router.get("/assets/{assetId}/hierarchies", summary="ListAssociatedAssets")
async def list_associated_assets(
    request: Request,
    assetId: str,
    hierarchyId: str | None = None,
    traversalDirection: str | None = None,
    nextToken: str | None = None,
    maxResults: int | None = None,
) -> dict[str, Any]:
    items = render.list_associated_assets(_registry(request), assetId, hierarchyId, traversalDirection or "CHILD")
    return _page(items, "assetSummaries", nextToken, maxResults)


@router.get("/assets/{assetId}/properties/{propertyId}", summary="DescribeAssetProperty")
async def describe_asset_property(request: Request, assetId: str, propertyId: str) -> dict[str, Any]:
    return render.describe_asset_property(_registry(request), assetId, propertyId)
