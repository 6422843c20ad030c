"""Time-zone arguments as SiteWise (Java ``ZoneId``) accepts them.

- ``Z``, ``UTC``, ``GMT``, ``UT``: UTC.
- Offsets ``+2``, ``-5``, ``+05:30``, ``+0530``, ``-01:00:00`` (within ±18 hours).
- A prefix and an offset: ``UTC+3``, ``GMT+2``, ``UTC-01:00``, ``UT+1``.
- Region ids from the IANA database (``Europe/Paris``, ``Etc/GMT+12``, ``Pacific/Pago_Pago``), through
  :mod:`zoneinfo`.
- The three-letter ids of Java's ``ZoneId.SHORT_IDS`` (:data:`SHORT_IDS`): ``PST`` is the region
  ``America/Los_Angeles`` (so daylight saving applies), ``EST``/``MST``/``HST`` are fixed offsets.
"""

from __future__ import annotations

import re
from datetime import UTC, timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SHORT_IDS: dict[str, str] = {
    "ACT": "Australia/Darwin",
    "AET": "Australia/Sydney",
    "AGT": "America/Argentina/Buenos_Aires",
    "ART": "Africa/Cairo",
    "AST": "America/Anchorage",
    "BET": "America/Sao_Paulo",
    "BST": "Asia/Dhaka",
    "CAT": "Africa/Harare",
    "CNT": "America/St_Johns",
    "CST": "America/Chicago",
    "CTT": "Asia/Shanghai",
    "EAT": "Africa/Addis_Ababa",
    "ECT": "Europe/Paris",
    "CET": "Europe/Paris",
    "IET": "America/Indiana/Indianapolis",
    "IST": "Asia/Kolkata",
    "JST": "Asia/Tokyo",
    "MIT": "Pacific/Apia",
    "NET": "Asia/Yerevan",
    "NST": "Pacific/Auckland",
    "PLT": "Asia/Karachi",
    "PNT": "America/Phoenix",
    "PRT": "America/Puerto_Rico",
    "PST": "America/Los_Angeles",
    "SST": "Pacific/Guadalcanal",
    "VST": "Asia/Ho_Chi_Minh",
    "EST": "-05:00",
    "MST": "-07:00",
    "HST": "-10:00",
}

_OFFSET = re.compile(r"^([+-])(\d{1,2})(?::?(\d{2}))?(?::?(\d{2}))?$")
_PREFIXED = re.compile(r"^(UTC|GMT|UT)([+-].*)$")


class UnknownZone(ValueError):
    """Not a time zone SiteWise accepts."""


@lru_cache(maxsize=512)
def zone(name: str) -> tzinfo:
    """The :class:`tzinfo` for a time-zone argument, or :class:`UnknownZone`."""
    s = name.strip()
    if s in ("Z", "UTC", "GMT", "UT"):
        return UTC
    if s in SHORT_IDS:
        return zone(SHORT_IDS[s])
    if m := _PREFIXED.match(s):
        return _offset(m.group(2), name)
    if s[:1] in "+-":
        return _offset(s, name)
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*", s):
        raise UnknownZone(f"unknown time zone {name!r}")
    try:
        return ZoneInfo(s)
    except (ZoneInfoNotFoundError, ValueError):
        raise UnknownZone(f"unknown time zone {name!r}") from None


def _offset(text: str, name: str) -> tzinfo:
    m = _OFFSET.match(text)
    if m is None:
        raise UnknownZone(f"unknown time zone {name!r}: offsets look like +2, -05:00 or UTC+3")
    h, mi, se = int(m.group(2)), int(m.group(3) or 0), int(m.group(4) or 0)
    if h > 18 or mi > 59 or se > 59 or (h == 18 and (mi or se)):
        raise UnknownZone(f"time-zone offset out of range in {name!r} (at most ±18:00)")
    delta = timedelta(hours=h, minutes=mi, seconds=se)
    return timezone(-delta if m.group(1) == "-" else delta)
