"""Transforms computed at the edge: SiteWise's trigger semantics over batches, and through a gateway."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from asset_models.documents import build_catalog
from asset_models.registry import Registry
from asset_models.transforms import TransformEngine, TransformPlan
from sitewise_edge.errors import ModelError
from sitewise_edge.samples import from_columns
from tests.conftest import ROOT, eventually, gateway_config, sitewise_client

T9 = 1_700_000_000 * 10**9  # "09:00"
MIN5 = 300 * 10**9


def pid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"test-property-{name}"))


def model(*transforms: tuple[str, str, dict[str, str], str], attributes: dict[str, str] | None = None) -> dict:
    props: list[dict[str, Any]] = [
        {"id": pid("x"), "name": "x", "dataType": "DOUBLE", "type": {"measurement": {}}},
        {"id": pid("y"), "name": "y", "dataType": "DOUBLE", "type": {"measurement": {}}},
        {"id": pid("s"), "name": "s", "dataType": "STRING", "type": {"measurement": {}}},
    ]
    for name, default in (attributes or {}).items():
        props.append({"name": name, "dataType": "DOUBLE", "type": {"attribute": {"defaultValue": default}}})
    for name, expression, variables, data_type in transforms:
        props.append({"name": name, "dataType": data_type, "type": {"transform": {
            "expression": expression,
            "variables": [{"name": v, "value": {"propertyId": p}} for v, p in variables.items()]}}})
    return {"assetModelName": "M", "assetModelProperties": props}


def registry_for(m: dict, assets: int = 1) -> Registry:
    docs: list[tuple[str, Any]] = [("m.json", m)]
    for i in range(assets):
        docs.append((f"a{i}.json", {"assetName": f"A{i}", "assetModelId": "M", "assetProperties": [
            {"id": pid(p), "alias": f"/a{i}/{p}"} for p in ("x", "y", "s")]}))
    return Registry(build_catalog(docs))


def rows(table: pa.Table | None) -> list[tuple[int, Any]]:
    if table is None:
        return []
    col = "string" if table.column("string").null_count < table.num_rows else "double"
    return list(zip(table.column("time").cast(pa.int64()).to_pylist(), table.column(col).to_pylist(), strict=True))


def feed(engine: TransformEngine, stream: str, t: int, value: float, quality: int = 0) -> list[tuple[int, Any]]:
    return rows(engine.process(from_columns([stream], [t], double=[value], quality=[quality])))


def test_pretrigger_scenario_of_the_documentation() -> None:
    reg = registry_for(model(("z", "x + y + pretrigger(y)", {"x": "x", "y": "y"}, "DOUBLE")))
    e = TransformEngine(TransformPlan.build(reg))
    assert feed(e, "/a0/x", T9, 10) == []  # y has no value yet
    assert feed(e, "/a0/y", T9, 1) == []  # y has no value before 09:00
    # x of 09:05 before y of 09:05: 22 = 20 + 1 + 1, then y's point replaces it with 23 (same timestamp)
    assert feed(e, "/a0/x", T9 + MIN5, 20) == [(T9 + MIN5, 22.0)]
    assert feed(e, "/a0/y", T9 + MIN5, 2) == [(T9 + MIN5, 23.0)]
    assert feed(e, "/a0/y", T9 + 2 * MIN5, 3) == [(T9 + 2 * MIN5, 25.0)]
    assert feed(e, "/a0/x", T9 + 3 * MIN5, 30) == [(T9 + 3 * MIN5, 36.0)]


def test_when_0905_arrives_before_0900_z_is_not_computed_at_0905() -> None:
    reg = registry_for(model(("z", "x + y + pretrigger(y)", {"x": "x", "y": "y"}, "DOUBLE")))
    e = TransformEngine(TransformPlan.build(reg))
    both = lambda t, x, y: rows(e.process(from_columns(["/a0/x", "/a0/y"], [t, t], double=[x, y])))  # noqa: E731
    assert both(T9 + MIN5, 20, 2) == []
    assert both(T9, 10, 1) == []


def test_one_output_per_good_trigger_using_latest_values_at_or_before() -> None:
    reg = registry_for(model(("sum", "x + y", {"x": "x", "y": "y"}, "DOUBLE")), assets=3)
    e = TransformEngine(TransformPlan.build(reg))
    e.process(from_columns(["/a0/y", "/a1/y", "/a2/y"], [T9, T9, T9 + 100], double=[1.0, 2.0, 3.0]))
    out = e.process(from_columns(["/a0/x", "/a1/x", "/a2/x", "/a0/x"], [T9 + 10, T9 + 10, T9 + 10, T9 + 20],
                                 double=[10.0, 20.0, 30.0, 40.0], quality=[0, 0, 0, 1]))
    got = sorted(zip(out.column("stream").cast(pa.string()).to_pylist(), out.column("double").to_pylist(),
                     strict=True))
    assert len(got) == 2  # a2's y is later than its x; a0's BAD point triggers nothing
    assert sorted(v for _, v in got) == [11.0, 22.0]


def test_chains_attributes_and_string_outputs() -> None:
    reg = registry_for(model(
        ("f", "9/5 * x + 32", {"x": "x"}, "DOUBLE"),
        ("hot", "if(gt(f, limit), 'HOT', 'ok')", {"f": "f", "limit": "limit"}, "STRING"),
        attributes={"limit": "200"},
    ))
    plan = TransformPlan.build(reg)
    assert [g.prop.name for g in plan.groups] == ["f", "hot"]  # dependency order
    out = TransformEngine(plan).process(from_columns(["/a0/x", "/a0/x"], [T9, T9 + 1], double=[100.0, 20.0]))
    by_time: dict[int, list[Any]] = {}
    for t, s, d in zip(out.column("time").cast(pa.int64()).to_pylist(), out.column("string").to_pylist(),
                       out.column("double").to_pylist(), strict=True):
        by_time.setdefault(t, []).append(s if s is not None else d)
    assert sorted(by_time[T9], key=str) == [212.0, "HOT"]
    assert sorted(by_time[T9 + 1], key=str) == [68.0, "ok"]


def test_no_output_cases_produce_no_rows() -> None:
    reg = registry_for(model(("inv", "1 / x", {"x": "x"}, "DOUBLE"), ("keep", "if(gt(x, 5), x, none)", {"x": "x"},
                                                                        "DOUBLE")))
    out = TransformEngine(TransformPlan.build(reg)).process(from_columns(["/a0/x"] * 3, [T9, T9 + 1, T9 + 2],
                                                                         double=[0.0, 2.0, 10.0]))
    assert sorted(rows(out)) == [(T9 + 1, 0.5), (T9 + 2, 0.1), (T9 + 2, 10.0)]


@pytest.mark.parametrize(
    ("transform", "message"),
    [
        (("z", "x +* 2", {"x": "x"}, "DOUBLE"), "transform 'z'"),
        (("z", "nope(x)", {"x": "x"}, "DOUBLE"), "unknown function 'nope'"),
        (("z", "x + q", {"x": "x"}, "DOUBLE"), "q"),
        (("z", "limit * 2", {"limit": "limit"}, "DOUBLE"), "not an attribute"),
    ],
    ids=["syntax", "unknown-function", "unknown-variable", "attributes-only"],
)
def test_bad_transforms_are_refused_with_model_property_and_position(transform: tuple, message: str) -> None:
    with pytest.raises(ModelError, match=message) as err:
        TransformPlan.build(registry_for(model(transform, attributes={"limit": "1"})))
    assert "model 'M'" in str(err.value)


def test_cycles_are_refused() -> None:
    m = model(("a", "b + 1", {"b": "b"}, "DOUBLE"), ("b", "a + 1", {"a": "a"}, "DOUBLE"))
    with pytest.raises(ModelError, match="cycle"):
        TransformPlan.build(registry_for(m))


async def test_a_gateway_computes_stores_and_serves_transforms(tmp_path: Path, start_gateway: Any) -> None:
    gw = await start_gateway(gateway_config(tmp_path))
    client = sitewise_client(gw.api_port)
    now = int(time.time())
    client_put = client.batch_put_asset_property_value
    await asyncio.to_thread(client_put, entries=[{"entryId": "t", "propertyAlias": "/plant1/line1/press1/temperature",
                                                  "propertyValues": [{"value": {"doubleValue": 100.0},
                                                                      "timestamp": {"timeInSeconds": now}}]}])
    press1 = next(a for a in gw.registry.assets() if a.name == "Press1")
    model_ = gw.registry.model(press1.model_id)
    prop = next(p for p in model_.properties if p.name == "Temperature F")
    value = await asyncio.to_thread(client.get_asset_property_value, assetId=press1.id, propertyId=prop.id)
    assert value["propertyValue"]["value"] == {"doubleValue": 212.0}
    assert value["propertyValue"]["timestamp"]["timeInSeconds"] == now
    assert value["propertyValue"]["quality"] == "GOOD"
    assert gw.registry.stream_of(press1.id, prop.id) in gw.not_forwarded()  # SiteWise computes it itself
    await eventually(lambda: gw.status()["store"]["valuesAccepted"] >= 2)  # the value and its transform


def test_validate_reports_a_bad_expression(tmp_path: Path) -> None:
    bad = model(("z", "9/5 * foo(x) + 32", {"x": "x"}, "DOUBLE"))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.json").write_text(json.dumps(bad))
    cfg = tmp_path / "gw.yaml"
    cfg.write_text("models: [{path: models/}]\n")
    out = subprocess.run([sys.executable, "-m", "sitewise_edge", "validate", "-c", str(cfg)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "transform 'z'" in out.stderr and "unknown function 'foo'" in out.stderr and "^" in out.stderr


def test_a_late_row_in_the_batch_does_not_hide_a_newer_remembered_value() -> None:
    e = TransformEngine(TransformPlan.build(registry_for(model(("sum", "x + y", {"x": "x", "y": "y"}, "DOUBLE")))))
    e.process(from_columns(["/a0/y"], [T9 + 100], double=[100.0]))
    out = e.process(from_columns(["/a0/y", "/a0/x"], [T9 + 50, T9 + 120], double=[50.0, 1.0]))
    assert (T9 + 120, 101.0) in rows(out)


def test_a_repeated_timestamp_keeps_the_value_before_it_for_pretrigger() -> None:
    reg = registry_for(model(("z", "pretrigger(y)", {"x": "x", "y": "y"}, "DOUBLE")))
    e = TransformEngine(TransformPlan.build(reg))
    e.process(from_columns(["/a0/y", "/a0/y"], [T9 + 80, T9 + 90], double=[80.0, 90.0]))
    e.process(from_columns(["/a0/y", "/a0/y"], [T9 + 100, T9 + 100], double=[100.0, 101.0]))
    assert rows(e.process(from_columns(["/a0/x"], [T9 + 100], double=[1.0]))) == [(T9 + 100, 90.0)]


def test_out_of_order_triggers_read_the_history_in_one_pass() -> None:
    e = TransformEngine(TransformPlan.build(registry_for(model(("sum", "x + y", {"x": "x", "y": "y"}, "DOUBLE")))))
    n = 50_000
    e.process(from_columns(["/a0/y"] * n, T9 + np.arange(n) * 10**9, double=np.arange(n, dtype=np.float64)))
    started = time.perf_counter()
    late = e.process(from_columns(["/a0/x"] * 1000, T9 + np.arange(1000) * 10**9 + 1, double=np.zeros(1000)))
    assert time.perf_counter() - started < 2.0  # was seconds per batch: one scan of the history per trigger
    assert [v for _, v in rows(late)][:3] == [0.0, 1.0, 2.0]


def test_state_can_be_seeded_from_the_latest_values() -> None:
    e = TransformEngine(TransformPlan.build(registry_for(model(("sum", "x + y", {"x": "x", "y": "y"}, "DOUBLE")))))
    e.seed(pa.table(from_columns(["/a0/y"], [T9], double=[5.0])))
    assert rows(e.process(from_columns(["/a0/x"], [T9 + 1], double=[1.0]))) == [(T9 + 1, 6.0)]
