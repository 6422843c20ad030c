"""Metrics at the edge: tumbling windows, computed when a window closes, recomputed for late data.

A metric with interval Δ has windows (t − Δ, t], stamped at t (reference §5.7). Window ends are
aligned to the epoch plus the metric's offset (weekly windows end on Sunday midnight UTC).
A metric instance exists per asset of the model; all instances of one model metric are computed
together, over many windows at once, in one vectorised evaluation.

Inputs per variable (GOOD values only):

- a measurement or transform of the asset: its points in the window, the latest value at or
  before the window start (``prior``: statetime's initial state) and the first ever (``earliest``);
- a metric of the asset (same interval): its value for the window;
- an attribute: its value;
- a variable through a hierarchy: the values of that property in every child asset, pooled.

This module is pure: the caller gives a ``fetch`` function that reads points from the store.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Literal

import numpy as np
import pyarrow as pa

from asset_models.checks import variable_type
from asset_models.errors import ModelInvalid
from asset_models.expressions import Column, Compiled, Series, VarInfo, compile_expression
from asset_models.model import AssetModel, ModelProperty
from asset_models.registry import Registry
from asset_models.transforms import _attribute_value, _find_property, _values_of
from sitewise_edge.clock import NS_PER_S
from sitewise_edge.errors import ModelError
from sitewise_edge.samples import from_columns

log = logging.getLogger(__name__)

WEEK_ANCHOR_NS = 4 * 86_400 * NS_PER_S  # 1970-01-05, a Monday: weekly windows end at Sunday midnight UTC
MIN_INTERVAL_NS = 60 * NS_PER_S
MAX_INTERVAL_NS = 7 * 86_400 * NS_PER_S
_UNITS = {"s": NS_PER_S, "m": 60 * NS_PER_S, "h": 3600 * NS_PER_S, "d": 86_400 * NS_PER_S, "w": 7 * 86_400 * NS_PER_S}

# fetch(streams, start_ns, end_ns) -> table of GOOD points with columns stream, time, double, integer,
# string, boolean, for start < time <= end; prior(streams, at_ns) -> the latest GOOD point of each
# stream at or before at_ns; earliest(streams) -> the first GOOD point of each stream.
Fetch = Callable[[Sequence[str], int, int], pa.Table]
Prior = Callable[[Sequence[str], int], pa.Table]
Earliest = Callable[[Sequence[str]], pa.Table]


def parse_interval(text: str) -> int:
    """``1m``, ``5m``, ``1h``, ``1d``, ``1w`` or ISO-8601 ``PT5M`` -> nanoseconds (1 minute .. 1 week)."""
    s = text.strip()
    m = re.fullmatch(r"(\d+)([smhdw])", s)
    if m:
        ns = int(m.group(1)) * _UNITS[m.group(2)]
    else:
        iso = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", s)
        if not iso or not any(iso.groups()):
            raise ModelInvalid(f"window interval {text!r}: expected a duration such as 1m, 15m, 1h, 1d, 1w or PT5M")
        d, h, mi, sec = (int(g or 0) for g in iso.groups())
        ns = ((d * 24 + h) * 60 + mi) * 60 * NS_PER_S + sec * NS_PER_S
    if not MIN_INTERVAL_NS <= ns <= MAX_INTERVAL_NS:
        raise ModelInvalid(f"window interval {text!r}: must be between 1 minute and 1 week")
    return ns


def parse_offset(text: str | None) -> int:
    """The offset of window ends from the epoch alignment, in nanoseconds.

    ``18h`` / ``PT18H`` (a duration), ``00:03:00`` (a time of day), or ``2021-07-23T18:00-08`` (a moment:
    windows end at that instant plus whole intervals).
    """
    if text is None:
        return 0
    s = text.strip()
    if re.fullmatch(r"\d+[smhd]|P.*", s):
        return parse_interval_any(s)
    if re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", s):
        parts = [int(p) for p in s.split(":")] + [0]
        return ((parts[0] * 60 + parts[1]) * 60 + parts[2]) * NS_PER_S
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?)([+-]\d{1,2}(?::?\d{2})?|Z)?", s)
    if m:
        zone = m.group(2) or "Z"
        if zone == "Z":
            tz = UTC
        else:
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            hours, minutes = int(digits[:2] if len(digits) > 2 else digits), int(digits[2:] or 0)
            tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
        moment = datetime.fromisoformat(m.group(1)).replace(tzinfo=tz)
        return int(moment.timestamp()) * NS_PER_S
    raise ModelInvalid(f"window offset {text!r}: expected 18h, PT18H, 00:03:00 or 2021-07-23T18:00-08")


def parse_interval_any(text: str) -> int:
    m = re.fullmatch(r"(\d+)([smhd])", text)
    if m:
        return int(m.group(1)) * _UNITS[m.group(2)]
    try:
        return parse_interval(text)
    except ModelInvalid:
        raise ModelInvalid(f"window offset {text!r}: expected a duration such as 18h or PT18H") from None


@dataclass
class MetricGroup:
    """One model metric and its instances (one per asset of the model)."""

    model: AssetModel
    prop: ModelProperty
    compiled: Compiled
    interval_ns: int
    anchor_ns: int
    variables: dict[str, tuple[str, ModelProperty]]  # name -> (kind: local|attribute|hierarchy, property)
    hierarchy_of: dict[str, str]  # variable -> hierarchy id
    assets: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    inputs: dict[str, list[list[str]]] = field(default_factory=dict)  # variable -> per asset, its streams

    @property
    def key(self) -> str:
        return f"{self.model.id}/{self.prop.id}"

    def window_ends(self, after_ns: int, until_ns: int) -> np.ndarray:
        """Ends of the windows that close in (after, until]."""
        first = (after_ns - self.anchor_ns) // self.interval_ns + 1
        last = (until_ns - self.anchor_ns) // self.interval_ns
        if last < first:
            return np.zeros(0, dtype=np.int64)
        return self.anchor_ns + np.arange(first, last + 1, dtype=np.int64) * self.interval_ns

    def window_end_of(self, t_ns: int) -> int:
        """The end of the window that holds ``t``."""
        k = -((-(t_ns - self.anchor_ns)) // self.interval_ns)
        return self.anchor_ns + k * self.interval_ns


class MetricPlan:
    def __init__(self, groups: list[MetricGroup]) -> None:
        self.groups = groups
        self.streams = {s for g in groups for per_asset in g.inputs.values() for ss in per_asset for s in ss}
        self.outputs = {s for g in groups for s in g.outputs}

    def __len__(self) -> int:
        return sum(len(g.assets) for g in self.groups)

    @classmethod
    def build(cls, registry: Registry) -> MetricPlan:
        problems: list[str] = []
        groups: list[MetricGroup] = []
        for model in registry.models():
            for prop in model.properties:
                if prop.kind != "metric" or not prop.expression:
                    continue
                try:
                    groups.append(_compile(registry, model, prop))
                except ModelError as exc:
                    problems.append(f"model '{model.name}' metric '{prop.name}': {exc}")
        ordered = _in_dependency_order(registry, groups, problems)
        if problems:
            raise ModelInvalid(problems)
        for group in ordered:
            for asset in registry.assets():
                if asset.model_id != group.model.id:
                    continue
                group.assets.append(asset.id)
                group.outputs.append(registry.stream_of(asset.id, group.prop.id))
                for name, (kind, target) in group.variables.items():
                    if kind == "hierarchy":
                        streams = [registry.stream_of(child.id, target.id)
                                   for child in registry.children(asset.id, group.hierarchy_of[name])]
                    elif kind == "attribute":
                        streams = []
                    else:
                        streams = [registry.stream_of(asset.id, target.id)]
                    group.inputs.setdefault(name, []).append(streams)
        return cls([g for g in ordered if g.assets])


def _compile(registry: Registry, model: AssetModel, prop: ModelProperty) -> MetricGroup:
    if prop.window is None:
        raise ModelInvalid("a metric needs window.tumbling.interval")
    interval = parse_interval(prop.window.interval)
    offset = parse_offset(prop.window.offset)
    anchor = (WEEK_ANCHOR_NS if interval == MAX_INTERVAL_NS and prop.window.offset is None else offset) % interval
    infos: dict[str, VarInfo] = {}
    variables: dict[str, tuple[str, ModelProperty]] = {}
    hierarchy_of: dict[str, str] = {}
    for var in prop.variables:
        if var.hierarchy_id:
            hierarchy = next((h for h in model.hierarchies if var.hierarchy_id in (h.id, h.name)), None)
            if hierarchy is None:
                raise ModelInvalid(f"variable '{var.name}': no hierarchy {var.hierarchy_id!r} in the model")
            child_model = registry.model(hierarchy.child_model_id)
            target = _find_property(child_model, var.property_id)
            if target is None:
                raise ModelInvalid(f"variable '{var.name}': no property {var.property_id!r} in '{child_model.name}'")
            variables[var.name] = ("hierarchy", target)
            hierarchy_of[var.name] = hierarchy.id
            infos[var.name] = VarInfo(variable_type(target.data_type), hierarchy=True, metric=target.kind == "metric")
            continue
        target = _find_property(model, var.property_id)
        if target is None:
            raise ModelInvalid(f"variable '{var.name}' refers to no property of the model ({var.property_id!r})")
        kind = "attribute" if target.kind == "attribute" else "local"
        variables[var.name] = (kind, target)
        infos[var.name] = VarInfo(variable_type(target.data_type), attribute=kind == "attribute",
                                  metric=target.kind == "metric")
    output: Literal["DOUBLE", "STRING"] = "STRING" if prop.data_type == "STRING" else "DOUBLE"
    compiled = compile_expression(prop.expression or "", infos, "metric", output_type=output)
    return MetricGroup(model, prop, compiled, interval, anchor, variables, hierarchy_of)


def _in_dependency_order(registry: Registry, groups: list[MetricGroup], problems: list[str]) -> list[MetricGroup]:
    by_key = {(g.model.id, g.prop.id): g for g in groups}
    deps: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for g in groups:
        need: set[tuple[str, str]] = set()
        for name, (kind, target) in g.variables.items():
            if target.kind != "metric":
                continue
            if kind == "hierarchy":
                hierarchy = next(h for h in g.model.hierarchies if h.id == g.hierarchy_of[name])
                need.add((registry.model(hierarchy.child_model_id).id, target.id))
            else:
                need.add((g.model.id, target.id))
                other = by_key.get((g.model.id, target.id))
                if other is not None and other.interval_ns != g.interval_ns:
                    problems.append(f"model '{g.model.name}' metric '{g.prop.name}': input metric "
                                    f"'{target.name}' must have the same interval")
        deps[(g.model.id, g.prop.id)] = need & set(by_key)
    ordered: list[MetricGroup] = []
    done: set[tuple[str, str]] = set()
    while len(done) < len(groups):
        ready = [k for k, d in deps.items() if k not in done and d <= done]
        if not ready:
            names = sorted(by_key[k].prop.name for k in deps if k not in done)
            problems.append(f"metrics depend on each other in a cycle: {', '.join(names)}")
            return ordered
        for k in sorted(ready):
            ordered.append(by_key[k])
            done.add(k)
    return ordered


def compute(group: MetricGroup, ends: np.ndarray, fetch: Fetch, prior: Prior, earliest: Earliest,
            clock: Callable[[], float] | None = None) -> pa.Table | None:
    """The metric's values for the windows ending at ``ends`` (sorted), for every asset of the group."""
    w = len(ends)
    if w == 0:
        return None
    a = len(group.assets)
    rows = a * w  # row r = asset (r // w), window (r % w)
    start, stop = int(ends[0]) - group.interval_ns, int(ends[-1])
    window_inputs: dict[str, Series | Column] = {}
    for name, (kind, target) in group.variables.items():
        if kind == "attribute":
            value = _attribute_value(target)
            window_inputs[name] = Column(np.full(rows, value if value is not None else np.nan, dtype=object
                                                 if isinstance(value, str) else np.float64),
                                         np.full(rows, value is not None))
            continue
        per_asset = group.inputs[name]
        streams = sorted({s for ss in per_asset for s in ss})
        points = fetch(streams, start, stop)
        window_inputs[name] = _series(per_asset, points, ends, group.interval_ns, prior(streams, start),
                                      earliest(streams) if _uses(group, "earliest") else None)
    result = group.compiled.evaluate_windows(window_inputs, np.tile(ends, a), interval_ns=group.interval_ns,
                                             clock=clock)
    keep = np.asarray(result.valid, dtype=bool)
    if not keep.any():
        return None
    outputs = np.repeat(np.array(group.outputs, dtype=object), w)[keep]
    times = np.tile(ends, a)[keep]
    values = result.values[keep]
    if group.prop.data_type == "STRING":
        return pa.table(from_columns(list(outputs), times, string=[str(v) for v in values]))
    return pa.table(from_columns(list(outputs), times, double=values.astype(np.float64)))


