"""Reading SiteWise requests: the JSON body, the entries of a batch operation, the error for a bad one.

    body = await json_body(request)                       # InvalidRequestException if not a JSON object,
                                                          # nested deeper than api.max_json_depth
    entries = check_entries(body, MAX_ENTRIES)            # 1..max objects, each with a unique valid entryId

Problems with the request as a whole are ``InvalidRequestException`` and fail it; problems with
one entry are the route's to report in ``errorEntries``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import Request

from sitewise_edge.errors import ApiError
from sitewise_edge.files import loads_bounded

ENTRY_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def invalid(message: str) -> ApiError:
    """An ``InvalidRequestException``."""
    return ApiError("InvalidRequestException", message)


async def json_body(request: Request, *, empty_ok: bool = False) -> dict[str, Any]:
    """The request's JSON object (``{}`` for no body at all if ``empty_ok``), or InvalidRequestException."""
    raw = await request.body()
    if not raw and empty_ok:
        return {}
    max_depth = request.app.state.backend.api_config.max_json_depth
    try:
        body = loads_bounded(raw, max_depth)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise invalid("the request body is not valid JSON") from None
    except ValueError as exc:  # too deep (api.max_json_depth), a key written twice
        raise invalid(f"the request body is refused: {exc}") from None
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object")
    return body


def check_entries(body: dict[str, Any], max_entries: int) -> list[dict[str, Any]]:
    """The body's ``entries``: a list of 1 to ``max_entries`` objects with unique, well-formed ``entryId``s."""
    entries = body.get("entries")
    if not isinstance(entries, list):
        raise invalid(f"entries: required, a list of 1 to {max_entries} entries")
    if not entries:
        raise invalid("Entries size failed to satisfy constraint: Must be at least 1 entry per request.")
    if len(entries) > max_entries:
        raise invalid(f"entries: at most {max_entries} entries per request, got {len(entries)}")
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise invalid(f"entries[{i}]: must be an object")
        entry_id = entry.get("entryId")
        if not isinstance(entry_id, str) or not ENTRY_ID.match(entry_id):
            raise invalid(f"entries[{i}].entryId: required, 1-64 characters of [a-zA-Z0-9_-], got {entry_id!r}")
        if entry_id in seen:
            raise invalid(f"entries[{i}].entryId: duplicate entryId {entry_id!r}")
        seen.add(entry_id)
    return entries
