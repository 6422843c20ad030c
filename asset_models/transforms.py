"""Transforms at the edge: SiteWise's semantics, evaluated over whole batches.

A transform computes one output per GOOD input point of any of its non-attribute variables,
using the latest GOOD values of the other variables at or before that point's timestamp, and
stamps the output with the trigger's timestamp (reference §5.6). Outputs are GOOD; a row
with no output (``none``, division by zero, ...) produces nothing. Transforms over transforms
are evaluated in dependency order within the same batch.

Work is grouped per *model* transform: the instances of one formula in every asset of the
model are evaluated together, in one vectorised call.

Each input stream keeps a bounded, time-sorted buffer of its recent GOOD values (the state a
trigger looks back into). A trigger older than a buffer reaches back only as far as it holds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from asset_models.expressions import Column, Compiled, VarInfo, compile_expression
from asset_models.model import Asset, AssetModel, ModelProperty
from asset_models.registry import Registry
from sitewise_edge.errors import ModelError
from sitewise_edge.samples import Quality, from_columns

log = logging.getLogger(__name__)

BUFFER_POINTS = 10_000  # recent GOOD values kept per input stream


@dataclass(frozen=True)
class Instance:
    """One asset's copy of a model transform."""

    asset_id: str
    output: str  # the output property's data stream
    inputs: dict[str, str]  # variable -> data stream
    attributes: dict[str, float | str]  # variable -> value


@dataclass
class TransformGroup:
    model: AssetModel
    prop: ModelProperty
    compiled: Compiled
    variables: list[str]  # non-attribute variables, the triggers
    instances: list[Instance] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"model '{self.model.name}' transform '{self.prop.name}'"


def _find_property(model: AssetModel, ref: str | None) -> ModelProperty | None:
    if ref is None:
        return None
    for p in model.properties:
        if ref in (p.id, p.name) or (p.external_id and ref == f"externalId:{p.external_id}"):
            return p
    return None


def _attribute_value(prop: ModelProperty) -> float | str | None:
    raw = prop.default_value
    if raw is None:
        return None
    if prop.data_type == "STRING":
        return raw
    if prop.data_type == "BOOLEAN":
        return 1.0 if raw.strip().lower() == "true" else 0.0
    try:
        return float(raw)
    except ValueError:
        return None


class TransformPlan:
    """Every transform of every asset, compiled once, in dependency order."""

    def __init__(self, groups: list[TransformGroup]) -> None:
        self.groups = groups
        self.triggers: dict[str, list[tuple[int, int, str]]] = {}  # stream -> (group, instance, variable)
        for g, group in enumerate(groups):
            for i, inst in enumerate(group.instances):
                for var, stream in inst.inputs.items():
                    self.triggers.setdefault(stream, []).append((g, i, var))
        self.outputs = {inst.output for group in groups for inst in group.instances}
        self.forwarded_outputs = {inst.output for group in groups for inst in group.instances
                                  if group.prop.forwarding == "ENABLED"}

    def __len__(self) -> int:
        return sum(len(g.instances) for g in self.groups)

    @classmethod
    def build(cls, registry: Registry) -> TransformPlan:
        """Compile every model transform; raises ModelError naming the model, property and position."""
        groups: list[TransformGroup] = []
        problems: list[str] = []
        for model in registry.models():
            local: list[TransformGroup] = []
            for prop in model.properties:
                if prop.kind != "transform" or not prop.expression:
                    continue
                try:
                    local.append(_compile(model, prop))
                except ModelError as exc:
                    problems.append(f"model '{model.name}' transform '{prop.name}': {exc}")
            groups += _in_dependency_order(model, local, problems)
        if problems:
            raise ModelError("\n".join(problems))
        by_model: dict[str, list[TransformGroup]] = {}
        for group in groups:
            by_model.setdefault(group.model.id, []).append(group)
        for asset in registry.assets():
            for group in by_model.get(asset.model_id, []):
                inst = _instance(registry, asset, group)
                if inst is not None:
                    group.instances.append(inst)
        return cls([g for g in groups if g.instances])


def _compile(model: AssetModel, prop: ModelProperty) -> TransformGroup:
    infos: dict[str, VarInfo] = {}
    triggers: list[str] = []
    for var in prop.variables:
        target = _find_property(model, var.property_id)
        if target is None:
            raise ModelError(f"variable '{var.name}' refers to no property of the model ({var.property_id!r})")
        infos[var.name] = VarInfo(target.data_type, attribute=target.kind == "attribute")
        if target.kind != "attribute":
            triggers.append(var.name)
    if not triggers:
        raise ModelError("a transform needs at least one variable that is not an attribute")
    output = "STRING" if prop.data_type == "STRING" else "DOUBLE"
    compiled = compile_expression(prop.expression or "", infos, "transform", output_type=output)
    return TransformGroup(model, prop, compiled, triggers)


