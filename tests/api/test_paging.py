"""The shared request and page helpers of the SiteWise routes (api/sitewise/requests.py, paging.py)."""

from __future__ import annotations

from typing import Any

import pytest

from api.sitewise.paging import (
    decode_bound,
    decode_state,
    encode_state,
    offset_page,
    page_size,
    request_digest,
    token_int,
)
from api.sitewise.requests import check_entries
from sitewise_edge.errors import ApiError


@pytest.mark.parametrize(("value", "expected"), [(None, 50), (1, 1), (250, 250)], ids=["default", "one", "max"])
def test_page_size_takes_1_to_maximum(value: Any, expected: int) -> None:
    assert page_size(value, 50, 250) == expected


@pytest.mark.parametrize("value", [0, 251, True, "5", 2.0], ids=["zero", "over", "bool", "text", "float"])
def test_page_size_refuses_the_rest(value: Any) -> None:
    with pytest.raises(ApiError) as caught:
        page_size(value, 50, 250, code="ValidationException")
    assert (caught.value.code, caught.value.message) == ("ValidationException",
                                                         f"maxResults: must be 1 to 250, got {value!r}")


def test_offset_pages_walk_the_whole_list() -> None:
    items = [{"i": i} for i in range(7)]
    seen: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = offset_page(items, "things", token, 3)
        seen += page["things"]
        token = page.get("nextToken")
        if token is None:
            break
    assert seen == items
    assert offset_page(items, "things", None, 7) == {"things": items}


@pytest.mark.parametrize("token", ["bm90LWEtdG9rZW4=", encode_state({"o": -1}), encode_state({"o": True}), "%%"],
                         ids=["not-json", "negative", "bool", "not-base64"])
def test_foreign_tokens_are_refused(token: str) -> None:
    with pytest.raises(ApiError, match="nextToken: not a token this API issued") as caught:
        offset_page([], "things", token, 3)
    assert caught.value.code == "InvalidRequestException"


def test_a_bound_token_fits_its_own_request_only() -> None:
    digest = request_digest("SELECT 1")
    token = encode_state({"o": 5, "h": digest})
    assert token_int(decode_bound(token, digest, "queryStatement"), "o") == 5
    assert decode_state(token) == {"o": 5, "h": digest}
    with pytest.raises(ApiError, match="nextToken: issued for another queryStatement"):
        decode_bound(token, request_digest("SELECT 2"), "queryStatement")


@pytest.mark.parametrize(("entries", "message"), [
    (None, "entries: required, a list of 1 to 3 entries"),
    ([], "Entries size failed to satisfy constraint: Must be at least 1 entry per request."),
    ([{"entryId": f"e{i}"} for i in range(4)], "entries: at most 3 entries per request, got 4"),
    (["x"], "entries[0]: must be an object"),
    ([{"entryId": "a b"}], "entries[0].entryId: required, 1-64 characters of [a-zA-Z0-9_-], got 'a b'"),
    ([{"entryId": "a"}, {"entryId": "a"}], "entries[1].entryId: duplicate entryId 'a'"),
], ids=["missing", "empty", "too-many", "not-object", "bad-id", "duplicate"])
def test_check_entries(entries: Any, message: str) -> None:
    with pytest.raises(ApiError) as caught:
        check_entries({"entries": entries}, 3)
    assert (caught.value.code, caught.value.message) == ("InvalidRequestException", message)
    good = [{"entryId": "a"}, {"entryId": "b-1"}]
    assert check_entries({"entries": good}, 3) is good
