"""Columns: one value per row, with the masks that say which rows have a value.

A :class:`Col` is the vectorised form of a row value:

- ``kind`` NUM: ``v`` is a float64 array (or a Python float for a constant);
  BOOL: a bool array or bool (comparisons; becomes 1/0 where a number is needed);
  OBJ: an object array (or a constant) of row values as :mod:`.values` defines them.
- ``ok``: bool array of rows that have a value (or a bool for every row); None means every row.
- ``nn``: bool array of rows holding the ``none`` constant (never ``ok``); None means no row.
- ``dirty``: NUM values computed by an operator may hold NaN or infinities that are not yet folded into
  ``ok``. Arithmetic propagates them, so the check runs once, where a consumer would hide them (comparisons,
  conditions, divisors, the final result): :func:`clean`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .values import NoOutput

NUM, BOOL, OBJ = 0, 1, 2

Mask = np.ndarray | np.bool_ | None


class Col:
    __slots__ = ("dirty", "kind", "nn", "ok", "v")

    def __init__(self, v: Any, ok: Mask = None, nn: Mask = None, kind: int = NUM, dirty: bool = False) -> None:
        self.v = v
        self.ok = ok
        self.nn = nn
        self.kind = kind
        self.dirty = dirty

    @property
    def numeric(self) -> bool:
        return self.kind != OBJ


def and_masks(a: Mask, b: Mask) -> Mask:
    if a is None:
        return b
    if b is None:
        return a
    return a & b


def or_masks(a: Mask, b: Mask) -> Mask:
    """Union of two optional masks where None means 'no row'."""
    if a is None:
        return b
    if b is None:
        return a
    return a | b


def full(mask: Mask, n: int, default: bool) -> np.ndarray:
    """A mask as a bool array of length ``n`` (None gives ``default``)."""
    if mask is None:
        return np.full(n, default)
    if not isinstance(mask, np.ndarray) or mask.shape != (n,):
        return np.broadcast_to(mask, (n,))
    return mask


def clean(c: Col) -> Col:
    """Fold NaN/infinite computed values into ``ok``."""
    if not c.dirty:
        return c
    fin = np.isfinite(c.v)
    if not isinstance(fin, np.ndarray) and fin:
        return Col(c.v, c.ok, c.nn, c.kind)
    return Col(c.v, and_masks(c.ok, fin), c.nn, c.kind)


def floats(c: Col) -> Any:
    """NUM or BOOL values as float64."""
    if c.kind == BOOL:
        return c.v.astype(np.float64) if isinstance(c.v, np.ndarray) else float(c.v)
    return c.v


_FALSE, _TRUE = np.False_, np.True_


def constant_none(n: int) -> Col:
    """``none`` in every row (scalar masks: no row has a value, every row holds ``none``)."""
    return Col(np.nan, _FALSE, _TRUE, NUM)


def objects(c: Col, n: int) -> np.ndarray:
    """The column as an object array of row values (rows without a value hold None)."""
    c = clean(c)
    v = c.v
    if c.kind == OBJ:
        if isinstance(v, np.ndarray):
            return v
        out = np.empty(n, object)
        out.fill(v)
        return out
    arr = np.broadcast_to(np.asarray(floats(c), np.float64), (n,))
    return arr.astype(object)


def row_mask(cols: Sequence[Col], n: int) -> np.ndarray:
    """Rows where every argument has a value or holds ``none``."""
    m = np.ones(n, bool)
    for c in cols:
        c = clean(c)
        if c.ok is not None:
            m &= c.ok if c.nn is None else (c.ok | c.nn)
    return m


def map_rows(fn: Callable[..., Any], cols: Sequence[Col], n: int, out: int = OBJ) -> Col:
    """Per-row Python fallback: ``fn`` over row values, ``NoOutput`` -> no value, ``None`` -> ``none``.

    This is the slow path (strings, JSON, dates, mixed types). ``out`` NUM gives a float64 column.
    """
    mask = row_mask(cols, n)
    arrays = []
    for c in cols:
        a = objects(c, n)
        if c.nn is not None:
            a = a.copy()
            a[c.nn] = None
        arrays.append(a)
    ok = np.zeros(n, bool)
    nn = np.zeros(n, bool)
    res: list[Any] = [None] * n
    for i in np.flatnonzero(mask).tolist():
        try:
            r = fn(*[a[i] for a in arrays])
        except NoOutput:
            continue
        if r is None:
            nn[i] = True
        else:
            res[i] = r
            ok[i] = True
    if out == NUM:
        vals = np.full(n, np.nan)
        idx = np.flatnonzero(ok)
        if idx.size:
            vals[idx] = np.fromiter((res[i] for i in idx.tolist()), np.float64, idx.size)
        return Col(vals, ok, nn if nn.any() else None, NUM)
    arr = np.empty(n, object)
    for i in np.flatnonzero(ok).tolist():
        arr[i] = res[i]  # one by one: a list value must not be broadcast
    return Col(arr, ok, nn if nn.any() else None, OBJ)


def take(c: Col, rows: np.ndarray) -> Col:
    """Rows ``rows`` of ``c`` (broadcasts window values to the points of each window)."""
    def pick(x: Any) -> Any:
        return x[rows] if isinstance(x, np.ndarray) and x.ndim else x

    return Col(pick(c.v), pick(c.ok), pick(c.nn), c.kind, c.dirty)


def constant_value(c: Col) -> tuple[bool, Any]:
    """(has a single value, the value) for a column evaluated over one row."""
    c = clean(c)
    if c.ok is not None and not bool(np.ravel(c.ok)[0]):
        return False, None
    v = np.ravel(c.v)[0] if isinstance(c.v, np.ndarray) else c.v
    if c.kind == BOOL:
        return True, float(v)
    if c.kind == NUM:
        return True, float(v)
    return True, v
