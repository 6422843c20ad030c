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

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from api.backend import BackendDep
from sitewise_edge.errors import ApiError

router = APIRouter(tags=["operations"])


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    publisher: str | None = None
    reason: str | None = None
    alias: str | None = None
    state: str | None = None
    ids: list[str] | None = None
    rewrite_alias: str | None = Field(default=None, alias="rewriteAlias", min_length=1, max_length=2048)


@router.get("/publishers", summary="State, backlog, rates and errors of every destination")
async def publishers(backend: BackendDep) -> dict[str, Any]:
    return {"publishers": backend.status().get("publishers", {})}


@router.get("/deadletters", summary="Values a destination refused (or parked), with the reason")
async def list_dead_letters(
    backend: BackendDep,
    publisher: str | None = None,
    reason: str | None = Query(default=None, description="a substring of the reason"),
    alias: str | None = Query(default=None, description="a glob on the alias (or asset:<assetId>/<propertyId>)"),
    state: str | None = Query(default=None, pattern="^(dead|parked|replay)$"),
    limit: int = Query(default=1000, ge=1, le=100_000),
) -> dict[str, Any]:
    records = await backend.dead_letters(publisher, reason, alias, state)
    return {"deadLetters": records[:limit], "total": len(records),
            "values": sum(len(r["entry"].get("propertyValues", ())) for r in records)}


@router.post("/deadletters/replay", summary="Send dead letters again, optionally under another alias")
async def replay_dead_letters(backend: BackendDep, body: ReplayRequest) -> dict[str, Any]:
    if body.rewrite_alias and body.alias is None and body.ids is None:
        raise ApiError("InvalidRequestException", "rewriteAlias needs alias or ids: say which records to rewrite")
    return await backend.replay_dead_letters(body.publisher, body.reason, body.alias, body.state, body.ids,
                                                   body.rewrite_alias)
