"""Browse-path rules: which variables under ``Objects`` a source reads, and their aliases.

    rules = PathRules(include=["/Plant1/**/Temp*"], exclude=["/Plant1/Line2/**"])
    rules.matches(("Plant1", "Line1", "Oven1", "Temperature"))     # True

A path is the browse names from ``Objects`` down, written ``/Plant1/Line1/Oven1/Temperature``.
A rule is such a path where a segment may hold ``*`` and ``?`` (one level, as fnmatch) or be
``**`` (any number of levels, none included); a rule ending in ``/`` selects everything below it
(``/Plant1/`` = ``/Plant1/**``), as SiteWise Edge's node filters do. A variable is read when an
include rule matches it and no exclude rule does. ``/Server`` is never browsed (SiteWise Edge's
default), and the walk (``browse.py``) only descends where an include rule can still match.

Pure: the configuration checks rules with :func:`parse_rule` without importing asyncua.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

Path = tuple[str, ...]


def parse_rule(rule: str) -> tuple[str, ...]:
    """``/Plant1/*/Temp*`` -> ``("Plant1", "*", "Temp*")``; a trailing ``/`` adds ``**``.

    Raises ValueError naming what is wrong (no leading ``/``, an empty segment, ``**`` inside a segment)."""
    if not rule.startswith("/"):
        raise ValueError(f"browse path {rule!r} must start with / (a path under Objects, such as /Plant1/**)")
    body = rule[1:]
    trailing = body.endswith("/") or body == ""
    parts = body.split("/") if body else []
    if trailing and parts:
        parts = parts[:-1]
    for p in parts:
        if p == "":
            raise ValueError(f"browse path {rule!r} has an empty segment (//)")
        if "**" in p and p != "**":
            raise ValueError(f"browse path {rule!r}: ** must be a whole segment, as in /Plant1/**/Temp*")
    if trailing:
        parts.append("**")
    return tuple(parts)


@dataclass(frozen=True)
class _Rule:
    segments: tuple[str, ...]

    @cached_property
    def _patterns(self) -> tuple[re.Pattern[str] | None, ...]:
        return tuple(None if s == "**" else re.compile(fnmatch.translate(s)) for s in self.segments)

    def matches(self, path: Sequence[str]) -> bool:
        return _match(self._patterns, 0, path, 0, full=True)

    def may_match_below(self, path: Sequence[str]) -> bool:
        """Whether a descendant of ``path`` (or ``path`` itself) can match: worth browsing into."""
        return _match(self._patterns, 0, path, 0, full=False)


def _match(pats: tuple[re.Pattern[str] | None, ...], i: int, path: Sequence[str], j: int, *, full: bool) -> bool:
    while True:
        if j == len(path):
            return not full or all(p is None for p in pats[i:])
        if i == len(pats):
            return False
        pat = pats[i]
        if pat is None:  # **: zero levels, or one more level and stay on **
            return _match(pats, i + 1, path, j, full=full) or _match(pats, i, path, j + 1, full=full)
        if not pat.fullmatch(path[j]):
            return False
        i, j = i + 1, j + 1


@dataclass(frozen=True)
class PathRules:
    """Include and exclude rules (see the module docstring); pure."""

    include: Sequence[str]
    exclude: Sequence[str] = ()
    _inc: tuple[_Rule, ...] = field(init=False, repr=False)
    _exc: tuple[_Rule, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_inc", tuple(_Rule(parse_rule(r)) for r in self.include))
        object.__setattr__(self, "_exc", tuple(_Rule(parse_rule(r)) for r in self.exclude))

    def matches(self, path: Sequence[str]) -> bool:
        return any(r.matches(path) for r in self._inc) and not any(r.matches(path) for r in self._exc)

    def worth_browsing(self, path: Sequence[str]) -> bool:
        if path and path[0] == "Server":
            return False
        return any(r.may_match_below(path) for r in self._inc)


def path_text(path: Iterable[str]) -> str:
    return "/" + "/".join(path)
