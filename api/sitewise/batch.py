"""SiteWise batch reads: BatchGetAssetPropertyValue, BatchGetAssetPropertyValueHistory, BatchGetAssetPropertyAggregates.

SiteWise Edge never served these, which broke Grafana dashboards pointed at a gateway.

A problem with the request as a whole (no entries, too many, a bad or repeated ``entryId``, a bad
``maxResults`` or ``nextToken``) is an InvalidRequestException. A problem with one entry (an unknown
asset, property or alias, a bad resolution, date or quality) is reported for that entry alone in
``errorEntries`` with ResourceNotFoundException or InvalidRequestException; the gateway has no access
control, so AccessDeniedException never appears.

Entries are served in request order and ``maxResults`` counts values across them. When a page fills
up, the body-level ``nextToken`` says where the next page resumes (the entry and the keyset of its
last value); the entries finished on earlier pages come back as ``skippedEntries`` (SUCCESS, or ERROR
with the code and the time of the first page). The token only fits the same request body.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from fastapi import APIRouter, Request

from api.backend import Backend, BackendDep, Reader
from api.sitewise.data import (
    HISTORY_PAGE_BYTES,
    MAX_HISTORY_RESULTS,
    entry_stream,
    history_page,
    is_known,
    keyset,
    null_type,
    parse_date,
    parse_quality,
    time_ordering,
    typed_nulls,
)
from api.sitewise.paging import decode_bound, decode_state, encode_state, page_size, request_digest, token_int
from api.sitewise.query import (
    aggregated_values,
    check_aggregate_types,
    next_window,
    parse_aggregate_types,
    parse_resolution,
)
from api.sitewise.requests import check_entries, invalid, json_body
from sitewise_edge.errors import ApiError
from sitewise_edge.samples import MAX_SECONDS, NS_PER_S, Quality, to_sitewise_values

router = APIRouter(tags=["SiteWise data plane"])

MAX_LATEST_ENTRIES = 128
MAX_BATCH_ENTRIES = 16
MAX_BATCH_AGGREGATE_RESULTS = 4000
_ENTRY_ERRORS = ("ResourceNotFoundException", "InvalidRequestException", "AccessDeniedException")


async def _body(
    request: Request, max_entries: int, max_results: int | None
) -> tuple[list[dict[str, Any]], int, str | None]:
    """The request's entries, maxResults and nextToken, or InvalidRequestException for a malformed request."""
    body = await json_body(request)
    entries = check_entries(body, max_entries)
    limit = 0 if max_results is None else page_size(body.get("maxResults"), max_results, max_results)
    token = body.get("nextToken")
    if token is not None and not isinstance(token, str):
        raise invalid("nextToken: not a token this API issued")
    return entries, limit, token


def _stream(backend: Backend, entry: dict[str, Any]) -> str:
    stream = entry_stream(backend, entry)
    if not is_known(backend, stream):
        raise ApiError("ResourceNotFoundException",
                       f"No data stream found for the property alias {entry.get('propertyAlias')!r}.")
    return stream


def _error(entry_id: str, exc: ApiError) -> dict[str, Any]:
    code = exc.code if exc.code in _ENTRY_ERRORS else "InvalidRequestException"
    return {"errorCode": code, "errorMessage": exc.message, "entryId": entry_id}


def _body_date(name: str, value: Any) -> int:
    """A body timestamp: epoch seconds (what boto3 sends) or an ISO-8601 string -> ns."""
    if isinstance(value, bool) or value is None:
        raise invalid(f"{name}: required, epoch seconds")
    if isinstance(value, int | float):
        if not 0 <= value <= MAX_SECONDS:  # also NaN, which compares false; JSON allows it in Python
            raise invalid(f"{name}: epoch seconds must be 0..{MAX_SECONDS}, got {value!r}")
        return value * NS_PER_S if isinstance(value, int) else round(value * NS_PER_S)
    parsed = parse_date(name, str(value))
    if parsed is None:
        raise invalid(f"{name}: required, epoch seconds")
    return parsed


# --- BatchGetAssetPropertyValue ----------------------------------------------------------------


