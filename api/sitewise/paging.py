"""Pages of SiteWise list and read responses: ``maxResults``, opaque ``nextToken`` values, offset pages.

    limit = page_size(maxResults, default=50, maximum=250)        # InvalidRequestException outside 1..250
    page = offset_page(items, "assetSummaries", nextToken, limit) # {"assetSummaries": [...], "nextToken"?: ...}
    token = encode_state({"t": last_time, "q": last_quality})     # keyset pages build their own state
    state = decode_bound(token, request_digest(text), "request body")   # a token only fits its own request

A token is base64 of compact JSON (botocore checks ``[A-Za-z0-9+/=]+`` client-side). A token
that does not decode, or lacks what the route put in it, is "not a token this API issued".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from sitewise_edge.errors import ApiError

INVALID = "InvalidRequestException"
_NOT_OURS = "nextToken: not a token this API issued"


def page_size(value: Any, default: int, maximum: int, *, code: str = INVALID) -> int:
    """``maxResults`` (``default`` when absent), checked to be an integer 1..``maximum``."""
    limit = default if value is None else value
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= maximum:
        raise ApiError(code, f"maxResults: must be 1 to {maximum}, got {limit!r}")
    return limit


def offset_page(items: list[dict[str, Any]], key: str, next_token: str | None, limit: int) -> dict[str, Any]:
    """The page of a whole, stably sorted list that ``next_token`` points at (the first without one)."""
    offset = token_int(decode_state(next_token), "o") if next_token else 0
    if offset < 0:
        raise ApiError(INVALID, _NOT_OURS)
    out: dict[str, Any] = {key: items[offset:offset + limit]}
    if offset + limit < len(items):
        out["nextToken"] = encode_state({"o": offset + limit})
    return out


def encode_state(state: dict[str, Any]) -> str:
    """An opaque page token: base64 of compact JSON."""
    return base64.b64encode(json.dumps(state, separators=(",", ":")).encode()).decode()


def decode_state(token: str) -> dict[str, Any]:
    """What :func:`encode_state` put in a token; InvalidRequestException for anything else."""
    try:
        state = json.loads(base64.b64decode(token, validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ApiError(INVALID, _NOT_OURS) from None
    if not isinstance(state, dict):
        raise ApiError(INVALID, _NOT_OURS)
    return state


def token_int(state: dict[str, Any], key: str) -> int:
    """An integer the route put in its token under ``key``."""
    value = state.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ApiError(INVALID, _NOT_OURS)
    return value


def request_digest(text: str) -> str:
    """A short digest of the request a token belongs to (its body or statement)."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def decode_bound(token: str, digest: str, what: str, *, code: str = INVALID) -> dict[str, Any]:
    """A token's state, refused (``code``) when it was issued for another ``what`` (its ``h`` is not ``digest``)."""
    state = decode_state(token)
    if state.get("h") != digest:
        raise ApiError(code, f"nextToken: issued for another {what}")
    return state
