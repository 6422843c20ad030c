"""The dashboard's page, its static files and the API docs, all served from this package (nothing from a CDN).

    GET /                               the dashboard (static/index.html, static/app.js, static/app.css)
    GET /dashboard/static/<file>        its files and the vendored libraries (static/vendor/README.md)
    GET /docs, /redoc                   Swagger UI and ReDoc over /openapi.json, from the vendored copies

The JSON the page reads is in :mod:`api.dashboard.feeds`.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response

from api.backend import BackendDep
from sitewise_edge.errors import ApiError
from sitewise_edge.samples import to_sitewise_values

router = APIRouter(tags=["dashboard"])

STATIC = Path(__file__).resolve().parent / "static"
STATIC_URL = "/dashboard/static"
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".png": "image/png",
               ".svg": "image/svg+xml", ".txt": "text/plain", ".md": "text/markdown"}


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"})


REDOC_JS = "vendor/redoc/redoc.standalone.js"
REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
"""The one thing ReDoc loads from the internet (its footer's logo): served here from our favicon instead."""


@functools.cache
def _redoc_js() -> bytes:
    return (STATIC / REDOC_JS).read_bytes().replace(REDOC_LOGO, f"{STATIC_URL}/favicon.svg".encode())


@router.get(f"{STATIC_URL}/{REDOC_JS}", include_in_schema=False)
async def redoc_js() -> Response:
    return Response(_redoc_js(), media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"})


@router.get(STATIC_URL + "/{name:path}", include_in_schema=False)
async def static(name: str) -> FileResponse:
    path = (STATIC / name).resolve()
    if not path.is_relative_to(STATIC) or not path.is_file() or path.suffix not in MEDIA_TYPES:
        raise ApiError("ResourceNotFoundException", f"no dashboard file {name!r}")
    # the vendored libraries never change under one name; the page's own files may change with an upgrade
    cache = "public, max-age=86400" if name.startswith("vendor/") else "no-cache"
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers={"Cache-Control": cache})


@router.get("/docs", include_in_schema=False)
async def swagger_ui(backend: BackendDep) -> Response:
    return get_swagger_ui_html(openapi_url="/openapi.json", title=f"sitewise-edge {backend.name} — API",
                               swagger_js_url=f"{STATIC_URL}/vendor/swagger-ui/swagger-ui-bundle.js",
                               swagger_css_url=f"{STATIC_URL}/vendor/swagger-ui/swagger-ui.css",
                               swagger_favicon_url=f"{STATIC_URL}/favicon.svg",
                               swagger_ui_parameters={"validatorUrl": None})  # no badge from the internet


@router.get("/redoc", include_in_schema=False)
async def redoc(backend: BackendDep) -> Response:
    return get_redoc_html(openapi_url="/openapi.json", title=f"sitewise-edge {backend.name} — API",
                          redoc_js_url=f"{STATIC_URL}/vendor/redoc/redoc.standalone.js",
                          redoc_favicon_url=f"{STATIC_URL}/favicon.svg", with_google_fonts=False)


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
