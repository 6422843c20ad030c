"""The dashboard: one HTML page and the JSON it polls."""

from __future__ import annotations

from importlib import resources
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from api.backend import BackendDep
from sitewise_edge.samples import to_sitewise_values

router = APIRouter(tags=["dashboard"])


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def page() -> str:
    return resources.files("api.dashboard").joinpath("index.html").read_text(encoding="utf-8")


@router.get("/dashboard/values", summary="Latest value of every data stream, with its asset and property")
async def values(backend: BackendDep) -> dict[str, Any]:
    table = backend.latest_all()
    streams = table.column("stream").cast("string").to_pylist()
    tqvs = to_sitewise_values(table)
    rows = []
    for stream, tqv in zip(streams, tqvs, strict=True):
        prop = backend.registry.property_of_stream(stream)
        rows.append({
            "stream": stream,
            "asset": prop.asset_name if prop else None,
            "property": prop.property_name if prop else None,
            "unit": prop.unit if prop else None,
            **tqv,
        })
    return {"gateway": backend.name, "values": rows}
