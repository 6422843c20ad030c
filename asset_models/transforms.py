"""Transforms at the edge: SiteWise's semantics, evaluated over whole batches.

A transform computes one output per GOOD input point of any of its non-attribute variables,
using the latest GOOD values of the other variables at or before that point's timestamp, and
stamps the output with the trigger's timestamp (reference §5.6). Outputs are GOOD; a row
with no output (``none``, division by zero, ...) produces nothing. Transforms over transforms
are evaluated in dependency order within the same batch.

Work is grouped per *model* transform: the instances of one formula in every asset of the
model are evaluated together, in one vectorised call.

Each input stream keeps its latest two GOOD values (the state most triggers need); a trigger older
than those (out-of-order arrival across inputs) looks into a bounded history of recent rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from asset_models.checks import variable_type
from asset_models.errors import ModelInvalid
from asset_models.expressions import Column, Compiled, VarInfo, compile_expression
from asset_models.model import Asset, AssetModel, ModelProperty
from asset_models.registry import Registry
from sitewise_edge.errors import ModelError
from sitewise_edge.samples import Quality, from_columns

log = logging.getLogger(__name__)



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
        """Compile every model transform; raises ModelInvalid naming the model, property and position."""
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
            raise ModelInvalid(problems)
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
            raise ModelInvalid(f"variable '{var.name}' refers to no property of the model ({var.property_id!r})")
        infos[var.name] = VarInfo(variable_type(target.data_type), attribute=target.kind == "attribute")
        if target.kind != "attribute":
            triggers.append(var.name)
    if not triggers:
        raise ModelInvalid("a transform needs at least one variable that is not an attribute")
    output: Literal["DOUBLE", "STRING"] = "STRING" if prop.data_type == "STRING" else "DOUBLE"
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


class _Index:
    """Integer ids for the streams the plan reads, and per (group, variable) the instance each feeds."""

    def __init__(self, plan: TransformPlan) -> None:
        names = sorted(set(plan.triggers) | plan.outputs)
        self.id_of = {n: i for i, n in enumerate(names)}
        self.size = len(names)
        self.text = np.zeros(self.size, dtype=bool)  # streams holding strings
        self.inputs: list[dict[str, np.ndarray]] = []  # group -> variable -> stream id per instance
        self.owner: list[dict[str, np.ndarray]] = []  # group -> variable -> instance per stream id (-1)
        self.outputs: list[np.ndarray] = []  # group -> output stream id per instance
        self.output_names: list[pa.Array] = []  # group -> output stream name per instance (a dictionary)
        for group in plan.groups:
            ins: dict[str, np.ndarray] = {}
            own: dict[str, np.ndarray] = {}
            for var in group.variables:
                ids = np.array([self.id_of[inst.inputs[var]] for inst in group.instances], dtype=np.int64)
                ins[var] = ids
                o = np.full(self.size, -1, dtype=np.int64)
                o[ids] = np.arange(len(ids))
                own[var] = o
                target = _find_property(group.model, next(v.property_id for v in group.prop.variables
                                                          if v.name == var))
                if target is not None and target.data_type == "STRING":
                    self.text[ids] = True
            self.inputs.append(ins)
            self.owner.append(own)
            outs = np.array([self.id_of[inst.output] for inst in group.instances], dtype=np.int64)
            self.outputs.append(outs)
            self.output_names.append(pa.array([inst.output for inst in group.instances], pa.string()))
            if group.prop.data_type == "STRING":
                self.text[outs] = True


class TransformEngine:
    """Evaluates a :class:`TransformPlan` over each accepted batch.

    State per input stream (arrays indexed by stream id): its latest GOOD value and the one before, which
    answer every trigger that is not older than the stream's latest value. Triggers older than that (out
    of order across inputs) look into a bounded history of recent rows.
    """

    HISTORY_ROWS = 1_000_000

    def __init__(self, plan: TransformPlan, clock: Callable[[], float] | None = None) -> None:
        self.plan = plan
        self.clock = clock
        self.index = _Index(plan)
        self._dictionary: pa.Array | None = None  # the stream dictionary of the last batch and its stream ids
        self._dictionary_ids = np.zeros(0, dtype=np.int64)
        n = self.index.size
        self._last_t = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
        self._prev_t = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
        # values travel as float64 unless some stream of the plan holds strings
        self._dtype: type = object if self.index.text.any() else np.float64
        self._last_v = np.full(n, np.nan, dtype=self._dtype)
        self._prev_v = np.full(n, np.nan, dtype=self._dtype)
        self._history: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._history_rows = 0
        self.computed = 0

    def seed(self, latest: pa.Table) -> None:
        """Start from the store's latest values (a restart, or new models), not from nothing."""
        rid, rt, rv = self._rows(latest)
        if len(rid):
            self._remember(rid, rt, rv)

    def process(self, batch: pa.RecordBatch | pa.Table) -> pa.Table | None:
        """The transform outputs triggered by ``batch`` (already accepted), or None."""
        if not self.plan.groups or batch.num_rows == 0:
            return None
        rid, rt, rv = self._rows(pa.table(batch) if isinstance(batch, pa.RecordBatch) else batch)
        if not len(rid):
            return None
        outputs: list[pa.Table] = []
        lookup = _Lookup(rid, rt, rv)  # one sort per batch, shared by every transform
        for g, group in enumerate(self.plan.groups):
            out = self._evaluate(g, group, lookup)
            if out is None:
                continue
            outputs.append(out[0])
            rid = np.concatenate([rid, out[1]])  # transforms of transforms see these outputs
            rt = np.concatenate([rt, out[2]])
            rv = np.concatenate([rv, out[3]])
            if g + 1 < len(self.plan.groups):
                lookup = _Lookup(rid, rt, rv)
        self._remember(rid, rt, rv)
        if not outputs:
            return None
        table = pa.concat_tables(outputs).unify_dictionaries()
        self.computed += table.num_rows
        return table

    def _rows(self, table: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """GOOD rows of streams the plan reads: (stream id, time, value as object)."""
        stream = table.column("stream").combine_chunks()
        if not pa.types.is_dictionary(stream.type):
            stream = stream.dictionary_encode()
        rid = self._ids_of(stream.dictionary)[stream.indices.to_numpy(zero_copy_only=False)]
        keep = (rid >= 0) & (table.column("quality").to_numpy() == int(Quality.GOOD))
        if not keep.any():
            return rid[:0], rid[:0], np.zeros(0, dtype=self._dtype)
        table = table.filter(pa.array(keep))
        values = _values_of(table)
        return rid[keep], table.column("time").cast(pa.int64()).to_numpy(), values.astype(self._dtype, copy=False)

    def _ids_of(self, dictionary: pa.Array) -> np.ndarray:
        """The stream id of each name of a batch's dictionary (-1: not read by the plan). A source sends the
        same dictionary batch after batch: then the ids of the last batch are used again (one compare in C)."""
        last = self._dictionary
        if last is None or not (dictionary is last or dictionary.equals(last)):
            get = self.index.id_of.get
            self._dictionary_ids = np.array([get(n, -1) for n in dictionary.to_pylist()], dtype=np.int64)
            self._dictionary = dictionary
        return self._dictionary_ids

    def _evaluate(self, g: int, group: TransformGroup, lookup: _Lookup
                  ) -> tuple[pa.Table, np.ndarray, np.ndarray, np.ndarray] | None:
        owner = self.index.owner[g]
        inst_parts, row_parts = [], []
        for var in group.variables:
            inst = owner[var][lookup.rid]
            hit = np.flatnonzero(inst >= 0)
            if len(hit):
                inst_parts.append(inst[hit])
                row_parts.append(hit)
        if not inst_parts:
            return None
        inst_idx = np.concatenate(inst_parts)
        rows = np.concatenate(row_parts)  # trigger rows, as positions in the lookup's sorted rows
        times = lookup.rt[rows]
        ranks = lookup.rank[rows]
        n = len(times)
        inputs: dict[str, Column] = {}
        pre: dict[str, Column] = {}
        var_ts: dict[str, Column] = {}
        pre_ts: dict[str, Column] = {}
        for var in group.variables:
            streams = self.index.inputs[g][var][inst_idx]
            numeric = not self.index.text[streams].any()
            (v, ok, t), (pv, pok, pt) = self._values_at(lookup, streams, times, ranks)
            inputs[var] = Column(v.astype(np.float64, copy=False) if numeric else v, ok)
            pre[var] = Column(pv.astype(np.float64, copy=False) if numeric else pv, pok)
            var_ts[var] = Column(t, ok)
            pre_ts[var] = Column(pt, pok)
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
        out_ids = self.index.outputs[g][inst_idx[keep]]
        out_t = times[keep]
        values = result.values[keep]
        streams = pa.DictionaryArray.from_arrays(pa.array(inst_idx[keep].astype(np.int32)),
                                                 self.index.output_names[g])
        if group.prop.data_type == "STRING":
            text = [str(v) for v in values]
            table = pa.table(from_columns(streams, out_t, string=text))
            return table, out_ids, out_t, np.array(text, dtype=self._dtype)
        numbers = values.astype(np.float64)
        return (pa.table(from_columns(streams, out_t, double=numbers)), out_ids, out_t,
                numbers.astype(self._dtype, copy=False))

    def _values_at(self, lookup: _Lookup, streams: np.ndarray, times: np.ndarray, ranks: np.ndarray
                   ) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(value, has, time) at or before each time, and strictly before (pretrigger), per row: the later
        of the batch's own row and the remembered state (the batch wins at an equal time)."""
        out = []
        last_t, prev_t = self._last_t[streams], self._prev_t[streams]
        for strict in (False, True):
            v, ok, t = lookup.find(streams, ranks, strict)
            use_last = ((last_t < times) if strict else (last_t <= times)) & (last_t > _NEVER)
            use_prev = ~use_last & ((prev_t < times) if strict else (prev_t <= times)) & (prev_t > _NEVER)
            state_t = np.where(use_last, last_t, np.where(use_prev, prev_t, _NEVER))
            from_state = (use_last | use_prev) & (~ok | (state_t > t))
            take_last = from_state & use_last
            take_prev = from_state & use_prev
            v[take_last], t[take_last] = self._last_v[streams[take_last]], last_t[take_last]
            v[take_prev], t[take_prev] = self._prev_v[streams[take_prev]], prev_t[take_prev]
            ok |= from_state
            # older than what the state holds: out of order across inputs, look into the history
            older = ~ok & (prev_t > _NEVER)
            if older.any():
                hv, hok, ht = self._history_find(streams[older], times[older], strict)
                rows = np.flatnonzero(older)
                v[rows[hok]], t[rows[hok]], ok[rows[hok]] = hv[hok], ht[hok], True
            out.append((v, ok, t))
        return out[0], out[1]

    def _history_find(self, streams: np.ndarray, times: np.ndarray, strict: bool
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The latest remembered row of each stream at or before (strictly before) each time, in one pass."""
        hid = np.concatenate([h[0] for h in self._history])
        ht = np.concatenate([h[1] for h in self._history])
        hv = np.concatenate([h[2] for h in self._history])
        return _Lookup(hid, ht, hv, extra_times=times).find_at(streams, times, strict)

    def _remember(self, rid: np.ndarray, rt: np.ndarray, rv: np.ndarray) -> None:
        """Fold the batch's rows (and outputs) into the state and the history."""
        touched = np.unique(rid)
        # candidates: the state's two values, then the batch's rows (later writes win at equal times)
        cid = np.concatenate([touched, touched, rid])
        ct = np.concatenate([self._prev_t[touched], self._last_t[touched], rt])
        cv = np.concatenate([self._prev_v[touched], self._last_v[touched], rv])
        order = np.lexsort((np.arange(len(cid)), ct, cid))
        cid, ct, cv = cid[order], ct[order], cv[order]
        last = np.append(cid[1:] != cid[:-1], True)
        li = np.flatnonzero(last)
        self._last_t[cid[li]], self._last_v[cid[li]] = ct[li], cv[li]
        # the value before the latest: the last candidate at a strictly earlier time (equal times repeat)
        n = len(cid)
        new_run = np.concatenate([[True], (cid[1:] != cid[:-1]) | (ct[1:] != ct[:-1])])
        run_start = np.maximum.accumulate(np.where(new_run, np.arange(n), 0))
        pi = run_start[li] - 1
        safe = np.maximum(pi, 0)
        has_prev = (pi >= 0) & (cid[safe] == cid[li]) & (ct[safe] > _NEVER)
        self._prev_t[cid[li[has_prev]]], self._prev_v[cid[li[has_prev]]] = ct[pi[has_prev]], cv[pi[has_prev]]
        self._history.append((rid, rt, rv))
        self._history_rows += len(rid)
        while self._history_rows > self.HISTORY_ROWS and len(self._history) > 1:
            self._history_rows -= len(self._history.pop(0)[0])


_NEVER = np.iinfo(np.int64).min


class _Lookup:
    """Rows sorted by (stream, time), to find a stream's latest row at or before (or strictly before) a
    time: one searchsorted over (stream, time rank) keys for all queries at once. Queries at the times of
    the rows themselves know their ranks; other query times are ranked with the rows (``extra_times``)."""

    def __init__(self, rid: np.ndarray, rt: np.ndarray, rv: np.ndarray,
                 extra_times: np.ndarray | None = None) -> None:
        both = rt if extra_times is None else np.concatenate([rt, extra_times])
        self.times, rank = np.unique(both, return_inverse=True)
        self.span = len(self.times) + 1
        row_rank = rank[:len(rt)]
        keys = rid * self.span + row_rank
        order = np.argsort(keys, kind="stable")
        self.keys = keys[order]
        self.rid, self.rt, self.rv, self.rank = rid[order], rt[order], rv[order], row_rank[order]

    def find(self, streams: np.ndarray, ranks: np.ndarray, strict: bool
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        q = streams * self.span + ranks
        pos = np.searchsorted(self.keys, q, side="left" if strict else "right") - 1
        safe = np.maximum(pos, 0)
        ok = (pos >= 0) & (self.rid[safe] == streams)
        v = np.full(len(q), np.nan, dtype=self.rv.dtype)
        t = np.zeros(len(q), dtype=np.int64)
        v[ok], t[ok] = self.rv[safe[ok]], self.rt[safe[ok]]
        return v, ok, t

    def find_at(self, streams: np.ndarray, times: np.ndarray, strict: bool
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.find(streams, np.searchsorted(self.times, times), strict)
