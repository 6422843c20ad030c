"""Signing in: the dashboard's session and SiteWise Edge's ``Authenticate``.

    GET  /login          a small sign-in page (user and password); on success it goes to ``/``
    POST /auth/login     {"username", "password"} -> a session cookie (HttpOnly, SameSite=Strict)
    POST /auth/logout    ends the session
    POST /authenticate   {"username", "password", "authMechanism"} -> {"accessKeyId", "secretAccessKey",
                         "sessionToken", "region": "edge"}: temporary SigV4 keys, as SiteWise Edge answers

The users are ``api.users``; sessions and temporary keys live ``api.session_timeout`` (in memory: a restart
signs everyone out). A wrong password is 403 AccessDeniedException and counted; a malformed request is
400 (``IllegalArgumentException`` for ``Authenticate``, as SiteWise Edge answers).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from api.auth import SESSION_COOKIE, Authenticator
from sitewise_edge.errors import ApiError

router = APIRouter(tags=["authentication"])
PAGE = (Path(__file__).parent / "dashboard" / "login.html").read_text(encoding="utf-8")
AUTH_MECHANISMS = ("ldap", "linux", "winnt")
"""What SiteWise Edge's Authenticate accepts; here every one checks ``api.users``."""


def _auth(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.auth
    return auth


async def _credentials(request: Request, code: str) -> tuple[str, str, dict[str, Any]]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise ApiError(code, "the body must be a JSON object with username and password") from None
    if not isinstance(body, dict):
        raise ApiError(code, "the body must be a JSON object with username and password")
    user, password = body.get("username"), body.get("password")
    if not isinstance(user, str) or not user or not isinstance(password, str) or not password:
        raise ApiError(code, "username and password are required (non-empty strings)")
    return user, password, body


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
async def login_page() -> str:
    return PAGE


@router.post("/auth/login", summary="Sign in with a user of api.users: sets the session cookie")
async def login(request: Request) -> Response:
    auth = _auth(request)
    user, password, _ = await _credentials(request, "InvalidRequestException")
    access = auth.check_password(user, password)
    if access is None:
        raise ApiError("AccessDeniedException", "wrong user name or password")
    response = JSONResponse({"user": user, "access": access, "expiresIn": int(auth.config.session_timeout)})
    response.set_cookie(SESSION_COOKIE, auth.start_session(user, access), max_age=int(auth.config.session_timeout),
                        path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return response


@router.post("/auth/logout", summary="End the session of the cookie sent")
async def logout(request: Request) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        _auth(request).end_session(cookie)
    response = JSONResponse({})
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/auth/session", summary="Who the session cookie belongs to (401 without a live session)")
async def session(request: Request) -> dict[str, Any]:
    principal = _auth(request).session_of(request.headers)
    if principal is None:
        raise ApiError("UnauthorizedException", "no live session: sign in at /login")
    return {"user": principal.name, "access": principal.access}


@router.post("/authenticate", summary="SiteWise Edge's Authenticate: temporary SigV4 keys for a user")
async def authenticate(request: Request) -> dict[str, str]:
    auth = _auth(request)
    user, password, body = await _credentials(request, "IllegalArgumentException")
    mechanism = body.get("authMechanism", "linux")
    if mechanism not in AUTH_MECHANISMS:
        raise ApiError("IllegalArgumentException", f"unknown authMechanism {mechanism!r}; expected one of "
                       f"{', '.join(AUTH_MECHANISMS)}")
    access = auth.check_password(user, password)
    if access is None:
        raise ApiError("AccessDeniedException", "wrong user name or password")
    return auth.temporary_key(user, access)
