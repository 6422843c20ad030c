"""The JsonPath subset ``jp`` supports: ``$``, ``.key``, ``['key']`` / ``["key"]`` and ``[index]``
(negative indices count from the end), in any sequence: ``$.measurement.reading``, ``$[2]``,
``$.values[1]``, ``$['a b'][0].c``."""

from __future__ import annotations

import json
import re
from typing import Any

from ..values import NoOutput, Value, _plain, number_str

Step = str | int

_KEY = re.compile(r"\.([A-Za-z_$@][\w$@-]*)")
_INDEX = re.compile(r"\[\s*(-?\d+)\s*\]")
_QUOTED = re.compile(r"""\[\s*(?:'((?:[^']|'')*)'|"((?:[^"]|"")*)")\s*\]""")


class PathError(ValueError):
    """A JsonPath outside the supported subset; ``offset`` is where in the path."""

    def __init__(self, offset: int, message: str) -> None:
        super().__init__(message)
        self.offset = offset
        self.message = message


def compile_path(path: str) -> tuple[Step, ...]:
    """Steps of ``path``, or :class:`PathError`."""
    p = path.strip()
    lead = len(path) - len(path.lstrip())
    if not p.startswith("$"):
        raise PathError(lead, "a JsonPath starts with '$'")
    steps: list[Step] = []
    i = 1
    while i < len(p):
        if m := _KEY.match(p, i):
            steps.append(m.group(1))
        elif m := _INDEX.match(p, i):
            steps.append(int(m.group(1)))
        elif m := _QUOTED.match(p, i):
            steps.append(m.group(1) if m.group(1) is not None else m.group(2))
        else:
            raise PathError(lead + i, f"unsupported JsonPath syntax at {p[i:]!r} (supported: $, .key, ['key'], [n])")
        i = m.end()
    return tuple(steps)


def apply(document: Value, steps: tuple[Step, ...]) -> Value:
    """``jp(document, path)`` for one row: the selected number or string; arrays and objects stay as they are
    (a formula result that is one gives no output); JSON null is no value."""
    if isinstance(document, float):
        text = number_str(document)
    elif isinstance(document, str):
        text = document
    else:
        raise NoOutput
    try:
        node: Any = json.loads(text)
    except ValueError:
        raise NoOutput from None
    for step in steps:
        try:
            if isinstance(step, int):
                if not isinstance(node, list):
                    raise NoOutput
                node = node[step]
            else:
                if not isinstance(node, dict):
                    raise NoOutput
                node = node[step]
        except (IndexError, KeyError):
            raise NoOutput from None
    if node is None:
        raise NoOutput
    return _plain(node)
