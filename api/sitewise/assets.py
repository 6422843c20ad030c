"""SiteWise control-plane reads over the asset registry: assets, asset models, properties and hierarchies.

The writes (CreateAssetModel, CreateAsset, UpdateAssetProperty, AssociateAssets...) are in
``control.py``; this router includes them, so ``create_app`` mounts the whole control plane.
The bodies are ``render``'s; lists are paged here, by offset.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from api.backend import BackendDep
from api.sitewise import render
from api.sitewise.control import router as control_router
from api.sitewise.paging import offset_page, page_size

router = APIRouter(tags=["SiteWise control plane"])
router.include_router(control_router)

MAX_LIST_RESULTS = 250
DEFAULT_LIST_RESULTS = 50


def _page(items: list[dict[str, Any]], key: str, next_token: str | None, max_results: int | None) -> dict[str, Any]:
    return offset_page(items, key, next_token, page_size(max_results, DEFAULT_LIST_RESULTS, MAX_LIST_RESULTS))


@router.get("/assets", summary="ListAssets")
async def list_assets(
    backend: BackendDep,
    assetModelId: str | None = None,
    filter: str | None = None,
    nextToken: str | None = None,
    maxResults: int | None = None,
) -> dict[str, Any]:
    items = render.list_assets(backend.registry, assetModelId, filter or "ALL")
    return _page(items, "assetSummaries", nextToken, maxResults)


@router.get("/assets/{assetId}", summary="DescribeAsset")
async def describe_asset(backend: BackendDep, assetId: str, excludeProperties: bool = False) -> dict[str, Any]:
    return render.describe_asset(backend.registry, assetId, exclude_properties=excludeProperties)


@router.get("/asset-models", summary="ListAssetModels")
async def list_asset_models(
    backend: BackendDep,
    assetModelTypes: list[str] | None = Query(default=None),  # noqa: B008
    nextToken: str | None = None,
    maxResults: int | None = None,
) -> dict[str, Any]:
    items = render.list_asset_models(backend.registry, assetModelTypes)
    return _page(items, "assetModelSummaries", nextToken, maxResults)


@router.get("/asset-models/{assetModelId}", summary="DescribeAssetModel")
async def describe_asset_model(backend: BackendDep, assetModelId: str,
                               excludeProperties: bool = False) -> dict[str, Any]:
    return render.describe_asset_model(backend.registry, assetModelId, exclude_properties=excludeProperties)


@router.get("/assets/{assetId}/hierarchies", summary="ListAssociatedAssets")
async def list_associated_assets(
    backend: BackendDep,
    assetId: str,
    hierarchyId: str | None = None,
    traversalDirection: str | None = None,
    nextToken: str | None = None,
    maxResults: int | None = None,
) -> dict[str, Any]:
    items = render.list_associated_assets(backend.registry, assetId, hierarchyId, traversalDirection or "CHILD")
    return _page(items, "assetSummaries", nextToken, maxResults)


@router.get("/assets/{assetId}/properties/{propertyId}", summary="DescribeAssetProperty")
async def describe_asset_property(backend: BackendDep, assetId: str, propertyId: str) -> dict[str, Any]:
    return render.describe_asset_property(backend.registry, assetId, propertyId)


@router.get("/assets/{assetId}/properties", summary="ListAssetProperties")
async def list_asset_properties(backend: BackendDep, assetId: str, filter: str | None = None,
                                nextToken: str | None = None, maxResults: int | None = None) -> dict[str, Any]:
    items = render.list_asset_properties(backend.registry, assetId, filter or "BASE")
    return _page(items, "assetPropertySummaries", nextToken, maxResults)


@router.get("/asset-models/{assetModelId}/properties", summary="ListAssetModelProperties")
async def list_asset_model_properties(backend: BackendDep, assetModelId: str, filter: str | None = None,
                                      nextToken: str | None = None, maxResults: int | None = None) -> dict[str, Any]:
    items = render.list_asset_model_properties(backend.registry, assetModelId, filter or "BASE")
    return _page(items, "assetModelPropertySummaries", nextToken, maxResults)


@router.get("/assets/{assetId}/assetRelationships", summary="ListAssetRelationships")
async def list_asset_relationships(backend: BackendDep, assetId: str, traversalType: str,
                                   nextToken: str | None = None, maxResults: int | None = None) -> dict[str, Any]:
    items = render.list_asset_relationships(backend.registry, assetId, traversalType)
    return _page(items, "assetRelationshipSummaries", nextToken, maxResults)


@router.get("/asset-models/{assetModelId}/composite-models", summary="ListAssetModelCompositeModels")
async def list_asset_model_composite_models(backend: BackendDep, assetModelId: str, nextToken: str | None = None,
                                            maxResults: int | None = None) -> dict[str, Any]:
    items = render.list_asset_model_composite_models(backend.registry, assetModelId)
    return _page(items, "assetModelCompositeModelSummaries", nextToken, maxResults)


@router.get("/asset-models/{assetModelId}/composite-models/{assetModelCompositeModelId}",
            summary="DescribeAssetModelCompositeModel")
async def describe_asset_model_composite_model(backend: BackendDep, assetModelId: str,
                                               assetModelCompositeModelId: str) -> dict[str, Any]:
    return render.describe_asset_model_composite_model(backend.registry, assetModelId, assetModelCompositeModelId)


@router.get("/assets/{assetId}/composite-models/{assetCompositeModelId}", summary="DescribeAssetCompositeModel")
async def describe_asset_composite_model(backend: BackendDep, assetId: str,
                                         assetCompositeModelId: str) -> dict[str, Any]:
    return render.describe_asset_composite_model(backend.registry, assetId, assetCompositeModelId)
