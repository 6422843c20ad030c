"""Pure conversions from asyncua values to sample-batch rows (no I/O).

A ``DataValue`` keeps value, status code, source and server timestamps apart; :func:`convert`
turns one into a :class:`Tqv`: the time (source or server, with fallbacks), the value in one of
the four SiteWise types, and the quality.

==========================================================  ==========  =====================================
OPC UA variant                                              column      value
==========================================================  ==========  =====================================
Boolean                                                     boolean
SByte, Byte, Int16, UInt16, Int32, UInt32, Int64, UInt64    integer     (UInt64 above 2⁶³-1: double)
Float, Double                                               double      NaN, ±inf: UNCERTAIN (SiteWise Edge)
String, XmlElement                                          string      XmlElement: the XML text
LocalizedText                                               string      the text
QualifiedName, NodeId, ExpandedNodeId                       string      ``2:Name``, ``ns=2;s=X``
Guid                                                        string      canonical form
ByteString                                                  string      base64
StatusCode                                                  string      its name, e.g. ``BadTimeout``
DateTime                                                    string      ISO 8601 in UTC, ``...Z``
any array of the above                                      string      a JSON array (as SiteWise Edge does)
ExtensionObject (a structure the server describes)          string      a JSON object of its fields
ExtensionObject not decoded, DataValue, DiagnosticInfo,     —           BAD quality, null value
Null
==========================================================  ==========  =====================================

A node's configured ``type`` forces the column; a value that does not convert becomes BAD.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import json
import math
import uuid
from typing import Any, NamedTuple

from asyncua import ua

from sitewise_edge.clock import NS_PER_S, SYSTEM_CLOCK
from sitewise_edge.samples import Quality, ValueType

Scalar = bool | int | float | str

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_INT64_MAX = 2**63 - 1

_INTEGER_TYPES = frozenset(
    {
        ua.VariantType.SByte,
        ua.VariantType.Byte,
        ua.VariantType.Int16,
        ua.VariantType.UInt16,
        ua.VariantType.Int32,
        ua.VariantType.UInt32,
        ua.VariantType.Int64,
        ua.VariantType.UInt64,
    }
)
_DOUBLE_TYPES = frozenset({ua.VariantType.Float, ua.VariantType.Double})
_STRING_TYPES = frozenset(
    {
        ua.VariantType.String,
        ua.VariantType.XmlElement,
        ua.VariantType.LocalizedText,
        ua.VariantType.QualifiedName,
        ua.VariantType.NodeId,
        ua.VariantType.ExpandedNodeId,
        ua.VariantType.Guid,
        ua.VariantType.ByteString,
        ua.VariantType.StatusCode,
        ua.VariantType.DateTime,
    }
)

_TYPE_NAMES = {t.value.lower(): t for t in ValueType}


class ConversionError(ValueError):
    """A value that cannot be given the requested (or any) SiteWise type."""


class Tqv(NamedTuple):
    """One converted reading: what a sample-batch row needs, plus why it is BAD when it is."""

    time_ns: int
    value: Scalar | None
    type: ValueType | None
    quality: Quality
    error: str | None = None


def value_type(name: str | None) -> ValueType | None:
    """A node's configured ``type`` (``double``, ``integer``, ``string``, ``boolean``) -> ValueType."""
    if name is None:
        return None
    try:
        return _TYPE_NAMES[name.lower()]
    except KeyError:
        raise ConversionError(f"unknown value type {name!r}; expected one of {', '.join(_TYPE_NAMES)}") from None


def quality_of(status: ua.StatusCode | int | None) -> Quality:
    """OPC UA severity (the two top bits of the code) -> SiteWise quality; a missing code is Good."""
    if status is None:
        return Quality.GOOD
    code = status.value if isinstance(status, ua.StatusCode) else int(status)
    severity = (code >> 30) & 0b11
    if severity == 0:
        return Quality.GOOD
    if severity == 1:
        return Quality.UNCERTAIN
    return Quality.BAD


