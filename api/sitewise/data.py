"""SiteWise data-plane routes: BatchPutAssetPropertyValue, GetAssetPropertyValue, GetAssetPropertyValueHistory.

The botocore ``iotsitewise`` service model is the spec: URIs, query parameters,
JSON members, limits, error codes.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request

from api.backend import Backend
from sitewise_edge.errors import ApiError, InvalidValue
from sitewise_edge.samples import (
    NS_PER_S,
    QUALITY_NAMES,
    Quality,
    SampleBuilder,
    column_type,
    parse_sitewise_value,
    to_sitewise_values,
)

router = APIRouter(tags=["SiteWise data plane"])

ENTRY_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_ENTRIES = 10
MAX_VALUES = 10
MAX_HISTORY_RESULTS = 20_000
_DATA_TYPE_COLUMN = {"DOUBLE": "double", "INTEGER": "integer", "STRING": "string", "BOOLEAN": "boolean"}


def _backend(request: Request) -> Backend:
    return request.app.state.backend  # type: ignore[no-any-return]


def invalid(message: str) -> ApiError:
    return ApiError("InvalidRequestException", message)


# --- BatchPutAssetPropertyValue --------------------------------------------------------


@router.post("/properties", summary="BatchPutAssetPropertyValue")
async def batch_put(request: Request) -> dict[str, Any]:
    backend = _backend(request)
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise invalid("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object")
    entries = body.get("entries")
    if not isinstance(entries, list) or not entries:
        raise invalid("entries: required, a list of 1 to 10 entries")
    if len(entries) > MAX_ENTRIES:
        raise invalid(f"entries: at most {MAX_ENTRIES} entries per request, got {len(entries)}")
    partial = bool(body.get("enablePartialEntryProcessing", False))
    seen: set[str] = set()
    builder = SampleBuilder()
    error_entries: list[dict[str, Any]] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise invalid(f"entries[{i}]: must be an object")
        entry_id = entry.get("entryId")
        if not isinstance(entry_id, str) or not ENTRY_ID.match(entry_id):
            raise invalid(f"entries[{i}].entryId: required, 1-64 characters of [a-zA-Z0-9_-], got {entry_id!r}")
        if entry_id in seen:
            raise invalid(f"entries[{i}].entryId: duplicate entryId {entry_id!r}")
        seen.add(entry_id)
        values = entry.get("propertyValues")
        if not isinstance(values, list) or not values:
            raise invalid(f"entries[{i}].propertyValues: required, a list of 1 to 10 values")
        if len(values) > MAX_VALUES:
            raise invalid(f"entries[{i}].propertyValues: at most {MAX_VALUES} values per entry, got {len(values)}")
        errors = _put_entry(backend, entry, values, partial, builder)
        if errors:
            error_entries.append({"entryId": entry_id, "errors": errors})
    if len(builder):
        await backend.ingest(builder.build())
    return {"errorEntries": error_entries}


def _put_entry(
    backend: Backend, entry: dict[str, Any], values: list[Any], partial: bool, builder: SampleBuilder
) -> list[dict[str, Any]]:
    """Stage the entry's good values in ``builder``; return its error list (SiteWise ``errors``)."""
    failures: dict[tuple[str, str], list[dict[str, int]]] = {}

    def fail(code: str, message: str, ts: dict[str, int]) -> None:
        failures.setdefault((code, message), []).append(ts)

    try:
        stream = backend.resolve_stream(entry.get("assetId"), entry.get("propertyId"), entry.get("propertyAlias"))
    except ApiError as exc:
        for v in values:
            fail(exc.code, exc.message, _stamp(v))
        return _errors(failures)
    expected = backend.property_data_type(stream)
    good: list[tuple[int, str | None, Any, int]] = []
    for v in values:
        try:
            t, column, value, q = parse_sitewise_value(v)
            if expected is not None and column is not None and column != _DATA_TYPE_COLUMN.get(expected[0]):
                raise InvalidValue(
                    f"{expected[1]} has data type {expected[0]}; the value is {column_type(column).value}"
                )
        except ApiError as exc:
            fail(exc.code, exc.message, _stamp(v))
            continue
        good.append((t, column, value, q))
    if failures and not partial:
        # an invalid value fails the whole entry unless partial processing is enabled
        for t, _, _, _ in good:
            fail("InvalidRequestException", "another value of this entry is invalid and "
                 "enablePartialEntryProcessing is false", {"timeInSeconds": t // NS_PER_S,
                                                           "offsetInNanos": t % NS_PER_S})
        return _errors(failures)
    for t, column, value, q in good:
        builder.add(stream, t, value, q, as_type=column_type(column) if column else None)
    return _errors(failures)


