"""What every request passes before a route sees it: the API's browser and network boundary.

    app.add_middleware(Guard, config=backend.api_config)

In this order, each refusal in SiteWise's error shape (``x-amzn-ErrorType`` and ``{"message"}``):

1. **Host** (DNS rebinding): when the API listens on a loopback address (or ``api.allowed_hosts`` is
   set), the ``Host`` header must name this machine (``localhost``, ``*.localhost``, 127.x.x.x, ``::1``),
   the configured ``api.host`` or one of ``api.allowed_hosts``, each also with SiteWise's host prefix
   (``data.<host>``, ``api.<host>``, for clients that cannot turn the prefix off): else 400
   InvalidRequestException. A web page whose name an attacker points at 127.0.0.1 sends its own name and
   is refused.
2. **Body size**: a ``Content-Length`` over ``api.max_body_size`` is refused (413) before a byte is read;
   a body without one (chunked) is counted as it arrives and refused when it passes the limit, so a
   300 MB upload never sits in memory.
3. **Cross-site writes** (CSRF): a request other than GET/HEAD/OPTIONS that carries an ``Origin``
   header (every browser sends one on such requests) must come from the API's own origin or one of
   ``api.allowed_origins`` (403 AccessDeniedException); and a body must be JSON (``application/json``,
   ``application/x-amz-json-1.x``, ``...+json``): the ``text/plain`` and form bodies a page can send
   without asking are refused (415 InvalidRequestException). boto3 and the AWS CLI send no Origin and
   ``application/json`` with every body (none on a bodyless DELETE), so they pass unchanged.
4. **Credentials**: with ``api.token`` set, writes need it (``Authorization: Bearer`` or ``x-api-token``);
   with ``api.auth: read`` every route does but ``/health``, ``/ready`` and the dashboard page itself
   (its data comes from routes that need the token: open it as ``/#token=...``). 401 UnauthorizedException.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import HTTPException
from starlette.datastructures import Headers

from api.sitewise.errors import error_response
from sitewise_edge.config import ApiConfig, is_loopback
from sitewise_edge.errors import ApiError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

READ_ONLY_POSTS = frozenset({
    "/properties/batch/latest", "/properties/batch/history", "/properties/batch/aggregates", "/queries/execution",
})
"""SiteWise reads that travel as POST: with ``auth: write`` they need no token (Grafana and dashboards use them)."""
OPEN_ROUTES = frozenset({"/health", "/ready", "/"})
"""What ``auth: read`` leaves open: liveness for orchestrators and the dashboard's HTML (no data in it)."""
OPEN_PREFIXES = ("/dashboard/static/", "/docs", "/redoc", "/openapi.json")
"""Also open: the dashboard's scripts and styles, the API docs and their schema (code, no data)."""
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
HOST_PREFIXES = frozenset({"data", "api"})
"""The host prefixes botocore puts before SiteWise's endpoint (``data.`` data plane, ``api.`` control plane):
``data.<host>`` is as good a Host as ``<host>``; routing looks at method and path only."""
JSON_TYPES = ("application/json", "application/x-amz-json-1.0", "application/x-amz-json-1.1")


def _host_name(host_header: str) -> str:
    """``example.com:8080`` -> ``example.com``; ``[::1]:8080`` -> ``::1``."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _is_loopback_name(name: str) -> bool:
    if name == "localhost" or name.endswith(".localhost"):  # RFC 6761: never resolved off this machine
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media in JSON_TYPES or (media.startswith("application/") and media.endswith("+json"))


class Guard:
    """Pure ASGI middleware (it wraps ``receive`` to count the body, which an ``@app.middleware`` cannot)."""

    def __init__(self, app: ASGIApp, config: ApiConfig) -> None:
        self.app = app
        self.config = config
        self.check_host = is_loopback(config.host) or bool(config.allowed_hosts)
        names = [h.lower() for h in config.allowed_hosts]
        self.hosts = {h for h in names if not h.startswith("*.")} | {_host_name(config.host)}
        self.host_suffixes = tuple(h[1:] for h in names if h.startswith("*."))
        self.origins = {o.rstrip("/").lower() for o in config.allowed_origins}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self.refusal(scope, headers)
        if refusal is not None:
            await error_response(*refusal)(scope, receive, send)
            return
        await self.app(scope, self._counted(receive), send)

    def refusal(self, scope: Scope, headers: Headers) -> tuple[ApiError, int | None] | None:
        """Why the request is refused before any route runs, or None."""
        method, path = scope["method"], scope["path"]
        host = headers.get("host", "")
        if self.check_host and not self._known_host(_host_name(host)):
            return ApiError("InvalidRequestException", f"the Host header {host!r} is not a name of this gateway: "
                            "add it to api.allowed_hosts"), None
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.config.max_body_size:
            return self._too_large(), 413
        if method not in SAFE_METHODS:
            origin = headers.get("origin")
            if origin is not None and not self._own_origin(origin, scope, host):
                return ApiError("AccessDeniedException", f"a write from the web page of {origin!r} is refused: "
                                "add that origin to api.allowed_origins if it is yours"), 403
            content_type = headers.get("content-type")
            has_body = (length is not None and length != "0") or "transfer-encoding" in headers
            if (content_type is not None or has_body) and not _is_json(content_type or ""):
                return ApiError("InvalidRequestException", f"the request body must be JSON (Content-Type "
                                f"application/json), not {content_type or 'untyped'}"), 415
        if self._needs_token(method, path) and not self._has_token(headers):
            what = "every route but /health" if self.config.auth == "read" else "this route"
            return ApiError("UnauthorizedException", f"{what} needs the API token: send "
                            "'Authorization: Bearer <token>' or 'x-api-token'"), None
        return None

    def _known_host(self, name: str) -> bool:
        prefix, _, rest = name.partition(".")
        if prefix in HOST_PREFIXES and rest:  # an SDK that injects SiteWise's host prefix: data.<host>, api.<host>
            name = rest
        return _is_loopback_name(name) or name in self.hosts or any(name.endswith(s) for s in self.host_suffixes)

    def _own_origin(self, origin: str, scope: Scope, host: str) -> bool:
        origin = origin.rstrip("/").lower()
        return origin == f"{scope.get('scheme', 'http')}://{host.lower()}" or origin in self.origins

    def _needs_token(self, method: str, path: str) -> bool:
        if not self.config.token:
            return False
        if self.config.auth == "read":
            return path not in OPEN_ROUTES and not path.startswith(OPEN_PREFIXES)
        return method not in SAFE_METHODS and not (method == "POST" and path in READ_ONLY_POSTS)

    def _has_token(self, headers: Headers) -> bool:
        token = self.config.token or ""
        given = headers.get("x-api-token") or ""
        auth = headers.get("authorization") or ""
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        return hmac.compare_digest(given.encode(), token.encode())

    def _too_large(self) -> ApiError:
        return ApiError("InvalidRequestException", f"the request body is larger than api.max_body_size "
                        f"({self.config.max_body_size} bytes)")

    def _counted(self, receive: Receive) -> Receive:
        limit = self.config.max_body_size
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # an HTTPException passes FastAPI's body parsing as it is; the app's handler answers 413
                    raise HTTPException(413, self._too_large().message)
            return message

        return counted