def status_name(status: ua.StatusCode | int | None) -> str:
    """``BadNodeIdUnknown`` for a code; the hex code when the name is unknown."""
    if status is None:
        return "Good"
    code = status if isinstance(status, ua.StatusCode) else ua.StatusCode(ua.UInt32(int(status)))
    try:
        return code.name
    except (KeyError, AttributeError):
        return f"0x{code.value:08X}"


def datetime_ns(value: dt.datetime | None) -> int | None:
    """A datetime (naive = UTC) -> ns since the epoch; None for a missing or pre-1970 time."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    delta = value - _EPOCH
    ns = (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * 1_000
    return ns if ns >= NS_PER_S else None


def pick_time_ns(dv: ua.DataValue, timestamp: str = "source", received_ns: int | None = None) -> int:
    """The row time: the chosen timestamp, else the server's, else the receive time."""
    source = datetime_ns(dv.SourceTimestamp)
    server = datetime_ns(dv.ServerTimestamp)
    chosen = source if timestamp == "source" else server
    if chosen is not None:
        pico = dv.SourcePicoseconds if timestamp == "source" else dv.ServerPicoseconds
        return chosen + (pico or 0) // 100  # picoseconds are counted in 10 ps units
    if server is not None:
        return server
    return received_ns if received_ns is not None else SYSTEM_CLOCK.time_ns()


