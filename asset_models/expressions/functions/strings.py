"""String functions (per-row Python: the slow path, by design)."""

from __future__ import annotations

from functools import lru_cache

from ..columns import NUM
from ..values import NoOutput, Value, check_string, to_str
from . import javafmt, jsonpath
from .spec import Family, Spec


def _text(v: Value) -> str:
    if isinstance(v, str):
        return v
    raise NoOutput


def _len(s: Value) -> float:
    if isinstance(s, str | list | dict):
        return float(len(s))
    raise NoOutput


def _find(s: Value, sub: Value) -> float:
    """Index of the first occurrence, -1 when absent (Python's ``str.find``)."""
    return float(_text(s).find(_text(sub)))


def _contains(s: Value, sub: Value) -> float:
    return 1.0 if _text(sub) in _text(s) else 0.0


def _upper(s: Value) -> str:
    return _text(s).upper()


def _lower(s: Value) -> str:
    return _text(s).lower()


@lru_cache(maxsize=256)
def _steps(path: str) -> tuple[jsonpath.Step, ...]:
    return jsonpath.compile_path(path)


def _jp(document: Value, path: Value) -> Value:
    try:
        steps = _steps(_text(path))
    except jsonpath.PathError:
        raise NoOutput from None
    return jsonpath.apply(document, steps)


def _join(delimiter: Value, *parts: Value) -> str:
    """Java ``String.join``; numbers are rendered as concatenation renders them."""
    return check_string(to_str(delimiter).join(to_str(p) for p in parts))


def _format(fmt: Value, *args: Value) -> str:
    return javafmt.java_format(_text(fmt), args)


SPECS: list[Spec] = [
    Spec("len", Family.STRING, 1, 1, _len, None, NUM),
    Spec("find", Family.STRING, 2, 2, _find, None, NUM),
    Spec("contains", Family.STRING, 2, 2, _contains, None, NUM),
    Spec("upper", Family.STRING, 1, 1, _upper),
    Spec("lower", Family.STRING, 1, 1, _lower),
    Spec("jp", Family.STRING, 2, 2, _jp),
    Spec("join", Family.STRING, 1, None, _join),
    Spec("format", Family.STRING, 1, None, _format),
]