def _uses(group: MetricGroup, function: str) -> bool:
    return function in (group.prop.expression or "").lower()


def _asset_of(per_asset: list[list[str]], names: list[str]) -> np.ndarray:
    """For each name (a dictionary entry), the asset row it feeds, or -1. A stream feeds one asset:
    its own, or its one parent through a hierarchy."""
    owner: dict[str, int] = {}
    for i, streams in enumerate(per_asset):
        for s in streams:
            owner[s] = i
    return np.array([owner.get(n, -1) for n in names], dtype=np.int64)


def _codes(table: pa.Table) -> tuple[np.ndarray, list[str]]:
    stream = table.column("stream").combine_chunks()
    if not pa.types.is_dictionary(stream.type):
        stream = stream.dictionary_encode()
    return stream.indices.to_numpy(zero_copy_only=False).astype(np.int64), stream.dictionary.to_pylist()


def _series(per_asset: list[list[str]], points: pa.Table, ends: np.ndarray, interval_ns: int,
            priors: pa.Table, earliest: pa.Table | None) -> Series:
    """Points of each (asset, window) row, CSR, with the state before each window. Vectorised: one
    dictionary lookup per distinct stream, array operations per point."""
    w = len(ends)
    rows = len(per_asset) * w
    codes, names = _codes(points) if points.num_rows else (np.zeros(0, dtype=np.int64), [])
    times = points.column("time").cast(pa.int64()).to_numpy()
    values = _values_of(points)
    asset = _asset_of(per_asset, names)[codes] if len(codes) else np.zeros(0, dtype=np.int64)
    win = np.searchsorted(ends, times, side="left")  # window k holds (ends[k] - interval, ends[k]]
    inside = (asset >= 0) & (win < w)
    inside[inside] &= times[inside] > ends[win[inside]] - interval_ns
    rid = asset[inside] * w + win[inside]
    pidx = np.flatnonzero(inside)
    order = np.lexsort((times[pidx], rid))
    rid, pidx = rid[order], pidx[order]
    offsets = np.concatenate([[0], np.cumsum(np.bincount(rid, minlength=rows))]).astype(np.int64)
    prior_col = _per_window_prior(per_asset, priors, ends, interval_ns, asset, times, values)
    earliest_col = _per_row_first(per_asset, earliest, w) if earliest is not None else None
    return Series(values[pidx], offsets, times[pidx], prior_col, earliest_col)


