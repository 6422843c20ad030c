"""SiteWise data-plane routes: BatchPutAssetPropertyValue, GetAssetPropertyValue, GetAssetPropertyValueHistory.

The botocore ``iotsitewise`` service model is the spec: URIs, query parameters,
JSON members, limits, error codes. The helpers here (dates, qualities, history pages, the
stream of an entry) are shared by the other read routes (``query.py``, ``batch.py``); request
bodies and entries are read by ``requests.py``, tokens and page sizes by ``paging.py``.

History pages by keyset: the token holds the (time, quality) of the last value returned, so
values written between two pages neither shift nor repeat what the next page returns; a page holds 20
values unless ``maxResults`` says otherwise (the user guide's default), at most 20,000.

Wire rules of the reads: a null value (BAD or UNCERTAIN without a value) keeps its type,
``nullValue.valueType`` D, I, S or B from the property's data type (U only for a stream of no property);
an ``assetId``/``propertyId`` that is not found and is not a SiteWise ID (a lower-case UUID) is a
malformed request (400 InvalidRequestException), a well-formed unknown one ResourceNotFoundException.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from fastapi import APIRouter, Query, Request

from api.backend import Backend, BackendDep
from api.sitewise.errors import sitewise_error
from api.sitewise.paging import decode_state, encode_state, page_size, token_int
from api.sitewise.put_columns import MAX_ENTRIES, MAX_VALUES, accept, parse_put
from api.sitewise.requests import check_entries, invalid, json_body
from asset_models.errors import ModelNotFound
from sitewise_edge.errors import ApiError, InvalidValue, ModelError
from sitewise_edge.samples import (
    MAX_SECONDS,
    NS_PER_S,
    QUALITY_NAMES,
    Quality,
    SampleBuilder,
    column_type,
    parse_sitewise_value,
    sample_to_sitewise,
    to_sitewise_values,
)

router = APIRouter(tags=["SiteWise data plane"])
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

MAX_HISTORY_RESULTS = 20_000
DEFAULT_HISTORY_RESULTS = 20  # the user guide: 20 values a page when maxResults is not given
HISTORY_PAGE_BYTES = 4 * 1024 * 1024
_TQV_JSON_BYTES = 110  # a TQV's JSON without its string value, rounded up
_DATA_TYPE_COLUMN = {"DOUBLE": "double", "INTEGER": "integer", "STRING": "string", "BOOLEAN": "boolean"}
_VALUE_TYPE = {"DOUBLE": "D", "INTEGER": "I", "STRING": "S", "BOOLEAN": "B"}
_ID = re.compile(r"^(?!00000000-0000-0000-0000-000000000000)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
                 r"[0-9a-f]{12}$")  # botocore's ID shape


# --- BatchPutAssetPropertyValue --------------------------------------------------------


@router.post("/properties", summary="BatchPutAssetPropertyValue")
async def batch_put(request: Request, backend: BackendDep) -> dict[str, Any]:
    """A request whose every value is good goes the columnar way (``put_columns.py``); any other is read
    value by value here, the reference path, which answers every error per entry."""
    latest_ns = int((backend.clock.time() + backend.api_config.future_limit) * NS_PER_S)
    batch = _columnar(backend, await request.body(), latest_ns)
    if batch is not None:
        await backend.ingest(batch)
        return {"errorEntries": []}
    body = await json_body(request)
    entries = check_entries(body, MAX_ENTRIES)
    partial = bool(body.get("enablePartialEntryProcessing", False))
    builder = SampleBuilder()
    error_entries: list[dict[str, Any]] = []
    for i, entry in enumerate(entries):
        values = entry.get("propertyValues")
        if not isinstance(values, list) or not values:
            raise invalid(f"entries[{i}].propertyValues: required, a list of 1 to 10 values")
        if len(values) > MAX_VALUES:
            raise invalid(f"entries[{i}].propertyValues: at most {MAX_VALUES} values per entry, got {len(values)}")
        errors = _put_entry(backend, entry, values, partial, builder, latest_ns)
        if errors:
            error_entries.append({"entryId": entry["entryId"], "errors": errors})
    if len(builder):
        await backend.ingest(builder.build())
    return {"errorEntries": error_entries}


def _columnar(backend: Backend, raw: bytes, latest_ns: int) -> pa.RecordBatch | None:
    """The request's sample batch by the columnar path; None: the reference path must answer it."""
    parsed = parse_put(raw, backend.api_config.max_json_depth)
    if parsed is None:
        return None
    streams: list[str] = []
    expected: list[str | None] = []
    for asset_id, property_id, alias in parsed.names:  # at most 10 entries
        try:
            stream = read_stream(backend, asset_id, property_id, alias)
        except (ModelError, ApiError):
            return None
        declared = backend.property_data_type(stream)
        if declared is not None and (declared[2] != "measurement" or declared[0] not in _DATA_TYPE_COLUMN):
            return None
        streams.append(stream)
        expected.append(None if declared is None else _DATA_TYPE_COLUMN[declared[0]])
    return accept(parsed, streams, expected, latest_ns)


