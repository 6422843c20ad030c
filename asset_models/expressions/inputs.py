"""The shapes evaluation takes and returns.

Transforms: one row per trigger point. Each variable is an array (``np.ndarray`` or list) of its value at
every row, or a :class:`Column` when some rows have no value (the variable has no GOOD value yet).

Metrics: one row per window. Each variable is either

- a :class:`Series`: its points in every window, flattened window after window (CSR): the points of window
  ``i`` are ``values[offsets[i]:offsets[i+1]]``, in time order; plus, per window, the state before it
  (``prior``) and the first point of history (``earliest``); or
- an array or :class:`Column` with one value per window: attributes (their current value) and metrics of
  the same interval (their value for the window).

A variable through a hierarchy (child assets) is a :class:`Series` whose window segments hold the points of
every child asset together (any order within a window: aggregation does not look at time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .columns import NUM, OBJ, Col

ArrayLike = np.ndarray | list[Any] | tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Column:
    """Values with a mask of the rows that have one (``valid`` None: every row)."""

    values: ArrayLike
    valid: ArrayLike | None = None


@dataclass(frozen=True, slots=True)
class Series:
    """One metric variable over ``W`` windows (see the module docstring).

    - ``values``: the points, length ``M`` (float64 for numeric properties, objects for STRING);
    - ``offsets``: int array of length ``W + 1``, ``offsets[0] == 0``, ``offsets[W] == M``, non-decreasing;
    - ``timestamps``: int64 epoch nanoseconds of the points, length ``M`` (only ``statetime`` needs them);
    - ``prior``: per window, the latest value at or before the window start t−Δ (``statetime``'s initial
      state; ``latest`` of a window without points). Missing: no such value;
    - ``earliest``: per window, the value with the earliest timestamp before the window (``earliest()``).
    """

    values: ArrayLike
    offsets: ArrayLike
    timestamps: ArrayLike | None = None
    prior: Column | ArrayLike | None = None
    earliest: Column | ArrayLike | None = None


class Result(NamedTuple):
    """One output per row: ``values[i]`` is meaningful where ``valid[i]`` (``values, valid = result``).

    ``values`` is float64 when the formula gives numbers, an object array (numbers as ``float``, text as
    ``str``) when any row gives text; at invalid rows it holds an unspecified number, NaN or None.
    """

    values: np.ndarray
    valid: np.ndarray


def to_col(data: Column | ArrayLike, numeric: bool, n: int, what: str) -> Col:
    """An input as a column of ``n`` rows (numeric properties as float64, Booleans as 1/0)."""
    valid: Any = None
    if isinstance(data, Column):
        valid = data.valid
        data = data.values
    if numeric:
        try:
            v = np.asarray(data, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{what}: expected numbers") from None
    else:
        v = np.empty(len(data), object)
        v[:] = list(data)
    if v.shape != (n,):
        raise ValueError(f"{what}: expected {n} values, got shape {v.shape}")
    ok = None
    if valid is not None:
        ok = np.asarray(valid, dtype=bool)
        if ok.shape != (n,):
            raise ValueError(f"{what}: valid mask has shape {ok.shape}, expected ({n},)")
        if ok.all():
            ok = None
    if not numeric:
        none = np.fromiter((x is None for x in v), bool, n)
        if none.any():
            ok = ~none if ok is None else ok & ~none
    return Col(v, ok, None, NUM if numeric else OBJ)


@dataclass(frozen=True, slots=True)
class SeriesData:
    """A normalised :class:`Series`."""

    points: Col
    offsets: np.ndarray
    rows: np.ndarray  # window index of each point
    timestamps: np.ndarray | None
    prior: Col | None
    earliest: Col | None


def to_series(s: Series, numeric: bool, w: int, what: str) -> SeriesData:
    offsets = np.asarray(s.offsets, dtype=np.int64)
    if offsets.shape != (w + 1,) or (w >= 0 and offsets[0] != 0) or np.any(np.diff(offsets) < 0):
        raise ValueError(f"{what}: offsets must be {w + 1} non-decreasing integers starting at 0")
    m = int(offsets[-1])
    points = to_col(s.values, numeric, m, f"{what} values")
    ts = None
    if s.timestamps is not None:
        ts = np.asarray(s.timestamps, dtype=np.int64)
        if ts.shape != (m,):
            raise ValueError(f"{what}: timestamps must have {m} entries, got shape {ts.shape}")
    prior = None if s.prior is None else to_col(s.prior, numeric, w, f"{what} prior")
    earliest = None if s.earliest is None else to_col(s.earliest, numeric, w, f"{what} earliest")
    rows = np.repeat(np.arange(w, dtype=np.int64), np.diff(offsets))
    return SeriesData(points, offsets, rows, ts, prior, earliest)
