"""Scalar semantics: what one row's values are and what the operators do to them.

The vectorised evaluator uses numpy for numbers and falls back to these functions, one row at a time, for
strings, JSON, dates and mixed types. They are also the reference the vectorised path is tested against.

A row value is a ``float`` (integers and Booleans are floats, ``True`` is 1.0), a ``str``, a ``list`` or
``dict`` (from ``jp``), a :class:`datetime.datetime` (from ``localtime``), or ``None`` for the ``none``
constant. A function that cannot produce a value for a row raises :class:`NoOutput`.
"""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal
from typing import Any

MAX_STRING = 1024

Value = Any  # float | str | list | dict | datetime | None


class NoOutput(Exception):
    """This row produces no data point (undefined, overflow, wrong type, ``none``)."""


def is_num(v: Value) -> bool:
    return isinstance(v, float) and not isinstance(v, bool)


def num(v: Value) -> float:
    """The value as a number, or no output."""
    if isinstance(v, float):
        return v
    if isinstance(v, bool | int):
        return float(v)
    raise NoOutput


def finite(x: float) -> float:
    """``x`` when finite; NaN and infinities produced by a computation are no output."""
    if math.isfinite(x):
        return x
    raise NoOutput


def integer(v: Value) -> int:
    """An integral number (indices, slice bounds, ``%d``)."""
    x = num(v)
    if not math.isfinite(x) or x != math.floor(x):
        raise NoOutput
    return int(x)


def falsy(v: Value) -> bool:
    """The falsy rule of ``!``, ``not``, ``and``, ``or``: 0, empty string, empty array, ``none``."""
    if v is None:
        return True
    if isinstance(v, float):
        return v == 0.0
    if isinstance(v, str | list | dict):
        return len(v) == 0
    return False


def if_true(v: Value) -> bool:
    """The truth rule of ``if()``: 0 and "" are false, everything else (NaN included) true."""
    if v is None:
        raise NoOutput
    if isinstance(v, float):
        return v != 0.0
    if isinstance(v, str):
        return v != ""
    return True


def to_str(v: Value) -> str:
    """A value as concatenation and ``%s`` render it (integral numbers without a decimal point)."""
    if isinstance(v, str):
        return v
    if isinstance(v, float):
        return number_str(v)
    raise NoOutput


def number_str(x: float) -> str:
    """Integral values as integers (``3``), others like Java's ``Double.toString`` (``0.5``, ``1.5E-5``)."""
    if not math.isfinite(x):
        raise NoOutput
    if x == math.floor(x) and abs(x) < 1e16:
        return str(int(x))
    if 1e-3 <= abs(x) < 1e7:
        return repr(x)
    sign, digits, exp = Decimal(repr(x)).as_tuple()
    ds = "".join(map(str, digits)).rstrip("0") or "0"
    exponent = len(digits) + int(exp) - 1
    return f"{'-' if sign else ''}{ds[0]}.{ds[1:] or '0'}E{exponent}"


def check_string(s: str) -> str:
    if len(s) > MAX_STRING:
        raise NoOutput
    return s


# --- operators ------------------------------------------------------------------------------------------
def add(a: Value, b: Value) -> Value:
    if isinstance(a, str) or isinstance(b, str):
        return check_string(to_str(a) + to_str(b))
    return finite(num(a) + num(b))


def sub(a: Value, b: Value) -> float:
    return finite(num(a) - num(b))


def mul(a: Value, b: Value) -> float:
    return finite(num(a) * num(b))


def div(a: Value, b: Value) -> float:
    x, y = num(a), num(b)
    if y == 0.0:
        raise NoOutput
    return finite(x / y)


def mod(a: Value, b: Value) -> float:
    """Remainder with the sign of the left operand (C ``fmod``)."""
    x, y = num(a), num(b)
    if y == 0.0:
        raise NoOutput
    return finite(math.fmod(x, y))


def power(a: Value, b: Value) -> float:
    x, y = num(a), num(b)
    try:
        r = math.pow(x, y)
    except (OverflowError, ValueError):
        raise NoOutput from None
    return finite(r)


def neg(a: Value) -> float:
    return -num(a)


def not_(a: Value) -> float:
    return 1.0 if falsy(a) else 0.0


def _ordered(a: Value, b: Value) -> tuple[Any, Any]:
    if isinstance(a, float) and isinstance(b, float):
        return a, b
    if isinstance(a, str) and isinstance(b, str):
        return a, b
    raise NoOutput


def lt(a: Value, b: Value) -> float:
    x, y = _ordered(a, b)
    return 1.0 if x < y else 0.0


def gt(a: Value, b: Value) -> float:
    x, y = _ordered(a, b)
    return 1.0 if x > y else 0.0


def le(a: Value, b: Value) -> float:
    x, y = _ordered(a, b)
    return 1.0 if x <= y else 0.0


def ge(a: Value, b: Value) -> float:
    x, y = _ordered(a, b)
    return 1.0 if x >= y else 0.0


def equal(a: Value, b: Value) -> float:
    """``==``: exact, and values of different types are simply unequal."""
    if a is None or b is None:
        raise NoOutput
    if type(a) is not type(b):
        return 0.0
    return 1.0 if a == b else 0.0


def not_equal(a: Value, b: Value) -> float:
    return 1.0 - equal(a, b)


BINARY = {
    "+": add, "-": sub, "*": mul, "/": div, "%": mod, "^": power,
    "<": lt, ">": gt, "<=": le, ">=": ge, "==": equal, "!=": not_equal,
}


def index(target: Value, i: Value) -> Value:
    if not isinstance(target, str | list):
        raise NoOutput
    k = integer(i)
    try:
        return _plain(target[k])
    except IndexError:
        raise NoOutput from None


def slice_(target: Value, start: Value, stop: Value, step: Value) -> Value:
    if not isinstance(target, str | list):
        raise NoOutput
    bounds = [None if v is None else integer(v) for v in (start, stop, step)]
    if bounds[2] == 0:
        raise NoOutput
    return target[bounds[0] : bounds[1] : bounds[2]]


def _plain(v: Any) -> Value:
    """A JSON element as a row value (numbers and Booleans become floats)."""
    if isinstance(v, bool | int):
        return float(v)
    return v


def final(v: Value, output_type: str | None) -> Value:
    """The value a formula outputs, or no output: numbers must be finite, strings at most 1,024 characters.

    ``output_type`` "DOUBLE" drops strings, "STRING" renders numbers as text, None keeps both.
    """
    if isinstance(v, float):
        finite(v)
        return number_str(v) if output_type == "STRING" else v
    if isinstance(v, str) and output_type != "DOUBLE":
        return check_string(v)
    raise NoOutput


def datetime_value(v: Value) -> datetime:
    if isinstance(v, datetime):
        return v
    raise NoOutput