@router.post("/properties/batch/latest", summary="BatchGetAssetPropertyValue")
async def batch_latest(request: Request, backend: BackendDep) -> dict[str, Any]:
    """Every entry fits one page (at most 128 values), so no nextToken is ever returned."""
    entries, _, token = await _body(request, MAX_LATEST_ENTRIES, None)
    if token:
        decode_state(token)  # a token this API issued; there is never a next page to resume
    success: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for entry in entries:
        try:
            stream = _stream(backend, entry)
            latest = backend.latest(stream)
        except ApiError as exc:
            errors.append(_error(entry["entryId"], exc))
            continue
        out: dict[str, Any] = {"entryId": entry["entryId"]}
        if latest.num_rows:
            out["assetPropertyValue"] = typed_nulls(to_sitewise_values(latest), null_type(backend, stream))[0]
        success.append(out)
    return {"successEntries": success, "errorEntries": errors, "skippedEntries": []}


# --- paging across entries -------------------------------------------------------------------


@dataclass
class _Page:
    """Where a batch page resumes: entry ``index``, and the entry's own position in ``state``."""

    index: int
    state: dict[str, Any]
    first_page_at: float
    digest: str

    @classmethod
    def from_token(cls, token: str | None, entries: list[dict[str, Any]], now: float) -> _Page:
        digest = request_digest(json.dumps(entries, sort_keys=True))
        if not token:
            return cls(0, {}, now, digest)
        state = decode_bound(token, digest, "request body")
        index = token_int(state, "i")
        if not 0 <= index < len(entries):
            raise invalid("nextToken: not a token this API issued")
        return cls(index, state, float(token_int(state, "e")), digest)

    def token(self, index: int, **position: int) -> str:
        return encode_state({"i": index, **position, "e": int(self.first_page_at), "h": self.digest})


def _skipped(entry_id: str, check: Callable[[], object], page: _Page) -> dict[str, Any]:
    """An entry finished on an earlier page: SUCCESS, or ERROR with what it failed with."""
    try:
        check()
    except ApiError as exc:
        code = exc.code if exc.code in _ENTRY_ERRORS else "InvalidRequestException"
        return {"entryId": entry_id, "completionStatus": "ERROR",
                "errorInfo": {"errorCode": code, "errorTimestamp": int(page.first_page_at)}}
    return {"entryId": entry_id, "completionStatus": "SUCCESS"}


# --- BatchGetAssetPropertyValueHistory ---------------------------------------------------------


@dataclass(frozen=True)
class _HistorySpec:
    stream: str
    start_ns: int | None
    end_ns: int | None
    quality: int | None
    descending: bool


def _history_spec(backend: Backend, entry: dict[str, Any]) -> _HistorySpec:
    stream = _stream(backend, entry)
    start = None if entry.get("startDate") is None else _body_date("startDate", entry["startDate"])
    end = None if entry.get("endDate") is None else _body_date("endDate", entry["endDate"])
    if start is not None and end is not None and start > end:
        raise invalid("startDate must be before endDate")
    qualities = entry.get("qualities")
    if qualities is not None and not isinstance(qualities, list):
        raise invalid("qualities: a list of one quality")
    return _HistorySpec(stream, start, end, parse_quality(qualities), time_ordering(entry.get("timeOrdering")))


@router.post("/properties/batch/history", summary="BatchGetAssetPropertyValueHistory")
async def batch_history(request: Request, backend: BackendDep) -> dict[str, Any]:
    entries, limit, token = await _body(request, MAX_BATCH_ENTRIES, MAX_HISTORY_RESULTS)
    page = _Page.from_token(token, entries, backend.clock.time())
    skipped = [_skipped(e["entryId"], partial(_history_spec, backend, e), page) for e in entries[:page.index]]
    specs: list[tuple[int, _HistorySpec | ApiError]] = []
    for i in range(page.index, len(entries)):
        try:
            specs.append((i, _history_spec(backend, entries[i])))
        except ApiError as exc:
            specs.append((i, exc))
    resume = keyset(page.state) if "t" in page.state else None

    def run(reader: Reader) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str | None]:
        success: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        left, room = limit, HISTORY_PAGE_BYTES
        for i, spec in specs:
            entry_id = entries[i]["entryId"]
            if isinstance(spec, ApiError):
                errors.append(_error(entry_id, spec))
                continue
            if left == 0:
                return success, errors, page.token(i)
            table = reader.history(spec.stream, spec.start_ns, spec.end_ns, quality=spec.quality,
                                   descending=spec.descending, limit=left + 1,
                                   after=resume if i == page.index else None)
            values, last, used = history_page(table, left, room)
            success.append({"entryId": entry_id,
                            "assetPropertyValueHistory": typed_nulls(values, null_type(backend, spec.stream))})
            if last is not None:
                return success, errors, page.token(i, t=last["t"], q=last["q"])
            left -= len(values)
            room -= used
        return success, errors, None

    success, errors, next_token = await backend.query(run)
    response: dict[str, Any] = {"successEntries": success, "errorEntries": errors, "skippedEntries": skipped}
    if next_token is not None:
        response["nextToken"] = next_token
    return response