def _stamp(v: Any) -> dict[str, int]:
    try:
        ts = v["timestamp"]
        return {"timeInSeconds": int(ts["timeInSeconds"]), "offsetInNanos": int(ts.get("offsetInNanos") or 0)}
    except (KeyError, TypeError, ValueError):
        return {"timeInSeconds": 0, "offsetInNanos": 0}


def _errors(failures: dict[tuple[str, str], list[dict[str, int]]]) -> list[dict[str, Any]]:
    return [{"errorCode": code, "errorMessage": msg, "timestamps": stamps} for (code, msg), stamps in failures.items()]


# --- GetAssetPropertyValue ---------------------------------------------------------------


@router.get("/properties/latest", summary="GetAssetPropertyValue")
async def get_latest(
    request: Request,
    assetId: str | None = None,
    propertyId: str | None = None,
    propertyAlias: str | None = None,
) -> dict[str, Any]:
    backend = _backend(request)
    stream = backend.resolve_stream(assetId, propertyId, propertyAlias)
    table = backend.latest(stream)
    if table.num_rows == 0:
        _require_known(backend, stream, propertyAlias)
        return {}
    return {"propertyValue": to_sitewise_values(table)[0]}


def _require_known(backend: Backend, stream: str, alias: str | None) -> None:
    """A disassociated alias with no data at all does not exist (ResourceNotFoundException)."""
    if alias is not None and backend.property_data_type(stream) is None and not _is_property(backend, stream):
        raise ApiError("ResourceNotFoundException", f"No data stream found for the property alias {alias!r}.")


def _is_property(backend: Backend, stream: str) -> bool:
    return backend.registry.property_of_stream(stream) is not None


# --- GetAssetPropertyValueHistory ----------------------------------------------------------


def parse_date(name: str, value: str | None) -> int | None:
    """A query-string date: ISO-8601 (what boto3 sends) or epoch seconds (what the AWS CLI docs show) -> ns."""
    if value is None or value == "":
        return None
    try:
        return round(float(value) * NS_PER_S)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(f"{name}: expected an ISO-8601 date or epoch seconds, got {value!r}") from None
    if dt.tzinfo is None:
        raise invalid(f"{name}: the date {value!r} has no time zone")
    return round(dt.timestamp() * NS_PER_S)


def parse_quality(qualities: list[str] | None) -> int | None:
    if not qualities:
        return None
    if len(qualities) != 1:
        raise invalid(f"qualities: exactly one quality may be given, got {len(qualities)}")
    if qualities[0] not in QUALITY_NAMES:
        raise invalid(f"qualities: unknown quality {qualities[0]!r}; expected GOOD, BAD or UNCERTAIN")
    return int(Quality[qualities[0]])


def encode_token(offset: int) -> str:
    return base64.b64encode(json.dumps({"o": offset}).encode()).decode()


def decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.b64decode(token, validate=True))["o"]
        if not isinstance(offset, int) or offset < 0:
            raise ValueError
        return offset
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise invalid("nextToken: not a token this API issued") from None


@router.get("/properties/history", summary="GetAssetPropertyValueHistory")
async def get_history(
    request: Request,
    assetId: str | None = None,
    propertyId: str | None = None,
    propertyAlias: str | None = None,
    startDate: str | None = None,
    endDate: str | None = None,
    qualities: list[str] | None = Query(default=None),  # noqa: B008
    timeOrdering: str = "ASCENDING",
    nextToken: str | None = None,
    maxResults: int | None = None,
) -> dict[str, Any]:
    backend = _backend(request)
    stream = backend.resolve_stream(assetId, propertyId, propertyAlias)
    start_ns = parse_date("startDate", startDate)
    end_ns = parse_date("endDate", endDate)
    if start_ns is not None and end_ns is not None and start_ns > end_ns:
        raise invalid("startDate must be before endDate")
    if timeOrdering not in ("ASCENDING", "DESCENDING"):
        raise invalid(f"timeOrdering: expected ASCENDING or DESCENDING, got {timeOrdering!r}")
    limit = MAX_HISTORY_RESULTS if maxResults is None else maxResults
    if not 1 <= limit <= MAX_HISTORY_RESULTS:
        raise invalid(f"maxResults: must be 1 to {MAX_HISTORY_RESULTS}, got {maxResults}")
    quality = parse_quality(qualities)
    offset = decode_token(nextToken)
    table = await backend.query(
        lambda r: r.history(stream, start_ns, end_ns, quality=quality, descending=timeOrdering == "DESCENDING",
                            limit=limit + 1, offset=offset)
    )
    if table.num_rows == 0 and offset == 0:
        _require_known(backend, stream, propertyAlias)
    response: dict[str, Any] = {"assetPropertyValueHistory": to_sitewise_values(table.slice(0, limit))}
    if table.num_rows > limit:
        response["nextToken"] = encode_token(offset + limit)
    return response
