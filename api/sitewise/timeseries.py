"""SiteWise time series: list, describe, associate and disassociate the gateway's data streams.

    GET  /timeseries/?assetId=&aliasPrefix=&timeSeriesType=    ListTimeSeries (``TimeSeriesSummaries``)
    GET  /timeseries/describe/?alias=  | ?assetId=&propertyId=  DescribeTimeSeries
    POST /timeseries/associate/?alias=&assetId=&propertyId=     AssociateTimeSeriesToAssetProperty
    POST /timeseries/disassociate/?alias=&assetId=&propertyId=  DisassociateTimeSeriesFromAssetProperty

A time series is a data stream: every asset property has one (*associated*), and values written
by an alias no property has make a *disassociated* one. The stream's key is its alias (or, for a
property without an alias, ``asset:<assetId>/<propertyId>``), so SiteWise's semantics follow:
associating an alias with a property makes the values written by that alias before the
property's history; disassociating leaves them with the alias, a disassociated time series
again. ``timeSeriesId`` is derived from the stream key, so it survives both.

An association is refused where it would hide values: the alias's values are of another data
type than the property (InvalidRequestException), or the property already has values written
by its id (ConflictingOperationException).

    POST /timeseries/delete/?alias=  | ?assetId=&propertyId=   DeleteTimeSeries

``DeleteTimeSeries`` deletes a disassociated time series (by alias): the store keeps a durable
tombstone (``storage/tombstones.py``), so no read sees its values again, and values written by the
alias afterwards form a new time series. As in SiteWise, a time series associated with an asset
property cannot be deleted (ConflictingOperationException, 409: disassociate it first), and an
alias without values is ResourceNotFoundException (404). A retry with the same ``clientToken``
answers as the first request did (the token is kept with the tombstone), and deletes nothing written since.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pyarrow as pa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.backend import Backend, BackendDep, Reader
from api.sitewise.control import CLIENT_TOKEN, apply_change
from api.sitewise.paging import offset_page, page_size
from api.sitewise.render import arn
from api.sitewise.requests import invalid, json_body
from asset_models.errors import ModelInUse, ModelInvalid, ModelNotFound
from asset_models.registry import SYNTHETIC_PREFIX, Change, Registry, synthetic_stream
from sitewise_edge.samples import value_types

router = APIRouter(tags=["SiteWise time series"])

MAX_RESULTS = 250
DEFAULT_RESULTS = 50
TYPES = ("ASSOCIATED", "DISASSOCIATED")
_NAMESPACE = uuid.UUID("6c3e0c1e-3a57-4d7e-9a0b-5f1f3b0c2d11")
_DATA_TYPE = {"double": "DOUBLE", "integer": "INTEGER", "string": "STRING", "boolean": "BOOLEAN"}


def time_series_id(stream: str) -> str:
    """The stable ``timeSeriesId`` of a data stream."""
    return str(uuid.uuid5(_NAMESPACE, stream))


def _summary(stream: str, data_type: str, created: float, updated: float, *, asset_id: str | None = None,
             property_id: str | None = None, alias: str | None = None,
             data_type_spec: str | None = None) -> dict[str, Any]:
    ts_id = time_series_id(stream)
    out: dict[str, Any] = {}
    if asset_id is not None:
        out.update(assetId=asset_id, propertyId=property_id)
    if alias is not None:
        out["alias"] = alias
    out.update(timeSeriesId=ts_id, dataType=data_type)
    if data_type_spec:
        out["dataTypeSpec"] = data_type_spec
    out.update(timeSeriesCreationDate=created, timeSeriesLastUpdateDate=updated, timeSeriesArn=arn("time-series",
                                                                                                    ts_id))
    return out


def _associated(registry: Registry, asset_id: str | None = None) -> list[dict[str, Any]]:
    assets = [registry.asset(asset_id)] if asset_id is not None else registry.assets()
    out = []
    for asset in assets:
        created, updated = registry.created(asset), registry.updated(asset)
        for p in asset.properties:
            stream = p.alias if p.alias is not None else synthetic_stream(asset.id, p.id)
            out.append(_summary(stream, p.data_type, created, updated, asset_id=asset.id, property_id=p.id,
                                alias=p.alias, data_type_spec=p.data_type_spec))
    return out


def _stream_types(latest: pa.Table) -> dict[str, str]:
    """Stream -> SiteWise data type of its latest value (DOUBLE where the latest value is a null)."""
    streams = latest.column("stream").cast(pa.string()).to_pylist()
    kinds = value_types(latest).to_pylist()
    return {s: _DATA_TYPE.get(k or "", "DOUBLE") for s, k in zip(streams, kinds, strict=True)}


def _disassociated(backend: Backend, alias_prefix: str | None) -> list[dict[str, Any]]:
    """The disassociated streams (from the store's latest values), dates still to fill in (:func:`_dated`)."""
    registry = backend.registry
    out = []
    for stream, data_type in sorted(_stream_types(backend.latest_all()).items()):
        if stream.startswith(SYNTHETIC_PREFIX) or registry.property_of_stream(stream) is not None:
            continue
        if alias_prefix is None or stream.startswith(alias_prefix):
            out.append(_summary(stream, data_type, 0.0, 0.0, alias=stream))
    return out


async def _dated(backend: Backend, items: list[dict[str, Any]]) -> None:
    """Fill in the dates of disassociated summaries: when the stream's first value was written."""
    aliases = [i["alias"] for i in items if "assetId" not in i]
    if not aliases:
        return

    def first_times(reader: Reader) -> dict[str, float]:
        out = {}
        for alias in aliases:
            first = reader.history(alias, None, None, limit=1)
            if first.num_rows:
                out[alias] = int(first.column("time").cast(pa.int64())[0].as_py()) / 1e9
        return out

    times = await backend.query(first_times)
    for item in items:
        if "assetId" not in item:
            when = times.get(item["alias"], backend.clock.time())
            item.update(timeSeriesCreationDate=when, timeSeriesLastUpdateDate=when)


@router.get("/timeseries/", summary="ListTimeSeries")
async def list_time_series(backend: BackendDep, assetId: str | None = None, aliasPrefix: str | None = None,
                           timeSeriesType: str | None = None, nextToken: str | None = None,
                           maxResults: int | None = None) -> dict[str, Any]:
    if timeSeriesType is not None and timeSeriesType not in TYPES:
        raise invalid(f"Invalid timeSeriesType {timeSeriesType}. Valid values are ASSOCIATED and DISASSOCIATED.")
    if assetId is not None and timeSeriesType == "DISASSOCIATED":
        raise invalid("assetId selects the time series of an asset's properties: it cannot be combined with "
                      "timeSeriesType DISASSOCIATED.")
    limit = page_size(maxResults, DEFAULT_RESULTS, MAX_RESULTS)
    items: list[dict[str, Any]] = []
    if timeSeriesType != "DISASSOCIATED":
        items += [s for s in _associated(backend.registry, assetId)
                  if aliasPrefix is None or s.get("alias", "").startswith(aliasPrefix)]
    if timeSeriesType != "ASSOCIATED" and assetId is None:
        items += _disassociated(backend, aliasPrefix)
    page = offset_page(items, "TimeSeriesSummaries", nextToken, limit)
    await _dated(backend, page["TimeSeriesSummaries"])
    return page


@router.get("/timeseries/describe/", summary="DescribeTimeSeries")
async def describe_time_series(backend: BackendDep, alias: str | None = None, assetId: str | None = None,
                               propertyId: str | None = None) -> dict[str, Any]:
    registry = backend.registry
    if (assetId is None) != (propertyId is None):
        raise invalid("assetId and propertyId must be given together.")
    if alias is None and assetId is None:
        raise invalid("Either alias, or assetId and propertyId, must be given.")
    if assetId is not None and propertyId is not None:
        ref = registry.property(assetId, propertyId)
        if alias is not None and ref.alias != alias:
            raise ModelNotFound(f"The time series {alias} is not associated with property {ref.property_id} of "
                                f"asset {ref.asset_id}.", alias)
    else:
        assert alias is not None
        found = registry.property_by_alias(alias)
        if found is None:
            types = _stream_types(backend.latest(alias))
            if alias not in types:
                raise ModelNotFound(f"Time series {alias} does not exist.", alias)
            item = _summary(alias, types[alias], 0.0, 0.0, alias=alias)
            await _dated(backend, [item])
            return item
        ref = found
    return next(s for s in _associated(registry, ref.asset_id) if s["propertyId"] == ref.property_id)


def _association(backend: Backend, associate: bool, alias: str, asset_id: str,
                 property_id: str) -> Callable[[Registry], Change]:
    now = backend.clock.time()

    def change(registry: Registry) -> Change:
        if not associate:
            return registry.disassociate_time_series(alias, asset_id, property_id, now)
        ref = registry.property(asset_id, property_id)
        if ref.alias != alias:  # a real change: the values on both sides must fit
            types = _stream_types(backend.latest(alias))
            if alias in types and types[alias] != ref.data_type:
                raise ModelInvalid(f"The time series {alias} holds {types[alias]} values; property "
                                   f"{ref.property_id} ({ref.property_name}) is {ref.data_type}.")
            own = synthetic_stream(ref.asset_id, ref.property_id)
            if ref.alias is None and backend.latest(own).num_rows:
                raise ModelInUse(f"Property {ref.property_id} ({ref.property_name}) of asset {ref.asset_id} "
                                 "already has values written by its id; associating a time series would hide "
                                 "them.", ref.asset_id, "asset")
        return registry.associate_time_series(alias, asset_id, property_id, now)

    return change


async def _associate(request: Request, backend: Backend, operation: str, alias: str, asset_id: str,
                     property_id: str) -> JSONResponse:
    body = await json_body(request, empty_ok=True)
    associate = operation == "AssociateTimeSeriesToAssetProperty"
    return await apply_change(request, backend, operation,
                              _association(backend, associate, alias, asset_id, property_id), body)


@router.post("/timeseries/associate/", summary="AssociateTimeSeriesToAssetProperty")
async def associate_time_series(request: Request, backend: BackendDep, alias: str, assetId: str,
                                propertyId: str) -> JSONResponse:
    return await _associate(request, backend, "AssociateTimeSeriesToAssetProperty", alias, assetId, propertyId)


@router.post("/timeseries/disassociate/", summary="DisassociateTimeSeriesFromAssetProperty")
async def disassociate_time_series(request: Request, backend: BackendDep, alias: str, assetId: str,
                                   propertyId: str) -> JSONResponse:
    return await _associate(request, backend, "DisassociateTimeSeriesFromAssetProperty", alias, assetId, propertyId)


@router.post("/timeseries/delete/", summary="DeleteTimeSeries")
async def delete_time_series(request: Request, backend: BackendDep, alias: str | None = None,
                             assetId: str | None = None, propertyId: str | None = None) -> JSONResponse:
    body = await json_body(request, empty_ok=True)
    token = body.get("clientToken")
    if token is not None and not (isinstance(token, str) and CLIENT_TOKEN.match(token)):
        raise invalid("clientToken: must be 36 to 64 characters without spaces")
    if (assetId is None) != (propertyId is None):
        raise invalid("assetId and propertyId must be given together.")
    if alias is None and assetId is None:
        raise invalid("Either alias, or assetId and propertyId, must be given.")
    registry = backend.registry
    ref = registry.property(assetId, propertyId) if assetId is not None and propertyId is not None else None
    if ref is None and alias is not None:
        ref = registry.property_by_alias(alias)
    if ref is not None:
        stream = ref.alias if ref.alias is not None else synthetic_stream(ref.asset_id, ref.property_id)
        raise ModelInUse(f"The time series {ref.alias or stream} is associated with property {ref.property_id} "
                         f"({ref.property_name}) of asset {ref.asset_id}: disassociate it first "
                         "(DisassociateTimeSeriesFromAssetProperty).", time_series_id(stream), "time-series")
    assert alias is not None
    earlier = backend.deleted_by(token) if token is not None else None
    if earlier is not None:  # a retry: answer as the first request did, without deleting what came since
        if earlier != alias:
            raise invalid(f"clientToken {token} was used by a request to delete {earlier}.")
        return JSONResponse({}, status_code=200)
    if not backend.latest(alias).num_rows:
        raise ModelNotFound(f"Time series {alias} does not exist.", alias)
    await backend.delete_stream(alias, token)
    return JSONResponse({}, status_code=200)
