"""Common (math) functions: numpy for columns, :mod:`math` for single rows."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..columns import NUM, Col, and_masks, clean, floats
from ..values import NoOutput, Value, finite, num, power
from .spec import Family, Spec


def _row(fn: Callable[[float], float]) -> Callable[[Value], float]:
    def row(x: Value) -> float:
        try:
            return finite(fn(num(x)))
        except (ValueError, OverflowError, ZeroDivisionError):
            raise NoOutput from None

    return row


def _vector(ufunc: Callable[[Any], Any], propagating: bool) -> Callable[[int, Col], Col]:
    """``propagating``: NaN/inf in gives NaN/inf out, so a dirty argument needs no check first."""

    def vector(n: int, c: Col) -> Col:
        if not propagating:
            c = clean(c)
        with np.errstate(all="ignore"):
            v = ufunc(floats(c))
        return Col(v, c.ok, None, NUM, dirty=True)

    return vector


def _signum(x: float) -> float:
    return x if x == 0 or math.isnan(x) else math.copysign(1.0, x)


def _cot(x: float) -> float:
    return 1.0 / math.tan(x)


def _np_cot(x: Any) -> Any:
    return 1.0 / np.tan(x)


def _np_sign(x: Any) -> Any:
    return np.sign(x) + 0.0  # -0.0 -> 0.0


# name: (math function, numpy function, propagates NaN/inf)
_UNARY: dict[str, tuple[Callable[[float], float], Callable[[Any], Any], bool]] = {
    "abs": (abs, np.abs, True),
    "acos": (math.acos, np.arccos, True),
    "asin": (math.asin, np.arcsin, True),
    "atan": (math.atan, np.arctan, False),
    "cbrt": (math.cbrt, np.cbrt, True),
    "ceil": (math.ceil, np.ceil, True),
    "cos": (math.cos, np.cos, True),
    "cosh": (math.cosh, np.cosh, True),
    "cot": (_cot, _np_cot, False),
    "exp": (math.exp, np.exp, False),
    "expm1": (math.expm1, np.expm1, False),
    "floor": (math.floor, np.floor, True),
    "log": (math.log, np.log, True),
    "log10": (math.log10, np.log10, True),
    "log1p": (math.log1p, np.log1p, True),
    "log2": (math.log2, np.log2, True),
    "signum": (_signum, _np_sign, False),
    "sin": (math.sin, np.sin, True),
    "sinh": (math.sinh, np.sinh, True),
    "sqrt": (math.sqrt, np.sqrt, True),
    "tan": (math.tan, np.tan, True),
    "tanh": (math.tanh, np.tanh, False),
}


def vector_pow(n: int, a: Col, b: Col) -> Col:
    a, b = clean(a), clean(b)
    with np.errstate(all="ignore"):
        v = np.power(floats(a), floats(b))
    return Col(v, and_masks(a.ok, b.ok), None, NUM, dirty=True)


def _row_float(fn: Callable[[float], float]) -> Callable[[float], float]:
    return lambda x: float(fn(x))


SPECS: list[Spec] = [
    Spec(name, Family.COMMON, 1, 1, _row(_row_float(m)), _vector(u, p), NUM) for name, (m, u, p) in _UNARY.items()
]
SPECS.append(Spec("pow", Family.COMMON, 2, 2, power, vector_pow, NUM))
