"""SiteWise read routes over the store: GetAssetPropertyAggregates, GetInterpolatedAssetPropertyValues.

ExecuteQuery (SQL over the SiteWise views) is ``sql.py``.

Semantics where the SiteWise documentation leaves a choice (README, "The SiteWise-compatible API"):

- Aggregates: buckets [B, B + resolution) aligned to multiples of the resolution since the epoch,
  stamped with their start B (the reference's recommendation; SiteWise's own responses are aligned
  to boundaries), over the values in (startDate, endDate]: the first and last bucket hold only the
  window's values. ``qualities`` defaults to GOOD. A bucket without values is not returned.
  STANDARD_DEVIATION is the sample standard deviation; a bucket with a single value has none
  (the member is left out). For STRING and BOOLEAN properties only COUNT exists: asking for any other
  aggregate is an InvalidRequestException that says so. Besides SiteWise's 1m, 15m, 1h and 1d, any
  whole number of seconds, minutes, hours or days (``30s``, ``5m``, ``2h``, ``7d``) is accepted with
  ``api.any_resolution: true`` (an opt-in: a script relying on it fails against SiteWise). ``maxResults``
  defaults to 20 (the user guide's page), at most 2500.
- Interpolation: output times start + k * interval (k >= 1) up to end inclusive; LOCF carries the last
  value of the quality at or before each time (however old, of any type); LINEAR interpolates numeric
  values between the neighbours inside the window and returns nothing where a neighbour is missing
  (no extrapolation); LINEAR is refused for STRING and BOOLEAN properties. ``maxResults`` defaults to
  10, at most 250.
"""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
from fastapi import APIRouter, Query

from api.backend import Backend, BackendDep
from api.sitewise.data import (
    null_type,
    parse_date,
    parse_quality,
    read_stream,
    require_known,
    time_ordering,
    typed_nulls,
)
from api.sitewise.paging import decode_state, encode_state, page_size, token_int
from api.sitewise.requests import invalid
from sitewise_edge.samples import NS_PER_S, QUALITY_NAMES, Quality, to_sitewise_values

router = APIRouter(tags=["SiteWise data plane"])

MAX_AGGREGATE_RESULTS = 2500
DEFAULT_AGGREGATE_RESULTS = 20  # the user guide: "20 ... when maxResults is not given"
MAX_INTERPOLATED_RESULTS = 250
DEFAULT_INTERPOLATED_RESULTS = 10
AGGREGATE_MEMBERS = {  # aggregateTypes value -> (Reader.aggregates column, response member)
    "AVERAGE": ("avg", "average"),
    "COUNT": ("count", "count"),
    "MAXIMUM": ("max", "maximum"),
    "MINIMUM": ("min", "minimum"),
    "SUM": ("sum", "sum"),
    "STANDARD_DEVIATION": ("stddev", "standardDeviation"),
}
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RESOLUTION = re.compile(r"^([1-9][0-9]{0,6})([smhd])$")
INTERPOLATION_TYPES = {"LINEAR_INTERPOLATION": "LINEAR", "LOCF_INTERPOLATION": "LOCF"}
_NON_NUMERIC = ("STRING", "BOOLEAN")


# --- shared with the batch routes ------------------------------------------------------------


SITEWISE_RESOLUTIONS = ("1m", "15m", "1h", "1d")


