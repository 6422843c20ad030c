"""The gateway's HTTP API: SiteWise-compatible routes, the dashboard, health.

``create_app(backend)`` is a factory: no module-level app, so tests and the demo can
run several gateways in one process. A boto3 ``iotsitewise`` client pointed at it
(with ``Config(inject_host_prefix=False)``) works unchanged.

Errors follow the SiteWise wire format: the HTTP status of the error shape, the
``x-amzn-ErrorType`` header and a body ``{"message": ...}`` (``api/sitewise/errors.py``). The
model layer's errors (``ModelNotFound``, ``ModelExists``...) are mapped to SiteWise's codes by
the handler here, through the one mapping in that module.
"""

from __future__ import annotations

import inspect
import json
import logging
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.auth import Authenticator
from api.backend import Backend
from api.dashboard.feeds import router as dashboard_feeds
from api.dashboard.routes import router as dashboard_router
from api.guard import ASGIApp, Guard, Receive, Scope, Send
from api.metrics import RequestMetrics, exposition, metrics_registry
from api.ops import router as ops_router
from api.signin import router as signin_router
from api.sitewise.assets import router as assets_router
from api.sitewise.batch import router as batch_router
from api.sitewise.data import latest_answer
from api.sitewise.data import router as data_router
from api.sitewise.errors import error_response, sitewise_error
from api.sitewise.query import router as query_router
from api.sitewise.sql import router as sql_router
from api.sitewise.timeseries import router as timeseries_router
from api.sitewise.unserved import not_supported, operations
from sitewise_edge.errors import ApiError, ModelError, StoreError

log = logging.getLogger(__name__)


def _error(code: str, message: str, status: int | None = None) -> JSONResponse:
    return error_response(ApiError(code, message), status)


SITEWISE_ROUTERS = (data_router, query_router, sql_router, batch_router, assets_router, timeseries_router)
"""The routers of SiteWise operations (the README's table is generated from them; a test checks the app's)."""


def served_operations() -> set[str]:
    """The botocore operations the routes serve (each route's summary is its operation's name)."""
    names = {o.name for o in operations()}
    routes = [r for router in SITEWISE_ROUTERS for r in router.routes]
    found = set()
    while routes:
        route = routes.pop()
        inner = getattr(route, "original_router", None)  # a router included in another one
        routes += inner.routes if inner is not None else []
        if (summary := getattr(route, "summary", None)) in names:
            found.add(summary)
    return found


LATEST = "/properties/latest"