def _put_entry(
    backend: Backend, entry: dict[str, Any], values: list[Any], partial: bool, builder: SampleBuilder,
    latest_ns: int,
) -> list[dict[str, Any]]:
    """Stage the entry's good values in ``builder``; return its error list (SiteWise ``errors``).

    A value stamped after ``latest_ns`` (the clock plus ``api.future_limit``) is refused with
    TimestampOutOfRangeException, as SiteWise refuses one more than 10 minutes ahead: else a wrong
    device clock (year 2200) would become the stream's latest value for good."""
    failures: dict[tuple[str, str], list[dict[str, int]]] = {}

    def fail(code: str, message: str, ts: dict[str, int]) -> None:
        failures.setdefault((code, message), []).append(ts)

    try:
        stream = entry_stream(backend, entry)
    except ApiError as exc:
        for v in values:
            fail(exc.code, exc.message, _stamp(v))
        return _errors(failures)
    expected = backend.property_data_type(stream)
    if expected is not None and expected[2] != "measurement":
        # what the gateway would refuse after answering: SiteWise ingests into measurements only
        message = f"{expected[1]} is a {expected[2]}: values can only be written to measurements"
        for v in values:
            fail("InvalidRequestException", message, _stamp(v))
        return _errors(failures)
    good: list[tuple[int, str | None, Any, int]] = []
    for v in values:
        try:
            t, column, value, q = parse_sitewise_value(v)
            if t > latest_ns:
                raise InvalidValue(f"the timestamp is more than {backend.api_config.future_limit:g} s ahead of the "
                                   "gateway's clock (api.future_limit)", "TimestampOutOfRangeException")
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


def entry_stream(backend: Backend, entry: dict[str, Any]) -> str:
    """The stream a batch entry names; a problem with it as the SiteWise error the entry reports (ApiError)."""
    try:
        return read_stream(backend, entry.get("assetId"), entry.get("propertyId"), entry.get("propertyAlias"))
    except ModelError as exc:
        raise sitewise_error(exc) from None


def _stamp(v: Any) -> dict[str, int]:
    try:
        ts = v["timestamp"]
        return {"timeInSeconds": int(ts["timeInSeconds"]), "offsetInNanos": int(ts.get("offsetInNanos") or 0)}
    except (KeyError, TypeError, ValueError):
        return {"timeInSeconds": 0, "offsetInNanos": 0}


def _errors(failures: dict[tuple[str, str], list[dict[str, int]]]) -> list[dict[str, Any]]:
    return [{"errorCode": code, "errorMessage": msg, "timestamps": stamps} for (code, msg), stamps in failures.items()]


# --- what every read shares --------------------------------------------------------------


def read_stream(backend: Backend, asset_id: str | None, property_id: str | None, alias: str | None) -> str:
    """The stream a read names. Not found and not of SiteWise's ID form: InvalidRequestException."""
    try:
        return backend.resolve_stream(asset_id, property_id, alias)
    except ModelNotFound:
        for name, value in (("assetId", asset_id), ("propertyId", property_id)):
            if value and not _ID.match(value):
                raise invalid(f"{name}: {value!r} is not a valid ID: expected a lower-case UUID such as "
                              "5b1e4e6c-2a0e-4f3c-9d1e-0f7a3b2c1d4e") from None
        raise


def null_type(backend: Backend, stream: str) -> str:
    """``nullValue.valueType`` of the stream's nulls: its property's data type, U without a property."""
    declared = backend.property_data_type(stream)
    return _VALUE_TYPE.get(declared[0], "U") if declared is not None else "U"


def typed_nulls(values: list[dict[str, Any]], value_type: str) -> list[dict[str, Any]]:
    """The TQVs with their nulls typed (``{"nullValue": {"valueType": value_type}}``)."""
    if value_type != "U":
        for v in values:
            if "nullValue" in v["value"]:
                v["value"] = {"nullValue": {"valueType": value_type}}
    return values


# --- GetAssetPropertyValue ---------------------------------------------------------------


@router.get("/properties/latest", summary="GetAssetPropertyValue")
async def get_latest(
    backend: BackendDep,
    assetId: str | None = None,
    propertyId: str | None = None,
    propertyAlias: str | None = None,
) -> dict[str, Any]:
    return latest_answer(backend, assetId, propertyId, propertyAlias)


def latest_answer(backend: Backend, asset_id: str | None, property_id: str | None,
                  alias: str | None) -> dict[str, Any]:
    """GetAssetPropertyValue's answer, from the in-memory latest index (no query, no thread).
    ``api/app.py``'s hot path calls it too, without FastAPI's routing."""
    stream = read_stream(backend, asset_id, property_id, alias)
    value = backend.latest_value(stream)
    if value is None:
        require_known(backend, stream, alias)
        return {}
    return {"propertyValue": sample_to_sitewise(value, null_type(backend, stream) if value.column is None else "U")}



def require_known(backend: Backend, stream: str, alias: str | None) -> None:
    """A disassociated alias with no data at all does not exist (ResourceNotFoundException)."""
    if alias is not None and not is_known(backend, stream):
        raise ApiError("ResourceNotFoundException", f"No data stream found for the property alias {alias!r}.")