def _in_dependency_order(model: AssetModel, groups: list[TransformGroup], problems: list[str]) -> list[TransformGroup]:
    by_prop = {g.prop.id: g for g in groups}
    deps = {g.prop.id: {t.id for v in g.prop.variables if (t := _find_property(model, v.property_id))
                        and t.id in by_prop} for g in groups}
    ordered: list[TransformGroup] = []
    done: set[str] = set()
    while len(done) < len(groups):
        ready = [pid for pid, d in deps.items() if pid not in done and d <= done]
        if not ready:
            cycle = sorted(by_prop[pid].prop.name for pid in deps if pid not in done)
            problems.append(f"model '{model.name}': transforms depend on each other in a cycle: {', '.join(cycle)}")
            return ordered
        for pid in sorted(ready, key=lambda p: by_prop[p].prop.name):
            ordered.append(by_prop[pid])
            done.add(pid)
    return ordered


def _instance(registry: Registry, asset: Asset, group: TransformGroup) -> Instance | None:
    inputs: dict[str, str] = {}
    attributes: dict[str, float | str] = {}
    for var in group.prop.variables:
        target = _find_property(group.model, var.property_id)
        assert target is not None
        if target.kind == "attribute":
            value = _attribute_value(target)
            if value is None:
                log.warning("asset '%s': attribute %s has no value; %s is not computed", asset.name, target.name,
                            group.prop.name)
                return None
            attributes[var.name] = value
        else:
            inputs[var.name] = registry.stream_of(asset.id, target.id)
    return Instance(asset.id, registry.stream_of(asset.id, group.prop.id), inputs, attributes)


class _Buffer:
    """Recent GOOD values of one stream, sorted by time."""

    __slots__ = ("times", "values")

    def __init__(self) -> None:
        self.times = np.zeros(0, dtype=np.int64)
        self.values: np.ndarray = np.zeros(0, dtype=np.float64)

    def add(self, times: np.ndarray, values: np.ndarray) -> None:
        if self.values.dtype != values.dtype:
            dtype = object if object in (self.values.dtype, values.dtype) else np.float64
            self.values = self.values.astype(dtype)
            values = values.astype(dtype)
        t = np.concatenate([self.times, times])
        v = np.concatenate([self.values, values])
        if (len(self.times) and len(times) and times.min() < self.times[-1]) or not _sorted(times):
            order = np.argsort(t, kind="stable")
            t, v = t[order], v[order]
        self.times, self.values = t[-BUFFER_POINTS:], v[-BUFFER_POINTS:]


def _sorted(a: np.ndarray) -> bool:
    return bool(len(a) < 2 or (a[1:] >= a[:-1]).all())


def _values_of(table: pa.Table) -> np.ndarray:
    """One value per row, numeric as float64 (booleans 1/0) unless some row is a string."""
    strings = table.column("string")
    if strings.null_count < len(strings):
        out = np.empty(table.num_rows, dtype=object)
        for name in ("double", "integer", "boolean", "string"):
            col = table.column(name)
            mask = pc.is_valid(col).to_numpy(zero_copy_only=False)
            if mask.any():
                vals = col.to_pylist()
                out[mask] = [float(v) if name != "string" else v for v, m in zip(vals, mask, strict=True) if m]
        return out
    out_f = table.column("double").to_numpy(zero_copy_only=False).astype(np.float64, copy=True)
    for name in ("integer", "boolean"):
        col = table.column(name)
        mask = pc.is_valid(col).to_numpy(zero_copy_only=False)
        if mask.any():
            out_f[mask] = pc.fill_null(col, 0).to_numpy(zero_copy_only=False).astype(np.float64)[mask]
    return out_f


