"""SiteWise control-plane writes: create, update, associate and delete asset models and assets.

Each route parses the request, hands the backend a pure function ``registry -> Change`` (the
registry builds the new, immutable registry; ``render`` the response body) and answers with what
the backend returns. The backend applies one change at a time, persists it, then swaps its
registry whole: readers never see half a change. Status codes, members and error codes are
botocore's ``iotsitewise`` model: 202 for creates and deletes, 200 otherwise, and
``ResourceAlreadyExistsException`` / ``ConflictingOperationException`` (409) name the resource
(the registry raises ``ModelExists`` / ``ModelInUse``; the app's handler maps them).

``clientToken`` makes a request idempotent: the same token with the same request answers
what the first one answered; with a different request it is refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.backend import Backend, BackendDep
from api.sitewise import render
from api.sitewise.requests import json_body
from asset_models.registry import Change, Registry
from sitewise_edge.errors import ApiError

router = APIRouter(tags=["SiteWise control plane"])

CLIENT_TOKEN = re.compile(r"^\S{36,64}$")
Answer = Callable[[Change], dict[str, Any]]


async def apply_change(request: Request, backend: Backend, operation: str, change: Callable[[Registry], Change],
                 body: dict[str, Any], *, status: int = 200, token: str | None = None,
                 answer: Answer | None = None) -> JSONResponse:
    """Run ``change`` on the backend's registry and answer with ``answer(change)`` (or ``{}``)."""
    token = token if token is not None else body.get("clientToken")
    if token is not None and not (isinstance(token, str) and CLIENT_TOKEN.match(token)):
        raise ApiError("InvalidRequestException", "clientToken: must be 36 to 64 characters without spaces")
    query = sorted((k, v) for k, v in request.query_params.multi_items() if k != "clientToken")
    fingerprint = json.dumps([operation, request.url.path, {k: v for k, v in body.items() if k != "clientToken"},
                              *([query] if query else [])], sort_keys=True, default=str)

    def answered(registry: Registry) -> Change:
        result = change(registry)
        return result.answered(answer(result) if answer is not None else {})

    response = await backend.change_models(answered, token, fingerprint)
    return JSONResponse(response, status_code=status)


@router.post("/asset-models", summary="CreateAssetModel", status_code=202)
async def create_asset_model(request: Request, backend: BackendDep) -> JSONResponse:
    body = await json_body(request, empty_ok=True)
    now = backend.clock.time()
    return await apply_change(request, backend, "CreateAssetModel", lambda r: r.create_asset_model(body, now), body,
                        status=202, answer=render.asset_model_created)


@router.delete("/asset-models/{assetModelId}", summary="DeleteAssetModel", status_code=202)
async def delete_asset_model(request: Request, backend: BackendDep, assetModelId: str,
                             clientToken: str | None = None) -> JSONResponse:
    return await apply_change(request, backend, "DeleteAssetModel", lambda r: r.delete_asset_model(assetModelId), {},
                        status=202, token=clientToken, answer=render.asset_model_deleting)


@router.put("/asset-models/{assetModelId}", summary="UpdateAssetModel", status_code=202)
async def update_asset_model(request: Request, backend: BackendDep, assetModelId: str) -> JSONResponse:
    body = await json_body(request, empty_ok=True)
    now = backend.clock.time()
    return await apply_change(request, backend, "UpdateAssetModel",
                              lambda r: r.update_asset_model(assetModelId, body, now), body, status=202,
                              answer=render.asset_model_updating)


@router.put("/assets/{assetId}", summary="UpdateAsset", status_code=202)
async def update_asset(request: Request, backend: BackendDep, assetId: str) -> JSONResponse:
    body = await json_body(request, empty_ok=True)
    now = backend.clock.time()
    return await apply_change(request, backend, "UpdateAsset", lambda r: r.update_asset(assetId, body, now), body,
                              status=202, answer=render.asset_updating)


@router.post("/assets", summary="CreateAsset", status_code=202)
async def create_asset(request: Request, backend: BackendDep) -> JSONResponse:
    body = await json_body(request, empty_ok=True)
    now = backend.clock.time()
    return await apply_change(request, backend, "CreateAsset", lambda r: r.create_asset(body, now), body,
                        status=202, answer=render.asset_created)


@router.delete("/assets/{assetId}", summary="DeleteAsset", status_code=202)
async def delete_asset(request: Request, backend: BackendDep, assetId: str,
                       clientToken: str | None = None) -> JSONResponse:
    return await apply_change(request, backend, "DeleteAsset", lambda r: r.delete_asset(assetId), {},
                        status=202, token=clientToken, answer=render.asset_deleting)


@router.put("/assets/{assetId}/properties/{propertyId}", summary="UpdateAssetProperty")
async def update_asset_property(request: Request, backend: BackendDep, assetId: str,
                                propertyId: str) -> JSONResponse:
    body = await json_body(request, empty_ok=True)
    now = backend.clock.time()
    return await apply_change(request, backend, "UpdateAssetProperty",
                        lambda r: r.update_asset_property(assetId, propertyId, body, now), body)


@router.post("/assets/{assetId}/associate", summary="AssociateAssets")
async def associate_assets(request: Request, backend: BackendDep, assetId: str) -> JSONResponse:
    body = await json_body(request, empty_ok=True)
    return await apply_change(request, backend, "AssociateAssets", lambda r: r.associate_assets(assetId, body), body)


@router.post("/assets/{assetId}/disassociate", summary="DisassociateAssets")
async def disassociate_assets(request: Request, backend: BackendDep, assetId: str) -> JSONResponse:
    body = await json_body(request, empty_ok=True)
    return await apply_change(request, backend, "DisassociateAssets", lambda r: r.disassociate_assets(assetId, body),
                        body)
