"""DataValues -> one sample batch, whole columns at a time (the connector's hot path; no I/O).

    targets = Targets.build([[("/a", None)], [("/b", ValueType.DOUBLE), ("/b2", None)]])
    done = to_batch(dvs, slots, targets, "source", received_ns)   # slots[i]: the slot of dvs[i]
    done.batch, done.errors                                       # errors: (target, message) of BAD rows

A *slot* is what the server reports on (a monitored item's client handle, a node of a Read);
a *target* is an alias that slot feeds (one node id may feed several aliases). The common
values -- scalar Boolean, integers and floats with a Good or Uncertain status -- are converted
column by column: one pass collects the fields asyncua decoded, numpy and Arrow do the rest.
Every other row (strings, arrays, structures, a Bad status, a forced type that differs from the
value's) goes through :func:`~connectors.opcua.convert.convert`, value by value, with the same
result it always had.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from asyncua import ua

from connectors.opcua.convert import convert
from sitewise_edge.samples import VALUE_COLUMNS, Quality, ValueType, from_columns

_DOUBLE, _INTEGER, _STRING, _BOOLEAN = range(4)  # the order of VALUE_COLUMNS
_CODE = {ValueType.DOUBLE: _DOUBLE, ValueType.INTEGER: _INTEGER, ValueType.STRING: _STRING,
         ValueType.BOOLEAN: _BOOLEAN}
_NO_TYPE = -1

# variant type id -> the column its scalars go to without conversion (-1: the per-value path)
_NATURAL = np.full(64, -1, np.int8)
_NATURAL[ua.VariantType.Boolean.value] = _BOOLEAN
for _vt in (ua.VariantType.SByte, ua.VariantType.Byte, ua.VariantType.Int16, ua.VariantType.UInt16,
            ua.VariantType.Int32, ua.VariantType.UInt32, ua.VariantType.Int64, ua.VariantType.UInt64):
    _NATURAL[_vt.value] = _INTEGER
_NATURAL[ua.VariantType.Float.value] = _DOUBLE
_NATURAL[ua.VariantType.Double.value] = _DOUBLE

_QUALITY_OF_SEVERITY = np.array([Quality.GOOD, Quality.UNCERTAIN, Quality.BAD, Quality.BAD], np.int8)
_MIN_US = 1_000_000  # a time before 1970-01-01T00:00:01 is no time (as convert.datetime_ns)
_US = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True, slots=True)
class Targets:
    """Which aliases each slot feeds, as arrays. Build with :meth:`build` when the slots change."""

    aliases: pa.Array  # string, per target
    types: tuple[ValueType | None, ...]  # per target: the configured type, if any
    forced: np.ndarray  # int8 per target: the column code of the configured type, or -1
    first: np.ndarray  # int64 per slot: its first target (-1: the slot feeds none)
    count: np.ndarray  # int64 per slot: how many targets
    flat: np.ndarray  # int64: every slot's targets, in slot order
    multi: bool  # some slot feeds more than one target

    @staticmethod
    def build(slots: Sequence[Sequence[tuple[str, ValueType | None]]]) -> Targets:
        aliases: list[str] = []
        types: list[ValueType | None] = []
        first = np.full(len(slots), -1, np.int64)
        count = np.zeros(len(slots), np.int64)
        for i, feeds in enumerate(slots):
            if feeds:
                first[i] = len(aliases)
                count[i] = len(feeds)
            for alias, forced in feeds:
                aliases.append(alias)
                types.append(forced)
        forced_codes = np.array([_CODE[t] if t is not None else _NO_TYPE for t in types], np.int8)
        return Targets(pa.array(aliases, pa.string()), tuple(types), forced_codes, first, count,
                       np.arange(len(aliases), dtype=np.int64), bool((count > 1).any()))


@dataclass(frozen=True, slots=True)
class Converted:
    batch: pa.RecordBatch
    targets: np.ndarray  # int64 per row: its target
    errors: list[tuple[int, str]]  # (target, why its row is BAD) for values that did not convert
    dropped: int  # values of slots that feed no target


def to_batch(dvs: Sequence[ua.DataValue], slots: np.ndarray, targets: Targets, timestamp: str,
             received_ns: int) -> Converted:
    """One row per (DataValue, target of its slot), in arrival order."""
    n = len(dvs)
    slots = np.asarray(slots, np.int64)
    known = (slots >= 0) & (slots < len(targets.first))
    known[known] = targets.first[slots[known]] >= 0
    dropped = int(n - np.count_nonzero(known))
    if dropped:
        keep = np.flatnonzero(known)
        dvs = [dvs[i] for i in keep.tolist()]
        slots = slots[keep]
        n = len(dvs)
    if targets.multi:
        counts = targets.count[slots]
        pos = np.repeat(np.arange(n), counts)
        ends = np.cumsum(counts)
        within = np.arange(len(pos)) - np.repeat(ends - counts, counts)
        tid = targets.flat[targets.first[slots][pos] + within]
    else:
        pos = None
        tid = targets.first[slots]
    return _convert(dvs, pos, tid, targets, timestamp, received_ns, dropped)


def _convert(dvs: Sequence[ua.DataValue], pos: np.ndarray | None, tid: np.ndarray, targets: Targets,
             timestamp: str, received_ns: int, dropped: int) -> Converted:
    rows = len(tid)
    variants = [dv.Value for dv in dvs]
    values = [v.Value if v is not None else None for v in variants]
    natural = _NATURAL[_variant_types(variants)]
    scalar = np.fromiter([v is not None and not v.is_array for v in variants], np.bool_, len(variants))
    status = np.fromiter([0 if (s := dv.StatusCode) is None else s.value for dv in dvs], np.uint32, len(dvs))
    severity = (status >> 30).astype(np.int8)
    time_ns = _times(dvs, timestamp, received_ns)
    if pos is not None:  # rows -> their DataValue
        natural, scalar, severity, time_ns = natural[pos], scalar[pos], severity[pos], time_ns[pos]
    forced = targets.forced[tid]
    fast = (natural >= 0) & scalar & (severity < 2) & ((forced == _NO_TYPE) | (forced == natural))
    quality = _QUALITY_OF_SEVERITY[severity]
    valid = np.zeros((4, rows), np.bool_)
    double = np.zeros(rows, np.float64)
    integer = np.zeros(rows, np.int64)
    boolean = np.zeros(rows, np.bool_)
    strings: list[str | None] | None = None
    for code, column in ((_DOUBLE, double), (_INTEGER, integer), (_BOOLEAN, boolean)):
        idx = np.flatnonzero(fast & (natural == code))
        if not len(idx):
            continue
        src = idx if pos is None else pos[idx]
        picked = values if len(src) == len(values) and pos is None else [values[i] for i in src.tolist()]
        try:
            column[idx] = np.fromiter(picked, column.dtype, len(idx))
        except (TypeError, ValueError, OverflowError):  # None, or a UInt64 beyond int64: value by value
            fast[idx] = False
            continue
        valid[code, idx] = True
    finite = np.isfinite(double)
    quality[valid[_DOUBLE] & ~finite] = Quality.UNCERTAIN  # NaN, ±inf: never GOOD (as convert)
    errors: list[tuple[int, str]] = []
    slow = np.flatnonzero(~fast)
    if len(slow):
        strings = [None] * rows
        for r in slow.tolist():
            dv = dvs[r if pos is None else int(pos[r])]
            t = int(tid[r])
            tqv = convert(dv, targets.types[t], timestamp, received_ns)
            time_ns[r] = tqv.time_ns
            quality[r] = tqv.quality
            if tqv.error is not None:
                errors.append((t, tqv.error))
            if tqv.value is None or tqv.type is None:
                continue
            code = _CODE[tqv.type]
            valid[code, r] = True
            if code == _DOUBLE:
                double[r] = tqv.value
            elif code == _INTEGER:
                integer[r] = tqv.value
            elif code == _BOOLEAN:
                boolean[r] = tqv.value
            else:
                strings[r] = str(tqv.value)
    columns = {
        "double": pa.array(double, pa.float64(), mask=~valid[_DOUBLE]),
        "integer": pa.array(integer, pa.int64(), mask=~valid[_INTEGER]),
        "string": pa.array(strings, pa.string()) if strings is not None else pa.nulls(rows, pa.string()),
        "boolean": pa.array(boolean, pa.bool_(), mask=~valid[_BOOLEAN]),
    }
    assert tuple(columns) == VALUE_COLUMNS
    batch = from_columns(targets.aliases.take(pa.array(tid)), time_ns, quality=quality, **columns)
    return Converted(batch, tid, errors, dropped)


def _variant_types(variants: list[ua.Variant | None]) -> np.ndarray:
    """The variant type ids (0: no variant), as an int array that indexes :data:`_NATURAL`."""
    kinds = [v.VariantType if v is not None else 0 for v in variants]
    try:
        ids = np.fromiter(kinds, np.int64, len(kinds))  # VariantType is an IntEnum
    except TypeError:  # a VariantTypeCustom (not an int) among them
        ids = np.fromiter([getattr(k, "value", k) for k in kinds], np.int64, len(kinds))
    return np.clip(ids, 0, len(_NATURAL) - 1)


def _times(dvs: Sequence[ua.DataValue], timestamp: str, received_ns: int) -> np.ndarray:
    """ns per DataValue: the chosen timestamp, else the server's, else ``received_ns`` (as pick_time_ns)."""
    source = timestamp == "source"
    chosen, chosen_ok = _ns([dv.SourceTimestamp if source else dv.ServerTimestamp for dv in dvs])
    picos = [dv.SourcePicoseconds if source else dv.ServerPicoseconds for dv in dvs]
    if any(picos):
        chosen += np.fromiter([p or 0 for p in picos], np.int64, len(picos)) // 100  # 10 ps units
    if chosen_ok.all():
        return chosen
    if source:
        server, server_ok = _ns([dv.ServerTimestamp for dv in dvs])
    else:
        server, server_ok = chosen, chosen_ok
    fallback = np.where(server_ok, server, np.int64(received_ns))
    return np.where(chosen_ok, chosen, fallback)


def _ns(stamps: list[object]) -> tuple[np.ndarray, np.ndarray]:
    """datetimes (or None) -> (ns since the epoch, which ones are a time)."""
    us = pc.fill_null(pa.array(stamps, _US).cast(pa.int64()), 0).to_numpy()
    ok = us >= _MIN_US
    return np.where(ok, us, 0) * 1000, ok


__all__ = ["Converted", "Targets", "to_batch"]