class TransformEngine:
    """Evaluates a :class:`TransformPlan` over each accepted batch; keeps the input buffers."""

    def __init__(self, plan: TransformPlan, clock: Callable[[], float] | None = None) -> None:
        self.plan = plan
        self.clock = clock
        self._buffers: dict[str, _Buffer] = {}
        self.computed = 0

    def process(self, batch: pa.RecordBatch | pa.Table) -> pa.Table | None:
        """The transform outputs triggered by ``batch`` (already accepted), or None."""
        if not self.plan.groups or batch.num_rows == 0:
            return None
        delta = self._inputs_of(batch)
        if not delta:
            return None
        outputs: list[pa.Table] = []
        for g, group in enumerate(self.plan.groups):
            out = self._evaluate(g, group, delta)
            if out is not None and out.num_rows:
                outputs.append(out)
                for stream, (times, values) in self._split(out).items():  # feed transforms of transforms
                    delta[stream] = (times, values)
        if not outputs:
            return None
        table = pa.concat_tables(outputs).unify_dictionaries()
        self.computed += table.num_rows
        return table

    def _inputs_of(self, batch: pa.RecordBatch | pa.Table) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """GOOD rows of streams that trigger a transform, per stream; buffers updated."""
        table = pa.table(batch) if isinstance(batch, pa.RecordBatch) else batch
        stream = table.column("stream").combine_chunks()
        if not pa.types.is_dictionary(stream.type):
            stream = stream.dictionary_encode()
        names = stream.dictionary.to_pylist()
        wanted = np.array([name in self.plan.triggers for name in names], dtype=bool)
        if not wanted.any():
            return {}
        codes = stream.indices.to_numpy(zero_copy_only=False)
        good = table.column("quality").to_numpy() == int(Quality.GOOD)
        rows = wanted[codes] & good
        if not rows.any():
            return {}
        table = table.filter(pa.array(rows))
        return self._split(table)

    def _split(self, table: pa.Table) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        stream = table.column("stream").combine_chunks()
        if not pa.types.is_dictionary(stream.type):
            stream = stream.dictionary_encode()
        codes = stream.indices.to_numpy(zero_copy_only=False)
        names = stream.dictionary.to_pylist()
        times = table.column("time").cast(pa.int64()).to_numpy()
        values = _values_of(table)  # GOOD rows always carry a value (null values are BAD or UNCERTAIN)
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        order = np.argsort(codes, kind="stable")
        bounds = np.flatnonzero(np.diff(codes[order])) + 1
        for chunk in np.split(order, bounds):
            if not len(chunk):
                continue
            name = names[codes[chunk[0]]]
            t, v = times[chunk], values[chunk]
            out[name] = (t, v)
            if name in self.plan.triggers:
                self._buffers.setdefault(name, _Buffer()).add(t, v)
        return out

    def _evaluate(self, g: int, group: TransformGroup, delta: dict[str, tuple[np.ndarray, np.ndarray]]
                  ) -> pa.Table | None:
        # trigger rows: every new point of any non-attribute input of every instance
        rows_inst: list[np.ndarray] = []
        rows_time: list[np.ndarray] = []
        for i, inst in enumerate(group.instances):
            for var in group.variables:
                got = delta.get(inst.inputs[var])
                if got is not None:
                    rows_inst.append(np.full(len(got[0]), i))
                    rows_time.append(got[0])
        if not rows_inst:
            return None
        inst_idx = np.concatenate(rows_inst)
        times = np.concatenate(rows_time)
        n = len(times)
        inputs: dict[str, Column] = {}
        pre: dict[str, Column] = {}
        var_ts: dict[str, Column] = {}
        pre_ts: dict[str, Column] = {}
        for var in group.variables:
            vals, ok, ts, pvals, pok, pts = _lookup(group, var, inst_idx, times, self._buffers)
            inputs[var] = Column(vals, ok)
            pre[var] = Column(pvals, pok)
            var_ts[var] = Column(ts, ok)
            pre_ts[var] = Column(pts, pok)
        for var in group.compiled.variables:
            if var not in inputs:  # an attribute: the same value on every row of an instance
                per_inst = [inst.attributes[var] for inst in group.instances]
                arr = np.array(per_inst, dtype=object if any(isinstance(x, str) for x in per_inst) else np.float64)
                inputs[var] = Column(arr[inst_idx], np.ones(n, dtype=bool))
        result = group.compiled.evaluate(inputs, timestamps=times, clock=self.clock, pretrigger=pre,
                                         var_timestamps=var_ts, pretrigger_timestamps=pre_ts, n=n)
        keep = np.asarray(result.valid, dtype=bool)
        if not keep.any():
            return None
        outputs = np.array([inst.output for inst in group.instances], dtype=object)[inst_idx[keep]]
        values = result.values[keep]
        if group.prop.data_type == "STRING":
            return pa.table(from_columns(list(outputs), times[keep], string=[str(v) for v in values]))
        return pa.table(from_columns(list(outputs), times[keep], double=values.astype(np.float64)))


def _lookup(group: TransformGroup, var: str, inst_idx: np.ndarray, times: np.ndarray,
            buffers: dict[str, _Buffer]) -> tuple[np.ndarray, ...]:
    """Per trigger row: the variable's latest value at or before the row's time (and its time), and its
    pretrigger value: the latest strictly before the row's time. That reading gives every case of the
    documentation's pretrigger example, including out-of-order arrival (reference §6.7)."""
    n = len(times)
    numeric = True
    vals: np.ndarray = np.full(n, np.nan)
    ok = np.zeros(n, dtype=bool)
    ts = np.zeros(n, dtype=np.int64)
    pvals: np.ndarray = np.full(n, np.nan)
    pok = np.zeros(n, dtype=bool)
    pts = np.zeros(n, dtype=np.int64)
    for i in np.unique(inst_idx):
        rows = np.flatnonzero(inst_idx == i)
        buf = buffers.get(group.instances[i].inputs[var])
        if buf is None or not len(buf.times):
            continue
        if buf.values.dtype == object and numeric:
            numeric = False
            vals, pvals = vals.astype(object), pvals.astype(object)
        at = np.searchsorted(buf.times, times[rows], side="right") - 1  # latest at or before
        has = at >= 0
        vals[rows[has]] = buf.values[at[has]]
        ts[rows[has]] = buf.times[at[has]]
        ok[rows] = has
        before = np.searchsorted(buf.times, times[rows], side="left") - 1  # latest strictly before
        phas = before >= 0
        pvals[rows[phas]] = buf.values[before[phas]]
        pts[rows[phas]] = buf.times[before[phas]]
        pok[rows] = phas
    return vals, ok, ts, pvals, pok, pts
