"""Vectorised reductions over CSR window segments: aggregation and temporal functions of metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sitewise_edge.clock import NS_PER_S

from .columns import NUM, OBJ, Col, clean, floats, full


def segment_reduce(ufunc: np.ufunc, x: np.ndarray, offsets: np.ndarray, empty: Any) -> np.ndarray:
    """``ufunc`` over each segment ``x[offsets[i]:offsets[i+1]]``; ``empty`` for empty segments."""
    w = offsets.shape[0] - 1
    out = np.full(w, empty, dtype=np.result_type(x.dtype, np.asarray(empty).dtype))
    counts = np.diff(offsets)
    nonempty = counts > 0
    if x.shape[0] and nonempty.any():
        out[nonempty] = ufunc.reduceat(x, offsets[:-1][nonempty])
    return out


@dataclass(slots=True)
class Partial:
    """Per-window partial aggregates of one argument."""

    count: np.ndarray  # int64 points with a value
    total: np.ndarray  # float64 sum of numeric points
    low: np.ndarray
    high: np.ndarray
    bad: np.ndarray  # a point that is not a number (text): sum/avg/min/max give no value


def numeric_points(c: Col, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(float values, has a value, has a non-numeric value) for ``m`` points."""
    c = clean(c)
    ok = full(c.ok, m, True)
    if c.kind != OBJ:
        return np.broadcast_to(np.asarray(floats(c), np.float64), (m,)), ok, np.zeros(m, bool)
    vals = np.broadcast_to(np.asarray(c.v, object), (m,))
    isnum = np.fromiter((isinstance(v, float) for v in vals), bool, m)
    out = np.where(isnum & ok, vals, np.nan).astype(np.float64)
    return out, ok, ok & ~isnum


def partial(c: Col, offsets: np.ndarray) -> Partial:
    m = int(offsets[-1])
    v, ok, bad = numeric_points(c, m)
    good = ok & ~bad
    return Partial(
        segment_reduce(np.add, ok.astype(np.int64), offsets, 0),
        segment_reduce(np.add, np.where(good, v, 0.0), offsets, 0.0),
        segment_reduce(np.minimum, np.where(good, v, np.inf), offsets, np.inf),
        segment_reduce(np.maximum, np.where(good, v, -np.inf), offsets, -np.inf),
        segment_reduce(np.logical_or, bad, offsets, False),
    )


def aggregate(name: str, parts: list[Partial]) -> Col:
    """avg/sum/min/max/count of the pooled points of every argument."""
    count = sum((p.count for p in parts[1:]), parts[0].count)
    if name == "count":
        return Col(count.astype(np.float64), None, None, NUM)
    bad = np.logical_or.reduce([p.bad for p in parts])
    ok = (count > 0) & ~bad
    if name == "min":
        v = np.minimum.reduce([p.low for p in parts])
    elif name == "max":
        v = np.maximum.reduce([p.high for p in parts])
    else:
        total = np.add.reduce([p.total for p in parts])
        with np.errstate(all="ignore"):
            v = total / count if name == "avg" else total
    return Col(v, ok, None, NUM, dirty=True)


def pick(c: Col, offsets: np.ndarray, last: bool) -> Col:
    """The first (or last) point with a value in each window."""
    c = clean(c)
    m = int(offsets[-1])
    ok = full(c.ok, m, True)
    idx = np.arange(m, dtype=np.int64)
    if last:
        chosen = segment_reduce(np.maximum, np.where(ok, idx, -1), offsets, -1)
        found = chosen >= 0
    else:
        chosen = segment_reduce(np.minimum, np.where(ok, idx, m), offsets, m)
        found = chosen < m
    safe = np.where(found, chosen, 0)
    if m == 0:
        return Col(np.full(offsets.shape[0] - 1, np.nan), found, None, NUM)
    values = np.broadcast_to(c.v, (m,))[safe] if isinstance(c.v, np.ndarray) else c.v
    return Col(values, found, None, c.kind)


def positive(c: Col, n: int) -> np.ndarray:
    """Rows whose value is a number > 0 (statetime's 'in the state')."""
    c = clean(c)
    ok = full(c.ok, n, True)
    if c.kind != OBJ:
        with np.errstate(invalid="ignore"):
            return ok & (np.broadcast_to(floats(c), (n,)) > 0)
    vals = np.broadcast_to(np.asarray(c.v, object), (n,))
    return ok & np.fromiter((isinstance(v, float) and v > 0 for v in vals), bool, n)


def statetime(points: Col, timestamps: np.ndarray, offsets: np.ndarray, prior_on: np.ndarray,
              prior_known: np.ndarray, ends: np.ndarray, interval: int) -> Col:
    """Seconds of each window (t−Δ, t] during which the value was > 0.

    The state at the window start is the prior value (latest at or before t−Δ); each point holds its state
    until the next point or the window end. Without a prior value there is no output.
    """
    m = int(offsets[-1])
    w = ends.shape[0]
    on = positive(points, m)
    rows = np.repeat(np.arange(w, dtype=np.int64), np.diff(offsets))
    nxt = np.empty(m, np.int64)
    if m:
        nxt[:-1] = timestamps[1:]
        last_of_window = offsets[1:][np.diff(offsets) > 0] - 1
        nxt[last_of_window] = ends[rows[last_of_window]]
    held = np.where(on, nxt - timestamps, 0)
    total = segment_reduce(np.add, held, offsets, 0)
    counts = np.diff(offsets)
    starts = ends - interval
    first_ts = np.where(counts > 0, timestamps[np.minimum(offsets[:-1], max(m - 1, 0))] if m else ends, ends)
    total = total + np.where(prior_on, first_ts - starts, 0)
    return Col(total / NS_PER_S, prior_known, None, NUM)