def _per_window_prior(per_asset: list[list[str]], priors: pa.Table, ends: np.ndarray, interval_ns: int,
                      asset: np.ndarray, times: np.ndarray, values: np.ndarray) -> Column:
    """Per row: the latest value at or before the window start, from the fetched points or from before
    them. Rows pooling several child streams have no single state (statetime needs one)."""
    w = len(ends)
    a = len(per_asset)
    single = np.array([len(ss) == 1 for ss in per_asset], dtype=bool)
    numeric = values.dtype != object
    out = np.full(a * w, np.nan) if numeric else np.full(a * w, None, dtype=object)
    valid = np.zeros(a * w, dtype=bool)
    # the state before the first window, per asset
    if priors.num_rows:
        p_codes, p_names = _codes(priors)
        p_asset = _asset_of(per_asset, p_names)[p_codes]
        p_values = _values_of(priors)
        keep = (p_asset >= 0) & single[np.maximum(p_asset, 0)]
        for k in range(w):  # every window starts from it; later points override below
            out[p_asset[keep] * w + k] = p_values[keep]
            valid[p_asset[keep] * w + k] = True
    # the last fetched point at or before each window start, per asset: one searchsorted over
    # (asset, time rank) keys for every (asset, window) at once
    idx = np.flatnonzero(asset >= 0)
    if len(idx):
        starts = ends - interval_ns
        all_times, rank = np.unique(np.concatenate([times[idx], starts]), return_inverse=True)
        r_points, r_starts = rank[:len(idx)], rank[len(idx):]
        span = len(all_times) + 1
        keys = asset[idx] * span + r_points
        order = np.argsort(keys, kind="stable")
        keys, idx = keys[order], idx[order]
        q_asset = np.repeat(np.arange(a), w)
        queries = q_asset * span + np.tile(r_starts, a)
        pos = np.searchsorted(keys, queries, side="right") - 1
        hit = (pos >= 0)
        hit[hit] &= asset[idx[pos[hit]]] == q_asset[hit]
        hit &= single[q_asset]
        out[hit] = values[idx[pos[hit]]]
        valid[hit] = True
    return Column(out, valid)


def _per_row_first(per_asset: list[list[str]], earliest: pa.Table, w: int) -> Column:
    names = earliest.column("stream").cast(pa.string()).to_pylist()
    values = _values_of(earliest) if earliest.num_rows else np.zeros(0)
    first = dict(zip(names, values, strict=True))
    rows = len(per_asset) * w
    out = np.full(rows, np.nan, dtype=object)
    valid = np.zeros(rows, dtype=bool)
    for i, streams in enumerate(per_asset):
        if len(streams) == 1 and streams[0] in first:
            out[i * w:(i + 1) * w] = first[streams[0]]
            valid[i * w:(i + 1) * w] = True
    return Column(out, valid)
