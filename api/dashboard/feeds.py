"""The JSON the dashboard reads: read-only views over the backend (dead letters go through /deadletters).

    GET /dashboard/api/overview     sources, store, publishers, the verdict, version and uptime
    GET /dashboard/api/assets       the asset hierarchy with every property, and the streams of no asset
    GET /dashboard/api/live         server-sent events: every latest value, then each one that changes
    GET /dashboard/api/trend        ?stream=..&stream=..&start=<ms>&end=<ms>: raw values or aggregates to draw
    GET /dashboard/api/config       the effective configuration (secrets as ***) and what validation found

With ``api.auth: read`` these need the token like every data route (the page sends it, and its cookie once
the API has sign-in sessions: every request is a same-origin fetch with credentials).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

import pyarrow as pa
import pyarrow.compute as pc
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from api.backend import Backend, BackendDep, Reader
from sitewise_edge import __version__
from sitewise_edge.clock import NS_PER_MS, NS_PER_S
from sitewise_edge.config import Config, redact_all
from sitewise_edge.errors import ApiError
from sitewise_edge.samples import to_sitewise_values

log = logging.getLogger(__name__)

router = APIRouter(prefix="/dashboard/api", tags=["dashboard"])

LIVE_TICK = 1.0
"""Seconds between two looks at the latest values for the live feed."""
LIVE_LIFETIME = 300.0
"""A live feed ends after this long (the page reconnects at once): no connection is held for ever."""
RAW_SPAN_NS = 2 * 3600 * NS_PER_S
"""Up to this range the trend draws every value; past it (or past RAW_LIMIT values) bucket aggregates."""
RAW_LIMIT = 20_000
RESOLUTIONS_S = (1, 5, 10, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400)
"""Bucket widths the trend chooses from: the smallest that gives at most ``points`` buckets."""
SECRET = "***"


# --- overview -----------------------------------------------------------------------------


def _where(source: Any) -> str:
    """Where a source reads: its endpoint URL, host:port or serial line."""
    data = source.model_dump()
    for key in ("endpoint", "url"):
        if data.get(key):
            return str(data[key])
    if data.get("serial_port") or data.get("serial"):
        return str(data.get("serial_port") or data.get("serial"))
    if data.get("host"):
        return f"{data['host']}:{data.get('port', '')}".rstrip(":")
    return ""


@router.get("/overview", summary="Sources, store, publishers and the verdict, for the dashboard")
async def overview(backend: BackendDep) -> dict[str, Any]:
    status = backend.status()
    config = backend.config
    configured = {s.name: s for s in config.sources}
    sources = {}
    for name, st in status.get("sources", {}).items():
        src = configured.get(name)
        sources[name] = {**st, "type": getattr(src, "type", None), "where": _where(src) if src else "",
                         "tags": len(src.aliases()) if src else None}
    now = backend.clock.time()
    return redact_all({
        "gateway": backend.name, "version": __version__, "uptimeSeconds": round(now - backend.started_at, 1),
        "time": now, **backend.verdict(), "sources": sources, "publishers": status.get("publishers", {}),
        "store": {**status.get("store", {}), "retentionSeconds": config.storage.retention,
                  "maxDisk": config.storage.max_disk},
    })


# --- assets ----------------------------------------------------------------------------------


def _asset_node(backend: Backend, asset: Any, seen: set[str]) -> dict[str, Any]:
    registry = backend.registry
    seen.add(asset.id)
    model = registry.model(asset.model_id)
    props = []
    for mp in model.properties:
        ref = registry.property(asset.id, mp.id)
        props.append({"id": mp.id, "name": mp.name, "stream": ref.stream, "alias": ref.alias, "unit": ref.unit,
                      "dataType": ref.data_type, "kind": str(getattr(ref.kind, "value", ref.kind))})
    children = [_asset_node(backend, c, seen) for c in registry.children(asset.id) if c.id not in seen]
    return {"id": asset.id, "name": asset.name, "model": model.name, "properties": props, "children": children}


@router.get("/assets", summary="The asset hierarchy with every property's stream, and streams of no asset")
async def assets(backend: BackendDep) -> dict[str, Any]:
    seen: set[str] = set()
    roots = [_asset_node(backend, a, seen) for a in backend.registry.assets(top_level=True)]
    streams = backend.latest_all().column("stream").cast(pa.string()).to_pylist()
    free = sorted(s for s in streams if backend.registry.property_of_stream(s) is None)
    return {"gateway": backend.name, "assets": roots, "streams": free,
            "staleAfterSeconds": backend.config.gateway.stale_after}


# --- live values ------------------------------------------------------------------------------


def _latest_rows(table: pa.Table) -> list[dict[str, Any]]:
    """Latest values as the page shows them: stream, value, quality, time in ms."""
    streams = table.column("stream").cast(pa.string()).to_pylist()
    times = table.column("time").cast(pa.int64()).to_pylist()
    out = []
    for stream, t, tqv in zip(streams, times, to_sitewise_values(table), strict=True):
        value = next(iter(tqv.get("value", {}).values()), None)
        out.append({"s": stream, "v": value, "q": tqv.get("quality", "GOOD"), "t": t // NS_PER_MS})
    return out


async def _live(request: Request, backend: Backend) -> AsyncIterator[str]:
    sent: dict[str, int] = {}
    started = backend.clock.monotonic()
    yield "retry: 1000\n\n"
    while True:
        table = backend.latest_all()
        rows = [r for r in _latest_rows(table) if sent.get(r["s"]) != r["t"]]
        for r in rows:
            sent[r["s"]] = r["t"]
        yield f"event: values\ndata: {json.dumps(rows, separators=(',', ':'))}\n\n"
        # end with the gateway's stop (it must not wait for open feeds) and after a while (the page reconnects)
        if not backend.ready() or backend.clock.monotonic() - started > LIVE_LIFETIME:
            return
        await asyncio.sleep(LIVE_TICK)
        if await request.is_disconnected():
            return


@router.get("/live", summary="Server-sent events: the latest values, then each value that changes (1 s)")
async def live(request: Request, backend: BackendDep) -> StreamingResponse:
    return StreamingResponse(_live(request, backend), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


# --- trends -----------------------------------------------------------------------------------


def _numbers(table: pa.Table) -> pa.Array:
    """One float column from whichever value column a row has (booleans as 0/1, strings as null)."""
    value = pc.coalesce(table.column("double"), pc.cast(table.column("integer"), pa.float64()),
                        pc.cast(table.column("boolean"), pa.float64()))
    return value


def _resolution_s(span_ns: int, points: int) -> int:
    return next((r for r in RESOLUTIONS_S if span_ns / (r * NS_PER_S) <= points), RESOLUTIONS_S[-1])


def _series(reader: Reader, streams: list[str], start_ns: int, end_ns: int, points: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for stream in streams:
        if end_ns - start_ns <= RAW_SPAN_NS:
            raw = reader.history(stream, start_ns, end_ns, quality=None, limit=RAW_LIMIT + 1)
            if raw.num_rows <= RAW_LIMIT:
                out.append({"stream": stream, "mode": "raw",
                            "t": pc.divide(raw.column("time").cast(pa.int64()), NS_PER_MS).to_pylist(),
                            "v": _numbers(raw).to_pylist(),
                            "q": raw.column("quality").to_pylist()})
                continue
        res = _resolution_s(end_ns - start_ns, points)
        agg = reader.aggregates([stream], start_ns, end_ns, res * NS_PER_S, quality=0, limit=points * 2 + 10)
        out.append({"stream": stream, "mode": "aggregates", "resolutionSeconds": res,
                    "t": pc.divide(agg.column("time_ns"), NS_PER_MS).to_pylist(),
                    "v": agg.column("avg").to_pylist(), "min": agg.column("min").to_pylist(),
                    "max": agg.column("max").to_pylist(), "count": agg.column("count").to_pylist()})
    return out


@router.get("/trend", summary="Values of some streams over a range, to draw: raw when few, else aggregates")
async def trend(
    backend: BackendDep,
    stream: Annotated[list[str], Query(min_length=1, max_length=16, description="data streams, 1 to 16")],
    start: Annotated[int, Query(description="start, milliseconds since the epoch (exclusive)")],
    end: Annotated[int, Query(description="end, milliseconds since the epoch (inclusive)")],
    points: Annotated[int, Query(ge=10, le=5000, description="at most about this many buckets")] = 1000,
) -> dict[str, Any]:
    if end <= start:
        raise ApiError("InvalidRequestException", f"end ({end}) must be after start ({start})")
    start_ns, end_ns = start * NS_PER_MS, end * NS_PER_MS
    series = await backend.query(lambda r: _series(r, stream, start_ns, end_ns, points))
    registry = backend.registry
    for s in series:
        prop = registry.property_of_stream(s["stream"])
        s["label"] = f"{prop.asset_name} / {prop.property_name}" if prop else s["stream"]
        s["unit"] = prop.unit if prop else None
    return {"start": start, "end": end, "series": series}


# --- configuration ----------------------------------------------------------------------------


def _redacted(model: BaseModel) -> Any:
    """A configuration model as JSON, every field declared a secret (``repr=False``) shown as ***."""
    out: dict[str, Any] = {}
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if not field.repr:
            out[name] = SECRET if value else value
        else:
            out[name] = _redacted_value(value)
    return out


def _redacted_value(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return _redacted(value)
    if isinstance(value, list | tuple):
        return [_redacted_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _redacted_value(v) for k, v in value.items()}
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _checks(config: Config, backend: Backend) -> list[dict[str, str]]:
    """What the gateway can say about its configuration beyond 'it loaded': unmapped aliases, unfed properties."""
    registry = backend.registry
    checks = []
    fed: set[str] = set()
    for source in config.sources:
        aliases = source.aliases()
        fed.update(aliases)
        unmapped = [a for a in aliases if registry.property_by_alias(a) is None]
        if unmapped and config.models:
            checks.append({"level": "note", "where": f"sources.{source.name}",
                           "message": f"{len(unmapped)} of {len(aliases)} aliases belong to no asset property "
                                      f"(stored as data streams without an asset), e.g. {unmapped[0]}"})
        checks += [{"level": "info", "where": f"sources.{source.name}", "message": line}
                   for line in source.plan_lines()]
    unfed = sorted(set(registry.measurement_aliases()) - fed)
    if unfed and config.sources:
        checks.append({"level": "note", "where": "models",
                       "message": f"{len(unfed)} measurement aliases are read by no source (only a BatchPut "
                                  f"can write them), e.g. {unfed[0]}"})
    return checks


@router.get("/config", summary="The effective configuration, secrets as ***, and what its validation found")
async def configuration(backend: BackendDep) -> dict[str, Any]:
    config = backend.config
    return redact_all({"gateway": backend.name, "config": _redacted(config), "valid": True,
                       "checks": _checks(config, backend), **backend.verdict()})
