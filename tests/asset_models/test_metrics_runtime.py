"""Metrics: windows, the documentation's statetime example, late data, metrics over metrics, hierarchies."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from asset_models.documents import build_catalog
from asset_models.metrics import MetricPlan, compute, parse_interval, parse_offset
from asset_models.registry import Registry
from sitewise_edge.errors import ModelError
from sitewise_edge.samples import from_columns
from tests.conftest import eventually, gateway_config

S = 10**9
MIN = 60 * S


def pid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"metric-test-{name}"))


def metric(name: str, expression: str, variables: dict[str, Any], interval: str = "1m",
           offset: str | None = None) -> dict[str, Any]:
    window: dict[str, Any] = {"interval": interval}
    if offset:
        window["offset"] = offset
    vs = [{"name": v, "value": p if isinstance(p, dict) else {"propertyId": p}} for v, p in variables.items()]
    return {"id": pid(name), "name": name, "dataType": "DOUBLE",
            "type": {"metric": {"expression": expression, "variables": vs, "window": {"tumbling": window}}}}


MACHINE = {"assetModelName": "Machine", "assetModelProperties": [
    {"id": pid("idle"), "name": "Idle", "dataType": "DOUBLE", "type": {"measurement": {}}},
    {"id": pid("temp"), "name": "Temp", "dataType": "DOUBLE", "type": {"measurement": {}}},
    metric("Idle Time", "statetime(idle)", {"idle": "Idle"}),
    metric("Avg Temp", "avg(t)", {"t": "Temp"}),
    metric("Hot Share", "avg_t / 100", {"avg_t": "Avg Temp"}),
    {"id": pid("Avg Doubled"), "name": "Avg Doubled", "dataType": "DOUBLE", "type": {"transform": {
        "expression": "a * 2", "variables": [{"name": "a", "value": {"propertyId": "Avg Temp"}}]}}},
]}
LINE = {"assetModelName": "Line", "assetModelHierarchies": [{"name": "Machines", "childAssetModelId": "Machine"}],
        "assetModelProperties": [metric("Line Avg", "avg(m)", {"m": {"propertyId": "Avg Temp",
                                                                          "hierarchyId": "Machines"}})]}


def registry(machines: int = 2) -> Registry:
    docs: list[tuple[str, Any]] = [("machine.json", MACHINE), ("line.json", LINE),
                                   ("l1.json", {"assetName": "L1", "assetModelId": "Line"})]
    assoc = []
    for i in range(machines):
        aid = pid(f"asset-{i}")
        docs.append((f"m{i}.json", {"assetId": aid, "assetName": f"M{i}", "assetModelId": "Machine",
                                    "assetProperties": [{"id": pid("idle"), "alias": f"/m{i}/idle"},
                                                        {"id": pid("temp"), "alias": f"/m{i}/temp"}]}))
        assoc.append({"parentAssetId": "L1", "hierarchyId": "Machines", "childAssetId": aid})
    docs.append(("assoc.json", {"assetModels": [], "assets": [], "associations": assoc}))
    return Registry(build_catalog(docs))


class Memory:
    """A tiny in-memory store for the pure tests (fetch/prior/earliest as the runtime gives them)."""

    def __init__(self) -> None:
        self.table = pa.table(from_columns([], []))

    def add(self, table: pa.Table) -> None:
        self.table = pa.concat_tables([self.table, table]).unify_dictionaries()

    def _of(self, streams: Any) -> pa.Table:
        return self.table.filter(pc.is_in(self.table.column("stream").cast(pa.string()), pa.array(list(streams))))

    def fetch(self, streams: Any, start: int, end: int) -> pa.Table:
        t = self._of(streams)
        ns = t.column("time").cast(pa.int64())
        return t.filter(pc.and_(pc.greater(ns, start), pc.less_equal(ns, end)))

    def edge(self, streams: Any, at: int | None, last: bool) -> pa.Table:
        t = self._of(streams)
        if at is not None:
            t = t.filter(pc.less_equal(t.column("time").cast(pa.int64()), at))
        out = []
        for s in set(t.column("stream").cast(pa.string()).to_pylist()):
            part = t.filter(pc.equal(t.column("stream").cast(pa.string()), s)).sort_by("time")
            out.append(part.slice(part.num_rows - 1 if last else 0, 1))
        return pa.concat_tables(out) if out else t.slice(0, 0)

    def run(self, group: Any, ends: np.ndarray) -> dict[tuple[str, int], float]:
        out = compute(group, ends, self.fetch, lambda s, at: self.edge(s, at, True),
                      lambda s: self.edge(s, None, False))
        if out is None:
            return {}
        self.add(out)
        return {(s, t): v for s, t, v in zip(out.column("stream").cast(pa.string()).to_pylist(),
                                              out.column("time").cast(pa.int64()).to_pylist(),
                                              out.column("double").to_pylist(), strict=True)}


T0 = 1_700_000_000 * S // MIN * MIN  # "2:00 PM", minute aligned


def test_statetime_example_of_the_documentation() -> None:
    reg = registry(1)
    plan = MetricPlan.build(reg)
    group = next(g for g in plan.groups if g.prop.name == "Idle Time")
    mem = Memory()
    mem.add(pa.table(from_columns(["/m0/idle"] * 5, [T0, T0 + 30 * S, T0 + 75 * S, T0 + 165 * S, T0 + 240 * S],
                                  double=[0, 1, 1, 0, 0])))
    got = mem.run(group, group.window_ends(T0 - MIN, T0 + 4 * MIN))
    out = group.outputs[0]
    assert [got.get((out, T0 + k * MIN)) for k in range(5)] == [None, 30.0, 60.0, 45.0, 0.0]


def test_metrics_over_metrics_and_hierarchies_in_dependency_order() -> None:
    reg = registry(2)
    plan = MetricPlan.build(reg)
    names = [g.prop.name for g in plan.groups]
    assert names.index("Avg Temp") < names.index("Hot Share") and names.index("Avg Temp") < names.index("Line Avg")
    mem = Memory()
    mem.add(pa.table(from_columns(["/m0/temp", "/m0/temp", "/m1/temp"], [T0 + 10 * S, T0 + 20 * S, T0 + 30 * S],
                                  double=[10.0, 30.0, 50.0])))
    results: dict[tuple[str, int], float] = {}
    for g in plan.groups:
        results.update(mem.run(g, np.array([T0 + MIN])))
    by_name = {}
    for g in plan.groups:
        for asset, stream in zip(g.assets, g.outputs, strict=True):
            if (stream, T0 + MIN) in results:
                by_name[(g.prop.name, reg.asset(asset).name)] = results[(stream, T0 + MIN)]
    assert by_name[("Avg Temp", "M0")] == 20.0 and by_name[("Avg Temp", "M1")] == 50.0
    assert by_name[("Hot Share", "M0")] == pytest.approx(0.2)
    assert by_name[("Line Avg", "L1")] == 35.0  # the mean of the children's metric values


@pytest.mark.parametrize(("text", "ns"), [("1m", MIN), ("15m", 15 * MIN), ("1h", 60 * MIN), ("1d", 1440 * MIN),
                                          ("1w", 10080 * MIN), ("PT5M", 5 * MIN)])
def test_intervals(text: str, ns: int) -> None:
    assert parse_interval(text) == ns


@pytest.mark.parametrize("text", ["30s", "2w", "5x", "PT0S"])
def test_bad_intervals(text: str) -> None:
    with pytest.raises(ModelError, match="interval"):
        parse_interval(text)


def test_offsets_shift_window_ends() -> None:
    assert parse_offset("18h") == parse_offset("PT18H") == 18 * 60 * MIN
    assert parse_offset("00:03:00") == 3 * MIN
    # 18:00 PST every day is 02:00 UTC
    assert parse_offset("2021-07-23T18:00-08") % (1440 * MIN) == 2 * 60 * MIN


async def test_a_gateway_computes_metrics_for_late_data(tmp_path: Path, start_gateway: Any) -> None:
    models = tmp_path / "models"
    models.mkdir()
    reg_docs = {"assetModels": [MACHINE], "assets": [{"assetName": "M0", "assetModelId": "Machine",
                                                       "assetProperties": [{"id": pid("idle"), "alias": "/m0/idle"},
                                                                           {"id": pid("temp"), "alias": "/m0/temp"}]}]}
    (models / "plant.json").write_text(json.dumps(reg_docs))
    gw = await start_gateway(gateway_config(tmp_path, models=[{"path": str(models)}]))
    await eventually(lambda: gw.metrics.closed)  # the first pass has run
    now = time.time_ns() // MIN * MIN
    window = now - 5 * MIN  # a closed window: values for it are late
    await gw.ingest(from_columns(["/m0/temp", "/m0/temp"], [window - 30 * S, window - 10 * S], double=[4.0, 6.0]))
    m0 = gw.registry.assets()[0]
    avg = gw.registry.stream_of(m0.id, pid("Avg Temp"))

    def computed() -> list[float]:
        return gw.store.latest(avg).column("double").to_pylist()

    assert await eventually(computed) == [5.0]
    doubled = gw.registry.stream_of(m0.id, pid("Avg Doubled"))  # a transform over a metric
    assert await eventually(lambda: gw.store.latest(doubled).column("double").to_pylist()) == [10.0]
    assert gw.store.latest(avg).column("time").cast(pa.int64()).to_pylist() == [window]
    share = gw.registry.stream_of(m0.id, pid("Hot Share"))
    assert await eventually(lambda: gw.store.latest(share).column("double").to_pylist()) == [pytest.approx(0.05)]
    await gw.ingest(from_columns(["/m0/temp"], [window - 20 * S], double=[11.0]))  # later still: recomputed
    assert await eventually(lambda: computed() == [7.0])
    assert avg in gw.not_forwarded()


async def test_windows_marked_by_late_data_survive_a_restart(tmp_path: Path, start_gateway: Any) -> None:
    gw = await start_gateway(gateway_config(tmp_path))
    await eventually(lambda: gw.metrics.closed)
    key = gw.metrics.plan.groups[0].key
    gw.metrics.dirty[key] = {123 * MIN}
    await gw.metrics.tick()  # computes it (nothing to compute) and saves the state
    gw.metrics.dirty[key] = {456 * MIN}
    state = json.loads(gw.metrics.state_path.read_text())
    state["dirty"] = {key: [456 * MIN]}
    gw.metrics.state_path.write_text(json.dumps(state))
    runner = type(gw.metrics)(gw, gw.metrics.plan)
    runner._load()
    assert runner.dirty == {key: {456 * MIN}}
