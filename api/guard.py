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
4. **Credentials** (``api/auth.py``): a SigV4 signature, a session cookie or the bearer token identify
   the caller with ``read`` or ``write`` access; a credential that is sent must be right (403/401 in AWS's
   codes). With any credential configured (``api.token``, ``api.access_keys``, ``api.users``), writes need
   ``write`` access; with ``api.auth: read`` every route also needs ``read``, but ``/health``, ``/ready``,
   the sign-in routes and the dashboard page itself. 401 UnauthorizedException without credentials, 403
   AccessDeniedException for a read-only caller's write. CORS preflights (OPTIONS) pass: they carry none.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import HTTPException
from starlette.datastructures import Headers

from api.auth import Access, Authenticator, RequestParts
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
OPEN_ROUTES = frozenset({"/health", "/ready", "/", "/login", "/auth/login", "/auth/logout", "/auth/session",
                         "/authenticate"})
"""What ``auth: read`` leaves open: liveness for orchestrators, the dashboard's HTML (no data in it) and the
ways to sign in."""
OPEN_PREFIXES = ("/dashboard/static/", "/docs", "/redoc", "/openapi.json")
"""Also open: the dashboard's scripts and styles, the API docs and their schema (code, no data)."""
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
HOST_PREFIXES = frozenset({"data", "api"})
"""The host prefixes botocore puts before SiteWise's endpoint (``data.`` data plane, ``api.`` control plane):
``data.<host>`` is as good a Host as ``<host>``; routing looks at method and path only."""
MAX_HOST_VERDICTS = 256
"""Host names whose verdict the guard remembers."""
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

    def __init__(self, app: ASGIApp, config: ApiConfig, auth: Authenticator) -> None:
        self.app = app
        self.config = config
        self.auth = auth
        self.check_host = is_loopback(config.host) or bool(config.allowed_hosts)
        names = [h.lower() for h in config.allowed_hosts]
        self.hosts = {h for h in names if not h.startswith("*.")} | {_host_name(config.host)}
        self.host_suffixes = tuple(h[1:] for h in names if h.startswith("*."))
        self.origins = {o.rstrip("/").lower() for o in [*config.allowed_origins, *config.cors.origins]}
        self._host_verdicts: dict[str, bool] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self.refusal(scope, headers)
        body: bytes | None = None
        if refusal is None and self.auth.wants_body(headers):
            if "content-length" in headers or "transfer-encoding" in headers:
                body, receive = await self._buffered(receive)  # the signature covers the body's hash
            else:
                body = b""  # a GET: nothing to wait for
            if body is None:
                refusal = self._too_large(), 413
        if refusal is None:
            refusal = self._credentials(scope, headers, body)
        if refusal is not None:
            await error_response(*refusal)(scope, receive, send)
            return
        await self.app(scope, self._counted(receive), send)

    def _credentials(self, scope: Scope, headers: Headers, body: bytes | None) -> tuple[ApiError, int | None] | None:
        method, path = scope["method"], scope["path"]
        need = self._needs(method, path)
        if need is None and (path in OPEN_ROUTES or method == "OPTIONS" or not (
                self.config.credentials and _sends_credentials(headers))):
            return None  # a liveness probe with a stale token still gets its answer
        parts = RequestParts(method, scope.get("scheme", "http"), scope.get("raw_path", path.encode()).decode(
            "latin-1"), scope.get("query_string", b"").decode("latin-1"), headers)
        try:
            principal = self.auth.identify(parts, body)
        except ApiError as exc:
            return exc, ApiError.STATUS.get(exc.code, 403)
        scope.setdefault("state", {})["principal"] = principal
        if need is None:
            return None
        if principal is None:
            what = "every route but /health" if self.config.auth == "read" else "this route"
            self.auth.failures["UnauthorizedException"] += 1
            return ApiError("UnauthorizedException", f"{what} needs credentials: sign the request (SigV4) with "
                            "a key of api.access_keys, sign in, or send 'Authorization: Bearer <token>'"), None
        if need == "write" and principal.access != "write":
            self.auth.failures["AccessDeniedException"] += 1
            return ApiError("AccessDeniedException", f"{principal.name!r} may read only: {method} {path} "
                            "needs write access"), None
        return None

    def refusal(self, scope: Scope, headers: Headers) -> tuple[ApiError, int | None] | None:
        """Why the request is refused before any route runs, or None."""
        method = scope["method"]
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
        return None

    def _known_host(self, name: str) -> bool:
        known = self._host_verdicts.get(name)
        if known is None:  # parsed once per name (an IP address parse per request was ~2 % of GetAssetPropertyValue)
            if len(self._host_verdicts) >= MAX_HOST_VERDICTS:
                self._host_verdicts.clear()  # bounded: a client sending ever new names gets no memory
            known = self._host_verdicts[name] = self._check_host(name)
        return known

    def _check_host(self, name: str) -> bool:
        prefix, _, rest = name.partition(".")
        if prefix in HOST_PREFIXES and rest:  # an SDK that injects SiteWise's host prefix: data.<host>, api.<host>
            name = rest
        return _is_loopback_name(name) or name in self.hosts or any(name.endswith(s) for s in self.host_suffixes)

    def _own_origin(self, origin: str, scope: Scope, host: str) -> bool:
        origin = origin.rstrip("/").lower()
        return origin == f"{scope.get('scheme', 'http')}://{host.lower()}" or origin in self.origins

    def _needs(self, method: str, path: str) -> Access | None:
        """The access a request needs: None, ``read`` or ``write``."""
        if not self.config.credentials or method == "OPTIONS" or path in OPEN_ROUTES:
            return None
        if method not in SAFE_METHODS and not (method == "POST" and path in READ_ONLY_POSTS):
            return "write"
        return "read" if self.config.auth == "read" and not path.startswith(OPEN_PREFIXES) else None

    async def _buffered(self, receive: Receive) -> tuple[bytes | None, Receive]:
        """The whole body (None past ``max_body_size``) and a ``receive`` that hands it on again."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.config.max_body_size:
                return None, receive
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return body, replay

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


def _sends_credentials(headers: Headers) -> bool:
    return "authorization" in headers or "x-api-token" in headers
