"""``sitewise-edge validate`` reports every problem in one run (issue 14): configuration, models,
expressions and aliases together, each naming where it is."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import ROOT


def pid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def model(transforms: dict[str, str]) -> dict[str, Any]:
    props: list[dict[str, Any]] = [{"id": pid("x"), "name": "x", "dataType": "DOUBLE", "type": {"measurement": {}}}]
    for name, expression in transforms.items():
        props.append({"id": pid(name), "name": name, "dataType": "DOUBLE", "type": {"transform": {
            "expression": expression, "variables": [{"name": "x", "value": {"propertyId": pid("x")}}]}}})
    return {"assetModelId": pid("M"), "assetModelName": "M", "assetModelProperties": props}


def validate(tmp_path: Path, config: dict[str, Any], transforms: dict[str, str]) -> subprocess.CompletedProcess[str]:
    (tmp_path / "models").mkdir(exist_ok=True)
    (tmp_path / "models" / "m.json").write_text(json.dumps(model(transforms)))
    (tmp_path / "models" / "a.json").write_text(json.dumps({
        "assetName": "Press", "assetModelId": pid("M"), "assetProperties": [
            {"id": pid("x"), "alias": "/press/x"}, *[{"id": pid(n), "alias": f"/press/{n}"} for n in transforms]]}))
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump({"gateway": {"data_dir": str(tmp_path / "data")}, "models": [{"path": "models/"}],
                                    **config}))
    return subprocess.run([sys.executable, "-m", "sitewise_edge", "validate", "-c", str(path)], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)


def source(*aliases: str) -> dict[str, Any]:
    return {"name": "press", "type": "opcua", "endpoint": "opc.tcp://127.0.0.1:4840",
            "nodes": [{"node_id": f"ns=2;s={a}", "alias": a} for a in aliases]}


def test_configuration_model_and_expression_problems_in_one_run(tmp_path: Path) -> None:
    out = validate(tmp_path, {"storage": {"retention": "forever"}, "api": {"port": 99999}},
                   {"f": "9/5 * foo(x) + 32", "g": "x +", "ok": "x * 2"})
    assert out.returncode == 2
    err = out.stderr
    assert "storage.retention: expected a duration" in err
    assert "api.port: Input should be less than or equal to 65535" in err
    assert "transform 'f'" in err and "unknown function 'foo'" in err
    assert "transform 'g'" in err
    assert "transform 'ok'" not in err
    assert err.splitlines()[-1] == "4 problem(s): nothing was started"
    assert "Traceback" not in err


def test_a_source_writing_a_computed_property_is_an_alias_problem(tmp_path: Path) -> None:
    out = validate(tmp_path, {"sources": [source("/press/x", "/press/double", "/press/free")]},
                   {"double": "x * 2"})
    assert out.returncode == 2
    assert ("sources[0].nodes[1].alias: '/press/double' is the alias of transform 'double' of asset 'Press': a "
            "source writes measurements only") in out.stderr
    assert out.stderr.splitlines()[-1] == "1 problem(s): nothing was started"
    out = validate(tmp_path, {"sources": [source("/press/x", "/press/free")]}, {"double": "x * 2"})
    assert out.returncode == 0, out.stderr
    assert "note: 1 source aliases belong to no asset property" in out.stderr and out.stdout.endswith("ok\n")