def is_known(backend: Backend, stream: str) -> bool:
    """A stream of an asset property, or one that holds data (from the in-memory latest index, no scan)."""
    return backend.property_data_type(stream) is not None or _is_property(backend, stream) \
        or backend.latest_value(stream) is not None


def _is_property(backend: Backend, stream: str) -> bool:
    return backend.registry.property_of_stream(stream) is not None


# --- GetAssetPropertyValueHistory ----------------------------------------------------------


def parse_date(name: str, value: str | None) -> int | None:
    """A query-string date: ISO-8601 (what boto3 sends) or epoch seconds (what the AWS CLI docs show) -> ns.

    Exact integer arithmetic: a float would move a bound by a few hundred nanoseconds and turn an
    exclusive start or an inclusive end into the wrong one.
    """
    if value is None or value == "":
        return None
    try:
        seconds = Decimal(value)
    except InvalidOperation:
        seconds = None
    if seconds is not None:
        if not seconds.is_finite() or not 0 <= seconds <= MAX_SECONDS:
            raise invalid(f"{name}: epoch seconds must be 0..{MAX_SECONDS}, got {value!r}")
        return int(seconds * NS_PER_S)
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(f"{name}: expected an ISO-8601 date or epoch seconds, got {value!r}") from None
    if dt.tzinfo is None:
        raise invalid(f"{name}: the date {value!r} has no time zone")
    delta = dt - EPOCH
    ns = (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * 1000
    if not 0 <= ns <= MAX_SECONDS * NS_PER_S:
        raise invalid(f"{name}: {value!r} is outside the range the store holds (1970 to 2262)")
    return ns


def parse_quality(qualities: list[str] | None) -> int | None:
    if not qualities:
        return None
    if len(qualities) != 1:
        raise invalid(f"qualities: exactly one quality may be given, got {len(qualities)}")
    if qualities[0] not in QUALITY_NAMES:
        raise invalid(f"qualities: unknown quality {qualities[0]!r}; expected GOOD, BAD or UNCERTAIN")
    return int(Quality[qualities[0]])


def _cumulative_bytes(table: pa.Table, n: int) -> np.ndarray:
    """The estimated JSON bytes of the first 1..n rows of a sample table."""
    strings = pc.fill_null(pc.binary_length(table.column("string").slice(0, n)), 0)
    return np.cumsum(strings.to_numpy() + _TQV_JSON_BYTES)


def fitting_rows(table: pa.Table, limit: int, budget: int = HISTORY_PAGE_BYTES) -> int:
    """How many of the first rows fit in a page of ``limit`` values and ``budget`` bytes (at least one)."""
    n = min(limit, table.num_rows)
    if n == 0:
        return 0
    return max(1, int(np.searchsorted(_cumulative_bytes(table, n), budget, side="right")))


def history_page(
    table: pa.Table, limit: int, budget: int = HISTORY_PAGE_BYTES
) -> tuple[list[dict[str, Any]], dict[str, int] | None, int]:
    """A page of the rows (fetched with one extra): its values, the keyset of its last row if more
    follow, and the bytes it takes of the page budget."""
    n = fitting_rows(table, limit, budget)
    page = table.slice(0, n)
    used = int(_cumulative_bytes(page, n)[-1]) if n else 0
    if table.num_rows <= n:
        return to_sitewise_values(page), None, used
    last_t = int(page.column("time").cast(pa.int64())[n - 1].as_py())
    last_q = int(page.column("quality")[n - 1].as_py())
    return to_sitewise_values(page), {"t": last_t, "q": last_q}, used


def keyset(state: dict[str, Any]) -> tuple[int, int]:
    return token_int(state, "t"), token_int(state, "q")


def time_ordering(value: str | None) -> bool:
    """``timeOrdering`` -> descending?"""
    if value in (None, "ASCENDING"):
        return False
    if value == "DESCENDING":
        return True
    raise invalid(f"timeOrdering: expected ASCENDING or DESCENDING, got {value!r}")


@router.get("/properties/history", summary="GetAssetPropertyValueHistory")
async def get_history(
    backend: BackendDep,
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
    stream = read_stream(backend, assetId, propertyId, propertyAlias)
    start_ns = parse_date("startDate", startDate)
    end_ns = parse_date("endDate", endDate)
    if start_ns is not None and end_ns is not None and start_ns > end_ns:
        raise invalid("startDate must be before endDate")
    descending = time_ordering(timeOrdering)
    limit = page_size(maxResults, DEFAULT_HISTORY_RESULTS, MAX_HISTORY_RESULTS)
    quality = parse_quality(qualities)
    after = keyset(decode_state(nextToken)) if nextToken else None
    table = await backend.query(
        lambda r: r.history(stream, start_ns, end_ns, quality=quality, descending=descending,
                            limit=limit + 1, after=after)
    )
    if table.num_rows == 0 and after is None:
        require_known(backend, stream, propertyAlias)
    values, last, _ = history_page(table, limit)
    response: dict[str, Any] = {"assetPropertyValueHistory": typed_nulls(values, null_type(backend, stream))}
    if last is not None:
        response["nextToken"] = encode_state(last)
    return response