# --- BatchGetAssetPropertyAggregates -----------------------------------------------------------


@dataclass(frozen=True)
class _AggregateSpec:
    stream: str
    types: list[str]
    resolution_ns: int
    start_ns: int
    end_ns: int
    quality: int
    descending: bool


def _aggregate_spec(backend: Backend, entry: dict[str, Any]) -> _AggregateSpec:
    stream = _stream(backend, entry)
    types = parse_aggregate_types(entry.get("aggregateTypes"))
    res = parse_resolution(entry.get("resolution"), backend.api_config.any_resolution)
    start, end = _body_date("startDate", entry.get("startDate")), _body_date("endDate", entry.get("endDate"))
    if start > end:
        raise invalid("startDate must be before endDate")
    qualities = entry.get("qualities")
    if qualities is not None and not isinstance(qualities, list):
        raise invalid("qualities: a list of one quality")
    quality = parse_quality(qualities)
    check_aggregate_types(backend, stream, types)
    return _AggregateSpec(stream, types, res, start, end, int(Quality.GOOD) if quality is None else quality,
                          time_ordering(entry.get("timeOrdering")))


@router.post("/properties/batch/aggregates", summary="BatchGetAssetPropertyAggregates")
async def batch_aggregates(request: Request, backend: BackendDep) -> dict[str, Any]:
    """The 1 MB page limit never binds: 4,000 aggregated values stay well under it."""
    entries, limit, token = await _body(request, MAX_BATCH_ENTRIES, MAX_BATCH_AGGREGATE_RESULTS)
    page = _Page.from_token(token, entries, backend.clock.time())
    skipped = [_skipped(e["entryId"], partial(_aggregate_spec, backend, e), page) for e in entries[:page.index]]
    specs: list[tuple[int, _AggregateSpec | ApiError]] = []
    for i in range(page.index, len(entries)):
        try:
            specs.append((i, _aggregate_spec(backend, entries[i])))
        except ApiError as exc:
            specs.append((i, exc))
    resume = token_int(page.state, "b") if "b" in page.state else None

    def run(reader: Reader) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str | None]:
        success: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        left = limit
        for i, spec in specs:
            entry_id = entries[i]["entryId"]
            if isinstance(spec, ApiError):
                errors.append(_error(entry_id, spec))
                continue
            if left == 0:
                return success, errors, page.token(i)
            start, end = spec.start_ns, spec.end_ns
            if i == page.index and resume is not None:
                start, end = next_window(start, end, resume, spec.resolution_ns, spec.descending)
            table = reader.aggregates([spec.stream], start, end, spec.resolution_ns, quality=spec.quality,
                                      descending=spec.descending, limit=left + 1)
            n = min(left, table.num_rows)
            success.append({"entryId": entry_id,
                            "aggregatedValues": aggregated_values(table.slice(0, n), spec.types)})
            if table.num_rows > n:
                return success, errors, page.token(i, b=table.column("time_ns")[n - 1].as_py())
            left -= n
        return success, errors, None

    success, errors, next_token = await backend.query(run)
    response: dict[str, Any] = {"successEntries": success, "errorEntries": errors, "skippedEntries": skipped}
    if next_token is not None:
        response["nextToken"] = next_token
    return response
