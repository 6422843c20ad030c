"""Operations routes: the publishers' state and their dead letters.

    GET  /publishers                       every destination's state, backlog, rates and errors
    GET  /deadletters?publisher=&reason=&alias=&state=&limit=
    POST /deadletters/replay               {"publisher", "reason", "alias", "state", "ids", "rewriteAlias"}

A replay marks the matching dead letters (``alias`` is a glob on the stream; ``reason`` a
substring) for sending again, under ``rewriteAlias`` if given, and wakes the publisher, which
sends them, removes the delivered ones and dead-letters anew what is still refused. POST needs
the API token when one is configured (the app's write-token middleware).
"""

from __future__ import annotations

from typing import Any, Protocol

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from sitewise_edge.errors import ApiError

router = APIRouter(tags=["operations"])


class OpsBackend(Protocol):
    def status(self) -> dict[str, Any]: ...
    async def dead_letters(self, publisher: str | None, reason: str | None, alias: str | None,
                           state: str | None) -> list[dict[str, Any]]: ...
    async def replay_dead_letters(self, publisher: str | None, reason: str | None, alias: str | None,
                                  state: str | None, ids: list[str] | None,
                                  rewrite_alias: str | None) -> dict[str, Any]: ...


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    publisher: str | None = None
    reason: str | None = None
    alias: str | None = None
    state: str | None = None
    ids: list[str] | None = None
    rewrite_alias: str | None = Field(default=None, alias="rewriteAlias", min_length=1, max_length=2048)


def _ops(request: Request) -> OpsBackend:
    backend = request.app.state.backend
    if not hasattr(backend, "dead_letters"):
        raise ApiError("ResourceNotFoundException", "this gateway has no publishers")
    return backend  # type: ignore[no-any-return]


@router.get("/publishers", summary="State, backlog, rates and errors of every destination")
async def publishers(request: Request) -> dict[str, Any]:
    return {"publishers": request.app.state.backend.status().get("publishers", {})}


@router.get("/deadletters", summary="Values a destination refused (or parked), with the reason")
async def list_dead_letters(
    request: Request,
    publisher: str | None = None,
    reason: str | None = Query(default=None, description="a substring of the reason"),
    alias: str | None = Query(default=None, description="a glob on the alias (or asset:<assetId>/<propertyId>)"),
    state: str | None = Query(default=None, pattern="^(dead|parked|replay)$"),
    limit: int = Query(default=1000, ge=1, le=100_000),
) -> dict[str, Any]:
    records = await _ops(request).dead_letters(publisher, reason, alias, state)
    return {"deadLetters": records[:limit], "total": len(records),
            "values": sum(len(r["entry"].get("propertyValues", ())) for r in records)}


@router.post("/deadletters/replay", summary="Send dead letters again, optionally under another alias")
async def replay_dead_letters(request: Request, body: ReplayRequest) -> dict[str, Any]:
    if body.rewrite_alias and body.alias is None and body.ids is None:
        raise ApiError("InvalidRequestException", "rewriteAlias needs alias or ids: say which records to rewrite")
    return await _ops(request).replay_dead_letters(body.publisher, body.reason, body.alias, body.state, body.ids,
                                                   body.rewrite_alias)
