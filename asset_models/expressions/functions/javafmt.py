"""A subset of Java's ``java.util.Formatter`` for ``format()`` and f-string fields.

Conversions: ``d`` (integral numbers), ``f`` ``e`` ``E`` (numbers; HALF_UP rounding as Java does), ``s``
``S`` (any value as concatenation renders it), ``x`` ``X`` ``o`` (integral numbers; negatives as 64-bit
two's complement), ``%`` and ``n``. Flags ``- + space 0 , (``, width and precision; explicit argument
indices ``%2$d``. A value of the wrong type for its conversion is no output (Java would throw).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from ..values import NoOutput, Value, check_string, integer, num, to_str

_SPEC = re.compile(r"%(?:(\d+)\$)?([-#+ 0,(]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])")
CONVERSIONS = frozenset("dfeEsSxXo%n")


class FormatError(ValueError):
    def __init__(self, offset: int, message: str) -> None:
        super().__init__(message)
        self.offset = offset
        self.message = message


@dataclass(frozen=True, slots=True)
class Field:
    start: int
    end: int
    index: int | None  # explicit 1-based argument index
    flags: str
    width: int | None
    precision: int | None
    conversion: str


def parse(fmt: str) -> list[Field]:
    """The conversion fields of ``fmt``, or :class:`FormatError` pointing at the bad one."""
    fields: list[Field] = []
    i = 0
    while (j := fmt.find("%", i)) >= 0:
        m = _SPEC.match(fmt, j)
        if m is None:
            raise FormatError(j, f"incomplete format specifier {fmt[j:j + 4]!r}")
        conv = m.group(5)
        if conv not in CONVERSIONS:
            raise FormatError(m.start(5), f"unsupported format conversion '%{conv}' (supported: d f e E s S x X o % n)")
        fields.append(Field(j, m.end(), int(m.group(1)) if m.group(1) else None, m.group(2),
                            int(m.group(3)) if m.group(3) else None,
                            int(m.group(4)) if m.group(4) is not None else None, conv))
        i = m.end()
    return fields


def needed_args(fields: list[Field]) -> int:
    n, auto = 0, 0
    for f in fields:
        if f.conversion in "%n":
            continue
        if f.index is not None:
            n = max(n, f.index)
        else:
            auto += 1
            n = max(n, auto)
    return n


def java_format(fmt: str, args: tuple[Value, ...]) -> str:
    try:
        fields = parse(fmt)
    except FormatError:
        raise NoOutput from None
    out: list[str] = []
    i, auto = 0, 0
    for f in fields:
        out.append(fmt[i : f.start])
        i = f.end
        if f.conversion == "%":
            out.append(_pad("%", f))
            continue
        if f.conversion == "n":
            out.append("\n")
            continue
        if f.index is not None:
            k = f.index - 1
        else:
            k = auto
            auto += 1
        if k >= len(args):
            raise NoOutput
        out.append(_convert(args[k], f))
    out.append(fmt[i:])
    return check_string("".join(out))


def spec_format(spec: str, value: Value) -> str:
    """``format(value: "spec")``: ``spec`` is one conversion, with or without its leading ``%``."""
    return java_format(spec if "%" in spec else "%" + spec, (value,))


def _convert(v: Value, f: Field) -> str:
    c = f.conversion
    if c in "sS":
        s = to_str(v)
        if f.precision is not None:
            s = s[: f.precision]
        return _pad(s.upper() if c == "S" else s, f)
    if c in "xXo":
        n = integer(v)
        if n < 0:
            n += 1 << 64
        s = format(n, "x" if c != "o" else "o")
        if "#" in f.flags:
            s = ("0x" if c != "o" else "0") + s
        return _pad_number(s.upper() if c == "X" else s, f, negative=False)
    if c == "d":
        n = integer(v)
        digits = f"{abs(n):,}" if "," in f.flags else str(abs(n))
        return _pad_number(digits, f, negative=n < 0)
    x = num(v)
    if not math.isfinite(x):
        raise NoOutput
    precision = 6 if f.precision is None else f.precision
    if c == "f":
        q = Decimal(repr(abs(x))).quantize(Decimal(1).scaleb(-precision), rounding=ROUND_HALF_UP)
        digits = f"{q:,f}" if "," in f.flags else f"{q:f}"
    else:
        digits = f"{abs(x):.{precision}{c}}"
    return _pad_number(digits, f, negative=math.copysign(1.0, x) < 0 and x != 0)


def _pad_number(digits: str, f: Field, *, negative: bool) -> str:
    if negative:
        sign, tail = ("(", ")") if "(" in f.flags else ("-", "")
    else:
        sign = "+" if "+" in f.flags else " " if " " in f.flags else ""
        tail = ""
    if "0" in f.flags and f.width is not None and "-" not in f.flags:
        digits = digits.rjust(f.width - len(sign) - len(tail), "0")
    return _pad(sign + digits + tail, f)


def _pad(s: str, f: Field) -> str:
    if f.width is None or len(s) >= f.width:
        return s
    return s.ljust(f.width) if "-" in f.flags else s.rjust(f.width)