def parse_resolution(value: Any, any_resolution: bool = False) -> int:
    """``1m``, ``15m``, ``1h``, ``1d`` (SiteWise) -> ns; with ``any_resolution`` (``api.any_resolution``) any
    whole ``<n>s|m|h|d`` too."""
    match = _RESOLUTION.match(value) if isinstance(value, str) else None
    if match is None or (not any_resolution and value not in SITEWISE_RESOLUTIONS):
        other = ("any <n>s, <n>m, <n>h, <n>d" if any_resolution else
                 "others, such as 30s or 5m, with the setting api.any_resolution: true")
        raise invalid(f"resolution: expected 1m, 15m, 1h or 1d ({other}), got {value!r}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)] * NS_PER_S


def parse_aggregate_types(values: Any) -> list[str]:
    if not isinstance(values, list) or not values:
        raise invalid("aggregateTypes: required, one or more of " + ", ".join(AGGREGATE_MEMBERS))
    for v in values:
        if v not in AGGREGATE_MEMBERS:
            raise invalid(f"aggregateTypes: unknown aggregate {v!r}; expected one of " + ", ".join(AGGREGATE_MEMBERS))
    return list(dict.fromkeys(values))


def check_aggregate_types(backend: Backend, stream: str, types: list[str]) -> None:
    """Only COUNT exists for STRING and BOOLEAN properties (SiteWise computes nothing else for them)."""
    declared = backend.property_data_type(stream)
    other = [t for t in types if t != "COUNT"]
    if declared is not None and declared[0] in _NON_NUMERIC and other:
        raise invalid(f"{declared[1]} has data type {declared[0]}: only the COUNT aggregate is computed for "
                      f"STRING and BOOLEAN properties, not {', '.join(other)}")


def aggregated_values(table: pa.Table, types: list[str]) -> list[dict[str, Any]]:
    """Rows of ``Reader.aggregates`` -> SiteWise ``AggregatedValue`` objects (an API edge)."""
    columns = {t: table.column(AGGREGATE_MEMBERS[t][0]).to_pylist() for t in types}
    times = table.column("time_ns").to_pylist()
    qualities = table.column("quality").to_pylist()
    out: list[dict[str, Any]] = []
    for i, t in enumerate(times):
        value = {AGGREGATE_MEMBERS[name][1]: float(col[i]) for name, col in columns.items() if col[i] is not None}
        out.append({"timestamp": t // NS_PER_S if t % NS_PER_S == 0 else t / NS_PER_S,
                    "quality": QUALITY_NAMES[qualities[i]], "value": value})
    return out


def next_window(start_ns: int, end_ns: int, last_bucket: int, resolution_ns: int,
                descending: bool) -> tuple[int, int]:
    """The (start, end] window of the buckets after ``last_bucket`` in the page order (keyset paging)."""
    if descending:
        return start_ns, min(end_ns, last_bucket - 1)
    return max(start_ns, last_bucket + resolution_ns - 1), end_ns


# --- GetAssetPropertyAggregates --------------------------------------------------------------


@router.get("/properties/aggregates", summary="GetAssetPropertyAggregates")
async def get_aggregates(
    backend: BackendDep,
    aggregateTypes: list[str] | None = Query(default=None),  # noqa: B008
    resolution: str | None = None,
    startDate: str | None = None,
    endDate: str | None = None,
    assetId: str | None = None,
    propertyId: str | None = None,
    propertyAlias: str | None = None,
    qualities: list[str] | None = Query(default=None),  # noqa: B008
    timeOrdering: str | None = None,
    nextToken: str | None = None,
    maxResults: int | None = None,
) -> dict[str, Any]:
    stream = read_stream(backend, assetId, propertyId, propertyAlias)
    types = parse_aggregate_types(aggregateTypes)
    res = parse_resolution(resolution, backend.api_config.any_resolution)
    start_ns, end_ns = parse_date("startDate", startDate), parse_date("endDate", endDate)
    if start_ns is None or end_ns is None:
        raise invalid("startDate and endDate are required")
    if start_ns > end_ns:
        raise invalid("startDate must be before endDate")
    descending = time_ordering(timeOrdering)
    limit = page_size(maxResults, DEFAULT_AGGREGATE_RESULTS, MAX_AGGREGATE_RESULTS)
    quality = parse_quality(qualities)
    quality = int(Quality.GOOD) if quality is None else quality
    check_aggregate_types(backend, stream, types)
    if nextToken:
        start_ns, end_ns = next_window(start_ns, end_ns, token_int(decode_state(nextToken), "b"), res, descending)
    else:
        require_known(backend, stream, propertyAlias)
    lo, hi = start_ns, end_ns
    table = await backend.query(
        lambda r: r.aggregates([stream], lo, hi, res, quality=quality, descending=descending, limit=limit + 1))
    response: dict[str, Any] = {"aggregatedValues": aggregated_values(table.slice(0, limit), types)}
    if table.num_rows > limit:
        response["nextToken"] = encode_state({"b": table.column("time_ns")[limit - 1].as_py()})
    return response


# --- GetInterpolatedAssetPropertyValues ------------------------------------------------------


def interpolated_values(table: pa.Table, value_type: str = "U") -> list[dict[str, Any]]:
    """Rows of ``Reader.interpolated`` -> SiteWise ``InterpolatedAssetPropertyValue`` objects."""
    samples = pa.table({
        "time": table.column("time_ns").cast(pa.timestamp("ns", tz="UTC")),
        "double": table.column("double"), "integer": table.column("integer"),
        "string": table.column("string"), "boolean": table.column("boolean"),
        "quality": pa.array([0] * table.num_rows, pa.int8()),
    })
    return [{"timestamp": v["timestamp"], "value": v["value"]} for v in typed_nulls(to_sitewise_values(samples),
                                                                                      value_type)]


@router.get("/properties/interpolated", summary="GetInterpolatedAssetPropertyValues")
async def get_interpolated(
    backend: BackendDep,
    startTimeInSeconds: int,
    endTimeInSeconds: int,
    quality: str,
    intervalInSeconds: int,
    type: str,
    assetId: str | None = None,
    propertyId: str | None = None,
    propertyAlias: str | None = None,
    startTimeOffsetInNanos: int = 0,
    endTimeOffsetInNanos: int = 0,
    intervalWindowInSeconds: int | None = None,
    nextToken: str | None = None,
    maxResults: int | None = None,
) -> dict[str, Any]:
    stream = read_stream(backend, assetId, propertyId, propertyAlias)
    kind = INTERPOLATION_TYPES.get(type)
    if kind is None:
        raise invalid(f"type: expected LINEAR_INTERPOLATION or LOCF_INTERPOLATION, got {type!r}")
    if quality not in QUALITY_NAMES:
        raise invalid(f"quality: expected GOOD, BAD or UNCERTAIN, got {quality!r}")
    for name, value in (("startTimeOffsetInNanos", startTimeOffsetInNanos),
                        ("endTimeOffsetInNanos", endTimeOffsetInNanos)):
        if not 0 <= value <= 999_999_999:
            raise invalid(f"{name}: must be 0 to 999999999, got {value}")
    for name, value in (("startTimeInSeconds", startTimeInSeconds), ("endTimeInSeconds", endTimeInSeconds)):
        if not 1 <= value <= 9223372036854774:
            raise invalid(f"{name}: must be 1 to 9223372036854774, got {value}")
    for name, v in (("intervalInSeconds", intervalInSeconds), ("intervalWindowInSeconds", intervalWindowInSeconds)):
        if v is not None and not 1 <= v <= 320_000_000:
            raise invalid(f"{name}: must be 1 to 320000000, got {v}")
    if intervalWindowInSeconds is not None and kind != "LINEAR":
        raise invalid("intervalWindowInSeconds: only with type LINEAR_INTERPOLATION")
    start_ns = startTimeInSeconds * NS_PER_S + startTimeOffsetInNanos
    end_ns = endTimeInSeconds * NS_PER_S + endTimeOffsetInNanos
    if start_ns > end_ns:
        raise invalid("the start time must be before the end time")
    limit = page_size(maxResults, DEFAULT_INTERPOLATED_RESULTS, MAX_INTERPOLATED_RESULTS)
    declared = backend.property_data_type(stream)
    if kind == "LINEAR" and declared is not None and declared[0] in _NON_NUMERIC:
        raise invalid(f"{declared[1]} has data type {declared[0]}: LINEAR_INTERPOLATION needs a number; "
                      "use LOCF_INTERPOLATION")
    first_k = token_int(decode_state(nextToken), "k") if nextToken else 1
    if not nextToken:
        require_known(backend, stream, propertyAlias)
    interval = intervalInSeconds * NS_PER_S
    window = intervalWindowInSeconds * NS_PER_S if intervalWindowInSeconds is not None else None
    q = int(Quality[quality])
    table = await backend.query(
        lambda r: r.interpolated(stream, start_ns, end_ns, interval, kind=kind, quality=q, window_ns=window,
                                 first_k=first_k, limit=limit + 1))
    response: dict[str, Any] = {"interpolatedAssetPropertyValues": interpolated_values(
        table.slice(0, limit), null_type(backend, stream))}
    if table.num_rows > limit:
        response["nextToken"] = encode_state({"k": table.column("k")[limit].as_py()})
    return response
