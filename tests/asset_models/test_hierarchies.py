"""Hierarchies carried by exported assets: a wind farm whose ``assetHierarchies`` list its turbines.

CloudFormation's ``AWS::IoTSiteWise::Asset`` and SiteWise's bulk export write a parent's children into
its ``assetHierarchies`` (``childAssetId``, or ``childAssetExternalId``); such a site must load with its
children, its hierarchy metric must compute, and what cannot be resolved is refused, naming it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from asset_models.documents import build_catalog
from asset_models.errors import ModelInvalid
from asset_models.metrics import MetricPlan
from asset_models.registry import Registry
from sitewise_edge import cli
from sitewise_edge.samples import from_columns
from tests.asset_models.test_metrics_runtime import MIN, T0, Memory, metric, pid

S = 10**9
TURBINES = pid("hierarchy-turbines")
TURBINE = {"assetModelId": pid("model-turbine"), "assetModelName": "Turbine", "assetModelProperties": [
    {"id": pid("power"), "name": "Power", "dataType": "DOUBLE", "unit": "kW", "type": {"measurement": {}}},
    metric("Avg Power", "avg(p)", {"p": pid("power")})]}
FARM = {"assetModelId": pid("model-farm"), "assetModelName": "Farm",
        "assetModelHierarchies": [{"id": TURBINES, "name": "Turbines", "childAssetModelId": pid("model-turbine")}],
        "assetModelProperties": [metric("Farm Power", "sum(p)", {"p": {"propertyId": pid("Avg Power"),
                                                                      "hierarchyId": TURBINES}})]}


def turbine(i: int) -> dict[str, Any]:
    return {"assetId": pid(f"turbine-{i}"), "assetName": f"T{i}", "assetModelId": pid("model-turbine"),
            "assetExternalId": f"turbine-{i}",
            "assetProperties": [{"id": pid("power"), "name": "Power", "alias": f"/farm/t{i}/power"}]}


def farm(*hierarchies: dict[str, Any]) -> dict[str, Any]:
    return {"assetId": pid("farm"), "assetName": "North Farm", "assetModelId": pid("model-farm"),
            "assetHierarchies": list(hierarchies)}


def site(*hierarchies: dict[str, Any]) -> list[tuple[str, Any]]:
    return [("turbine-model.json", TURBINE), ("farm-model.json", FARM), ("t1.json", turbine(1)),
            ("t2.json", turbine(2)), ("farm.json", farm(*hierarchies))]


def test_an_exported_farm_loads_with_its_turbines_and_its_hierarchy_metric_computes() -> None:
    registry = Registry(build_catalog(site(
        {"id": TURBINES, "name": "Turbines", "childAssetId": pid("turbine-1")},
        {"externalId": "no-such-ext", "name": "Turbines", "childAssetExternalId": "turbine-2"})))
    assert [a.name for a in registry.children(pid("farm"))] == ["T1", "T2"]
    assert registry.parent(pid("turbine-2")).name == "North Farm"  # type: ignore[union-attr]

    plan = MetricPlan.build(registry)
    mem = Memory()
    mem.add(pa.table(from_columns(["/farm/t1/power", "/farm/t2/power", "/farm/t2/power"],
                                  [T0 + 10 * S, T0 + 20 * S, T0 + 30 * S], double=[100.0, 200.0, 400.0])))
    results: dict[tuple[str, int], float] = {}
    for group in plan.groups:
        results.update(mem.run(group, np.array([T0 + MIN])))
    farm_power = next(g for g in plan.groups if g.prop.name == "Farm Power")
    assert results[(farm_power.outputs[0], T0 + MIN)] == 400.0  # 100 + avg(200, 400)


def test_the_same_link_in_associations_and_in_the_asset_is_one_link() -> None:
    docs = site({"id": TURBINES, "childAssetId": pid("turbine-1")})
    docs.append(("associations.json", {"associations": [
        {"parentAssetId": pid("farm"), "hierarchyId": TURBINES, "childAssetId": pid("turbine-1")}]}))
    assert len(build_catalog(docs).associations) == 1


@pytest.mark.parametrize(("hierarchy", "expected"), [
    ({"id": TURBINES, "childAssetId": pid("turbine-9")},
     f"farm.json: asset 'North Farm' hierarchy 'Turbines': no such asset '{pid('turbine-9')}'"),
    ({"name": "Turbines", "childAssetExternalId": "turbine-9"},
     "farm.json: asset 'North Farm' hierarchy 'Turbines': no such asset 'externalId:turbine-9'"),
    ({"name": "Substations", "childAssetId": pid("turbine-1")},
     "farm.json: asset 'North Farm' hierarchy 'Substations': no such hierarchy in model 'Farm'"),
    ({"id": TURBINES, "childAssetId": pid("farm")},
     "asset 'North Farm' is a 'Farm' but hierarchy 'Turbines' of asset 'North Farm' holds 'Turbine' assets"),
    ("Turbines", "farm.json: asset 'North Farm' hierarchy #1: must be an object"),
], ids=["unknown-child", "unknown-external-child", "unknown-hierarchy", "wrong-model", "not-an-object"])
def test_what_cannot_be_resolved_is_refused_naming_it(hierarchy: Any, expected: str) -> None:
    with pytest.raises(ModelInvalid) as info:
        build_catalog(site(hierarchy))
    assert any(expected in line for line in info.value.problems), info.value.problems


def test_validate_reports_an_unresolvable_child(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = tmp_path / "models"
    models.mkdir()
    for name, doc in site({"id": TURBINES, "childAssetId": pid("turbine-9")}):
        (models / name).write_text(json.dumps(doc))
    config = tmp_path / "gateway.yaml"
    config.write_text(f"gateway: {{name: farm, data_dir: {tmp_path / 'data'}}}\nmodels: [{{path: {models}}}]\n")
    assert cli.main(["validate", "-c", str(config)]) == 2  # a configuration that does not load
    err = capsys.readouterr().err
    assert "asset 'North Farm' hierarchy 'Turbines': no such asset" in err and "Traceback" not in err
    (models / "farm.json").write_text(json.dumps(farm({"id": TURBINES, "childAssetId": pid("turbine-1")})))
    assert cli.main(["validate", "-c", str(config)]) == 0
    out = capsys.readouterr()
    assert out.out.strip().endswith("ok") and "holds no child asset" not in out.err
    (models / "farm.json").write_text(json.dumps(farm()))  # the export lost its links: loads, but says so
    assert cli.main(["validate", "-c", str(config)]) == 0
    assert ("note: asset 'North Farm' property 'Farm Power' reads hierarchy 'Turbines', which holds no child "
            "asset: it computes nothing") in capsys.readouterr().err
