"""Comparison functions: ``gt lt`` strict, ``gte eq lte`` with a relative tolerance of 1e-9 (Python's
``math.isclose(x, y, rel_tol=1e-9)``), ``neq`` exact, ``isnan``. Numbers compare with numbers and strings
(lexicographically) with strings; a number against a string is no value."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..columns import BOOL, NUM, Col, and_masks, clean, floats
from ..values import NoOutput, Value
from .spec import Family, Spec

REL_TOL = 1e-9


def close(x: Any, y: Any) -> Any:
    """``math.isclose(x, y, rel_tol=1e-9)`` over arrays."""
    with np.errstate(all="ignore"):
        return (x == y) | (np.abs(x - y) <= REL_TOL * np.maximum(np.abs(x), np.abs(y)))


def _pair(a: Value, b: Value) -> tuple[Any, Any, bool]:
    """(a, b, numeric) for values of one comparable type."""
    if isinstance(a, float) and isinstance(b, float):
        return a, b, True
    if isinstance(a, str) and isinstance(b, str):
        return a, b, False
    raise NoOutput


def _row(op: Callable[[Any, Any, bool], bool]) -> Callable[[Value, Value], float]:
    def row(a: Value, b: Value) -> float:
        x, y, numeric = _pair(a, b)
        return 1.0 if op(x, y, numeric) else 0.0

    return row


def _isclose(x: Any, y: Any, numeric: bool) -> bool:
    return math.isclose(x, y, rel_tol=REL_TOL) if numeric else x == y


_ROW_OPS: dict[str, Callable[[Any, Any, bool], bool]] = {
    "gt": lambda x, y, _: x > y,
    "lt": lambda x, y, _: x < y,
    "gte": lambda x, y, nm: x > y or _isclose(x, y, nm),
    "lte": lambda x, y, nm: x < y or _isclose(x, y, nm),
    "eq": _isclose,
    "neq": lambda x, y, _: x != y,
}

_VECTOR_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "gt": np.greater,
    "lt": np.less,
    "gte": lambda x, y: (x > y) | close(x, y),
    "lte": lambda x, y: (x < y) | close(x, y),
    "eq": close,
    "neq": np.not_equal,
}


def _vector(op: Callable[[Any, Any], Any]) -> Callable[[int, Col, Col], Col]:
    def vector(n: int, a: Col, b: Col) -> Col:
        a, b = clean(a), clean(b)
        return Col(op(floats(a), floats(b)), and_masks(a.ok, b.ok), None, BOOL)

    return vector


def _isnan_row(x: Value) -> float:
    if isinstance(x, float):
        return 1.0 if math.isnan(x) else 0.0
    raise NoOutput


def _isnan_vector(n: int, c: Col) -> Col:
    c = clean(c)  # NaN computed by an operator is no value; NaN from a variable is a value
    return Col(np.isnan(floats(c)), c.ok, None, BOOL)


SPECS: list[Spec] = [Spec(name, Family.COMPARISON, 2, 2, _row(op), _vector(_VECTOR_OPS[name]), NUM)
                     for name, op in _ROW_OPS.items()]
SPECS.append(Spec("isnan", Family.COMPARISON, 1, 1, _isnan_row, _isnan_vector, NUM))
