"""Date and time functions: ``mktime``, ``localtime`` and its readers (per-row Python).

``now()`` and ``timestamp()`` read the evaluation context and live in the evaluator.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo

from ..columns import NUM
from ..timezones import UnknownZone, zone
from ..values import NoOutput, Value, datetime_value, integer, num
from .spec import Family, Spec

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# (lowest, highest) for year, month, day, hour, minute, second
_LIMITS = ((1970, 2250), (1, 12), (1, 31), (0, 23), (0, 59), (0, 60))


def tz(v: Value) -> tzinfo:
    if not isinstance(v, str):
        raise NoOutput
    try:
        return zone(v)
    except UnknownZone:
        raise NoOutput from None


def _mktime(*args: Value) -> float:
    """``mktime([tz,] year, month, day[, hour[, minute[, second]]][, tz])`` -> epoch seconds."""
    zone_: tzinfo = UTC
    if args and isinstance(args[0], str):
        zone_, args = tz(args[0]), args[1:]
    elif args and isinstance(args[-1], str):
        zone_, args = tz(args[-1]), args[:-1]
    if not 3 <= len(args) <= 6:
        raise NoOutput
    parts = [num(a) for a in args]
    for x, (lo, hi) in zip(parts, _LIMITS, strict=False):
        if not (lo <= x <= hi):
            raise NoOutput
    ints = [integer(x) for x in parts[:5]]
    second = parts[5] if len(parts) > 5 else 0.0
    try:
        year, month, day = ints[:3]
        hour, minute = [*ints[3:5], 0, 0][:2]
        local = datetime(year, month, day, hour, minute, tzinfo=zone_)
    except ValueError:  # e.g. February 30
        raise NoOutput from None
    # fold=0: an ambiguous wall time (DST end) is its first occurrence, as java.time does
    return (local - _EPOCH).total_seconds() + second


def _localtime(t: Value, zone_name: Value = "UTC") -> datetime:
    x = num(t)
    if not math.isfinite(x):
        raise NoOutput
    try:
        return (_EPOCH + timedelta(seconds=x)).astimezone(tz(zone_name))
    except OverflowError:
        raise NoOutput from None


def _reader(attr: str) -> Callable[[Value], float]:
    def read(lt: Value) -> float:
        d = datetime_value(lt)
        if attr == "wday":
            return float(d.isoweekday() % 7)  # 0 = Sunday
        if attr == "yday":
            return float(d.timetuple().tm_yday)
        if attr == "sec":
            return d.second + d.microsecond / 1e6
        return float(getattr(d, attr))

    return read


_READERS = {"year": "year", "mon": "month", "mday": "day", "wday": "wday", "yday": "yday",
            "hour": "hour", "minute": "minute", "sec": "sec"}
READERS = frozenset(_READERS)

SPECS: list[Spec] = [
    Spec("mktime", Family.DATETIME, 3, 8, _mktime, None, NUM),
    Spec("localtime", Family.DATETIME, 1, 2, _localtime),
    Spec("now", Family.DATETIME, 0, 0),
    Spec("timestamp", Family.DATETIME, 0, 1),
]
SPECS += [Spec(name, Family.DATETIME, 1, 1, _reader(attr), None, NUM) for name, attr in _READERS.items()]
