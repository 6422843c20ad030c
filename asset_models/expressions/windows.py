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
    bad: np.ndarray  # a point that is not a number (text): sum/avg/min/max/stdev give no value
    values: np.ndarray  # float64 per point, 0 where the point has no numeric value (stdev's second pass)
    good: np.ndarray  # per point: has a numeric value
    offsets: np.ndarray


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
        np.where(good, v, 0.0),
        good,
        offsets,
    )


def aggregate(name: str, parts: list[Partial]) -> Col:
    """avg/sum/min/max/count of the pooled points of every argument."""
    count = sum((p.count for p in parts[1:]), parts[0].count)
    if name == "count":
        return Col(count.astype(np.float64), None, None, NUM)
    bad = np.logical_or.reduce([p.bad for p in parts])
    ok = (count > 0) & ~bad
    if name == "stdev":
        return _sample_stdev(count, bad, parts)
    if name == "min":
        v = np.minimum.reduce([p.low for p in parts])
    elif name == "max":
        v = np.maximum.reduce([p.high for p in parts])
    else:
        total = np.add.reduce([p.total for p in parts])
        with np.errstate(all="ignore"):
            v = total / count if name == "avg" else total
    return Col(v, ok, None, NUM, dirty=True)


def _sample_stdev(count: np.ndarray, bad: np.ndarray, parts: list[Partial]) -> Col:
    """Sample standard deviation (n − 1) of the pooled points, two passes: the mean, then the squares."""
    total = np.add.reduce([p.total for p in parts])
    with np.errstate(all="ignore"):
        mean = total / count
        squares = np.zeros(count.shape[0], np.float64)
        for p in parts:
            rows = np.repeat(np.arange(count.shape[0], dtype=np.int64), np.diff(p.offsets))
            d = np.where(p.good, p.values - mean[rows], 0.0)
            squares += segment_reduce(np.add, d * d, p.offsets, 0.0)
        v = np.sqrt(squares / (count - 1))
    return Col(v, (count > 1) & ~bad, None, NUM, dirty=True)


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


def time_weighted(points: Col, timestamps: np.ndarray, offsets: np.ndarray, prior: Col | None, ends: np.ndarray,
                  interval: int, how: str) -> Col:
    """TimeWeightedAvg (``how`` "locf" or "linear") or TimeWeightedStDev (``how`` "f" or "p") per window.

    The window (t−Δ, t] is cut into segments at its points. The value at the window start is the prior value
    (latest at or before t−Δ), held until the first point; each point holds (locf) until the next point or
    the window end. ``linear`` integrates the straight line between adjacent values (the trapezoid, the mean
    of the two ends times the seconds between them); the last point holds to the window end, where no later
    value exists yet. Weights are seconds. Without a prior value the segments start at the first point.
    StDev weights each value by its seconds under locf: ``f`` divides by (Σw − 1), every second counting
    as an observation (frequency weights); ``p`` divides by Σw (population). No output where the weights sum
    to 0 (``f``: to at most 1), or where a point is text.
    """
    w = ends.shape[0]
    m = int(offsets[-1])
    v, ok, text = numeric_points(points, m)
    bad = segment_reduce(np.logical_or, text, offsets, False)
    good = ok & ~text
    rows = np.repeat(np.arange(w, dtype=np.int64), np.diff(offsets))[good]
    ts = np.asarray(timestamps, np.int64)[good]
    v = v[good]
    offsets = np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=w)))).astype(np.int64)
    k = v.shape[0]
    same = np.zeros(k, bool)
    if k:
        same[:-1] = rows[1:] == rows[:-1]
    nxt_ts = ends[rows].copy()
    nxt_ts[:-1] = np.where(same[:-1], ts[1:], nxt_ts[:-1])
    seconds = (nxt_ts - ts) / NS_PER_S
    counts = np.diff(offsets)
    has = counts > 0
    first = np.minimum(offsets[:-1], max(k - 1, 0))
    first_ts = np.where(has, ts[first] if k else ends, ends)
    first_v = np.where(has, v[first] if k else 0.0, np.nan)
    if prior is not None:
        pv, pok, ptext = numeric_points(prior, w)
        pok = pok & ~ptext
    else:
        pv, pok = np.zeros(w), np.zeros(w, bool)
    lead = np.where(pok, (first_ts - (ends - interval)) / NS_PER_S, 0.0)  # seconds of the prior value
    pv = np.where(pok, pv, 0.0)
    weight = segment_reduce(np.add, seconds, offsets, 0.0) + lead
    with np.errstate(all="ignore"):
        if how == "linear":
            nxt_v = v.copy()
            nxt_v[:-1] = np.where(same[:-1], v[1:], v[:-1])
            lead_v = np.where(has, (pv + first_v) / 2, pv)
            area = segment_reduce(np.add, (v + nxt_v) / 2 * seconds, offsets, 0.0) + lead_v * lead
            return Col(area / weight, (weight > 0) & ~bad, None, NUM, dirty=True)
        mean = (segment_reduce(np.add, v * seconds, offsets, 0.0) + pv * lead) / weight
        if how == "locf":
            return Col(mean, (weight > 0) & ~bad, None, NUM, dirty=True)
        d = v - mean[rows]
        squares = segment_reduce(np.add, d * d * seconds, offsets, 0.0) + (pv - mean) ** 2 * lead
        if how == "p":
            return Col(np.sqrt(squares / weight), (weight > 0) & ~bad, None, NUM, dirty=True)
        return Col(np.sqrt(squares / (weight - 1)), (weight > 1) & ~bad, None, NUM, dirty=True)
