"""Stream names as both publishers see them: alias filters, and the streams of unaliased properties.

    allowed = stream_filter(["/plant1/*"], ["*/debug/*"])
    allowed("/plant1/press/temp")        # True
    synthetic_ids("asset:a1/p1")         # ("a1", "p1"): a property without an alias
    synthetic_ids("/plant1/press/temp")  # None
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Sequence

SYNTHETIC_PREFIX = "asset:"
"""Streams of properties without an alias are named ``asset:<assetId>/<propertyId>``."""


def stream_allowed(stream: str, include: Iterable[str], exclude: Iterable[str]) -> bool:
    """fnmatch (case-sensitive; ``*`` also matches ``/``): one include pattern matches and no exclude does."""
    return any(fnmatch.fnmatchcase(stream, p) for p in include) and not any(
        fnmatch.fnmatchcase(stream, p) for p in exclude)


def stream_filter(include: Sequence[str], exclude: Sequence[str]) -> Callable[[str], bool]:
    """:func:`stream_allowed` with the patterns bound."""

    def allowed(stream: str) -> bool:
        return stream_allowed(stream, include, exclude)

    return allowed


def synthetic_ids(stream: str) -> tuple[str, str] | None:
    """(assetId, propertyId) of an unaliased property's stream; None for an alias."""
    if not stream.startswith(SYNTHETIC_PREFIX) or "/" not in stream:
        return None
    asset_id, _, property_id = stream[len(SYNTHETIC_PREFIX):].partition("/")
    return asset_id, property_id