def iso8601(value: dt.datetime) -> str:
    """``2024-05-01T12:00:00.250000Z``: UTC, microseconds, a ``Z``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _scalar_string(value: Any, vt: ua.VariantType) -> str:
    if vt is ua.VariantType.XmlElement:
        text = getattr(value, "Value", value)  # asyncua's XmlElement wraps the text
        return text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text or "")
    if vt is ua.VariantType.LocalizedText:
        return value.Text or ""
    if vt is ua.VariantType.DateTime:
        return iso8601(value)
    if vt is ua.VariantType.ByteString:
        return base64.b64encode(value).decode("ascii")
    if vt in (ua.VariantType.QualifiedName, ua.VariantType.NodeId, ua.VariantType.ExpandedNodeId):
        return str(value.to_string())
    if vt is ua.VariantType.StatusCode:
        return status_name(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


def _json_item(value: Any, vt: ua.VariantType) -> Any:
    """An array element as JSON: numbers and booleans stay, NaN and ±inf become null."""
    if isinstance(value, list):
        return [_json_item(v, vt) for v in value]
    if value is None:
        return None
    if vt in _INTEGER_TYPES or vt is ua.VariantType.Boolean:
        return value
    if vt in _DOUBLE_TYPES:
        f = float(value)
        return f if math.isfinite(f) else None
    if vt in _STRING_TYPES:
        return _scalar_string(value, vt)
    if vt is ua.VariantType.ExtensionObject:
        return _json_struct(value)
    if vt is ua.VariantType.Variant and isinstance(value, ua.Variant):
        return _json_item(value.Value, value.VariantType)
    raise ConversionError(f"array of {vt.name} is not supported")


def _json_struct(value: Any) -> Any:
    """A decoded structure (asyncua makes a dataclass of each type the server describes) as JSON."""
    if isinstance(value, ua.ExtensionObject):  # asyncua could not decode it
        raise ConversionError(f"structure {value.TypeId.to_string()} is not described by the server "
                              "(no data type definition), it cannot be decoded")
    if isinstance(value, list):
        return [_json_struct(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, ua.Variant):
        return _json_item(value.Value, value.VariantType)
    for vt, kind in _PYTHON_KINDS:
        if isinstance(value, kind):
            return _json_item(value, vt)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _json_struct(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if value is None:
        return None
    raise ConversionError(f"a {type(value).__name__} field is not supported")


# The Python type of each built-in OPC UA type, as asyncua decodes them (bool before int: a bool is an int).
_PYTHON_KINDS: tuple[tuple[ua.VariantType, type], ...] = (
    (ua.VariantType.Boolean, bool),
    (ua.VariantType.Int64, int),
    (ua.VariantType.Double, float),
    (ua.VariantType.String, str),
    (ua.VariantType.ByteString, bytes),
    (ua.VariantType.DateTime, dt.datetime),
    (ua.VariantType.Guid, uuid.UUID),
    (ua.VariantType.LocalizedText, ua.LocalizedText),
    (ua.VariantType.QualifiedName, ua.QualifiedName),
    (ua.VariantType.NodeId, ua.NodeId),
    (ua.VariantType.StatusCode, ua.StatusCode),
)


def variant_value(variant: ua.Variant | None) -> tuple[Scalar, ValueType]:
    """A variant -> its natural SiteWise value and type. Raises ConversionError when there is none."""
    if variant is None or variant.Value is None or variant.VariantType is ua.VariantType.Null:
        raise ConversionError("no value")
    value, vt = variant.Value, variant.VariantType
    if variant.is_array or isinstance(value, list):
        return json.dumps(_json_item(value, vt), separators=(",", ":")), ValueType.STRING
    if vt is ua.VariantType.Boolean:
        return bool(value), ValueType.BOOLEAN
    if vt in _INTEGER_TYPES:
        if int(value) > _INT64_MAX:
            return float(value), ValueType.DOUBLE
        return int(value), ValueType.INTEGER
    if vt in _DOUBLE_TYPES:
        return float(value), ValueType.DOUBLE
    if vt in _STRING_TYPES:
        return _scalar_string(value, vt), ValueType.STRING
    if vt is ua.VariantType.ExtensionObject:
        return json.dumps(_json_struct(value), separators=(",", ":")), ValueType.STRING
    raise ConversionError(f"{vt.name} values are not supported")


def coerce(value: Scalar, natural: ValueType, target: ValueType) -> Scalar:
    """A value of type ``natural`` -> ``target``. Raises ConversionError when it does not convert."""
    if natural is target:
        return value
    try:
        if target is ValueType.STRING:
            if natural is ValueType.BOOLEAN:
                return "true" if value else "false"
            return str(value)
        if target is ValueType.DOUBLE:
            return float(value)
        if target is ValueType.INTEGER:
            if isinstance(value, str):
                return int(value.strip())
            f = float(value)
            if not math.isfinite(f) or abs(f) > _INT64_MAX:
                raise ConversionError(f"{value!r} does not fit an integer")
            return round(f)
        # BOOLEAN
        if isinstance(value, str):
            text = value.strip().lower()
            if text in ("true", "1"):
                return True
            if text in ("false", "0"):
                return False
            raise ConversionError(f"{value!r} is not true, false, 1 or 0")
        if isinstance(value, float) and math.isnan(value):
            raise ConversionError("NaN is not a boolean")
        return value != 0
    except (TypeError, ValueError, OverflowError) as exc:
        if isinstance(exc, ConversionError):
            raise
        raise ConversionError(f"{value!r} does not convert to {target.value.lower()}") from None


def convert(
    dv: ua.DataValue,
    forced: ValueType | None = None,
    timestamp: str = "source",
    received_ns: int | None = None,
) -> Tqv:
    """One DataValue -> one row. Bad status (or a value that does not convert) -> BAD, null value."""
    t = pick_time_ns(dv, timestamp, received_ns)
    quality = quality_of(dv.StatusCode)
    if quality is Quality.BAD:
        return Tqv(t, None, forced, Quality.BAD, status_name(dv.StatusCode))
    try:
        value, natural = variant_value(dv.Value)
        if forced is not None:
            value, natural = coerce(value, natural, forced), forced
    except ConversionError as exc:
        return Tqv(t, None, forced, Quality.BAD, str(exc))
    if isinstance(value, float) and not math.isfinite(value):
        quality = Quality.UNCERTAIN  # as SiteWise Edge keeps NaN: never GOOD
    return Tqv(t, value, natural, quality)