class HotRoutes:
    """Pure ASGI, inside the guard: ``GET /properties/latest`` (GetAssetPropertyValue, what dashboards and
    scripts poll) answered with one compare instead of FastAPI's route matching (~45 routes one by one) and
    dependency injection. The same function answers as the FastAPI route (``latest_answer``), the same
    errors in SiteWise's shape; ``scope["route"]`` is that route, so ``/metrics`` counts it by its template."""

    def __init__(self, app: ASGIApp, backend: Backend, route: APIRoute) -> None:
        self.app = app
        self.backend = backend
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != LATEST or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        # as FastAPI reads them (starlette's QueryParams): the last of a repeated name wins
        query = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
        try:
            answer = latest_answer(self.backend, query.get("assetId"), query.get("propertyId"),
                                   query.get("propertyAlias"))
        except ApiError as exc:
            await error_response(exc)(scope, receive, send)
            return
        except ModelError as exc:
            await error_response(sitewise_error(exc))(scope, receive, send)
            return
        # as JSONResponse renders it, without building a Response (its header list, its background hooks)
        body = json.dumps(answer, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


_NO_OTEL: dict[str, Any] = {"telemetry": {"tracing": False, "metrics": False, "logs": False}} \
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters else {}
"""FastAPI >= 0.165 asks OpenTelemetry's global providers on every request whether anyone listens (~8 % of a
GetAssetPropertyValue): the gateway has its own ``/metrics`` and configures no OpenTelemetry, so it is off."""


def create_app(backend: Backend) -> FastAPI:
    app = FastAPI(
        **_NO_OTEL,
        title=f"sitewise-edge {backend.name}",
        description="AWS IoT SiteWise-compatible API of a sitewise-edge gateway, its dashboard and health.",
        version="0.1.0",
        docs_url=None, redoc_url=None,  # served from vendored assets by api/dashboard/routes.py (offline)
    )
    app.state.backend = backend

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(ModelError)
    async def _model_error(_: Request, exc: ModelError) -> JSONResponse:
        return error_response(sitewise_error(exc))

    @app.exception_handler(StoreError)
    async def _store_error(_: Request, exc: StoreError) -> JSONResponse:
        # the store cannot take the values now (disk full, under storage.disk_reserve, a failing disk): retryable,
        # nothing of the request was kept; the reason is also in /health
        return _error("ServiceUnavailableException", f"the gateway cannot store the values now: {exc}")

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"] if p not in ("body", "query", "path"))
            parts.append(f"{loc}: {err['msg']}" if loc else err["msg"])
        return _error("InvalidRequestException", "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        unserved = not_supported(request.method, request.url.path) if exc.status_code in (404, 405) else None
        if unserved is not None:  # a SiteWise operation no route serves: say which, not "not found"
            return error_response(unserved)
        if exc.status_code == 404:
            return _error("ResourceNotFoundException", "Unknown operation or resource", 404)
        if exc.status_code == 405:
            return _error("InvalidRequestException", "Method not allowed on this route", 405)
        return _error("InvalidRequestException", str(exc.detail), exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # a bug must still answer in the SiteWise error shape (and be in the log), never as a bare 500 page
        log.error("%s %s failed: %r", request.method, request.url.path, exc, exc_info=exc)
        return _error("InternalFailureException", f"internal error: {type(exc).__name__}")

    app.state.auth = Authenticator(backend.api_config, backend.clock)
    latest_route = next(r for r in data_router.routes if isinstance(r, APIRoute) and r.path == LATEST)
    app.add_middleware(HotRoutes, backend=backend, route=latest_route)  # innermost: after the guard's checks
    app.add_middleware(Guard, config=backend.api_config, auth=app.state.auth)
    registry = metrics_registry(backend, app.state.auth)
    app.add_middleware(RequestMetrics, registry=registry, backend=backend)  # outside the guard: refusals count
    cors = backend.api_config.cors
    if cors.origins:  # outside the guard: preflights are answered first, refusals carry the CORS headers
        anyone = "*" in cors.origins
        app.add_middleware(CORSMiddleware, allow_origins=cors.origins, allow_credentials=not anyone,
                           allow_methods=["GET", "POST", "PUT", "DELETE"], allow_headers=["*"],
                           expose_headers=["x-amzn-ErrorType", "x-amzn-RequestId"], max_age=int(cors.max_age))

    @app.get("/health", tags=["operations"], summary="The verdict (ok, degraded, unavailable), its reasons, and "
             "the state of every component")
    async def health() -> JSONResponse:
        # 200 while data is accepted (ok or degraded: a liveness probe must not restart a buffering gateway),
        # 503 when it cannot accept data
        verdict = backend.verdict()
        return JSONResponse({**verdict, **backend.status()}, 503 if verdict["status"] == "unavailable" else 200)

    @app.get("/ready", tags=["operations"], summary="For orchestrators: 200 when the gateway accepts data, else 503")
    async def ready() -> JSONResponse:
        ok = backend.ready()
        verdict = backend.verdict()
        return JSONResponse({"ready": ok, "status": verdict["status"], "reasons": verdict["reasons"]},
                            200 if ok else 503)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics: sources, store, publishers, API")
    async def metrics() -> Response:
        body, content_type = exposition(registry)
        return Response(body, media_type=content_type)

    app.include_router(data_router)
    app.include_router(query_router)
    app.include_router(sql_router)
    app.include_router(batch_router)
    app.include_router(assets_router)
    app.include_router(timeseries_router)
    app.include_router(dashboard_router)
    app.include_router(dashboard_feeds)
    app.include_router(ops_router)
    app.include_router(signin_router)
    return app
