"""The whole path: simulators -> gateway -> store -> API (boto3) -> SiteWise-compatible endpoint.

Runs the shipped example configurations (examples/gateway.yaml and examples/cloud.yaml) with the
ports of this test's simulators given through the environment, exactly as the demo does.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from sitewise_edge.clock import NS_PER_S, SystemClock
from sitewise_edge.config import load_config
from sitewise_edge.runtime import Gateway
from sitewise_edge.simulators.modbus import ModbusSimulator
from sitewise_edge.simulators.opcua import OpcUaSimulator
from sitewise_edge.simulators.plant import MACHINES, running_seconds
from tests.conftest import (
    EXAMPLES,
    ROOT,
    ended,
    eventually,
    free_port,
    gateway_config,
    gateway_starter,
    sitewise_client,
)

OPCUA_ALIASES = {  # alias -> the value member SiteWise must carry
    "/plant1/line1/press1/temperature": "doubleValue",
    "/plant1/line1/press1/state": "integerValue",
    "/plant1/line1/press1/status": "stringValue",
    "/plant1/line1/oven1/goodcount": "integerValue",
}
MODBUS_ALIASES = {
    "/plant1/line1/press1/speed": "doubleValue",
    "/plant1/line1/press2/running": "booleanValue",
    "/plant1/line1/press1/plc/pressure": "doubleValue",  # a data stream with no asset
}


shared_loop = pytest.mark.asyncio(loop_scope="module")  # the simulators are shared by the module's tests


@pytest_asyncio.fixture(loop_scope="module")
async def start_gateway() -> AsyncIterator[Any]:
    async for start in gateway_starter():
        yield start


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def simulators() -> AsyncIterator[tuple[OpcUaSimulator, ModbusSimulator]]:
    opcua = OpcUaSimulator(port=0)
    modbus = ModbusSimulator(port=0)
    await opcua.start()
    await modbus.start()
    yield opcua, modbus
    await modbus.stop()
    await opcua.stop()


def example_env(tmp_path: Path, opcua: OpcUaSimulator, modbus: ModbusSimulator, cloud_port: int,
                gateway_port: int = 0) -> dict[str, str]:
    return {
        "OPCUA_ENDPOINT": opcua.endpoint,
        "MODBUS_HOST": "127.0.0.1",
        "MODBUS_PORT": str(modbus.port),
        "CLOUD_PORT": str(cloud_port),
        "CLOUD_URL": f"http://127.0.0.1:{cloud_port}",
        "GATEWAY_PORT": str(gateway_port),
        "GATEWAY_DATA_DIR": str(tmp_path / "gateway"),
        "CLOUD_DATA_DIR": str(tmp_path / "cloud"),
    }


def call(client: Any, op: str, **kwargs: Any) -> Any:
    return asyncio.to_thread(getattr(client, op), **kwargs)


@shared_loop
async def test_values_from_both_protocols_travel_the_whole_way(
    tmp_path: Path, simulators: Any, start_gateway: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    opcua, modbus = simulators
    cloud_port = free_port()
    env = example_env(tmp_path, opcua, modbus, cloud_port)
    cloud = await start_gateway(load_config(EXAMPLES / "cloud.yaml", env))
    started = time.time()
    gateway = await start_gateway(load_config(EXAMPLES / "gateway.yaml", env))
    expected = {**OPCUA_ALIASES, **MODBUS_ALIASES}

    async def all_forwarded() -> bool:
        table = await cloud.query(lambda r: r.latest_all())
        return set(expected) <= set(table.column("stream").cast("string").to_pylist())

    await eventually(all_forwarded, within=30)

    edge_api = sitewise_client(gateway.api_port)
    cloud_api = sitewise_client(cloud.api_port)
    for alias, member in expected.items():
        at_edge = (await call(edge_api, "get_asset_property_value", propertyAlias=alias))["propertyValue"]
        assert list(at_edge["value"]) == [member], alias
        assert at_edge["quality"] == "GOOD"
        stamp = at_edge["timestamp"]["timeInSeconds"] + at_edge["timestamp"]["offsetInNanos"] / 1e9
        assert started - 5 < stamp < time.time() + 1, alias  # source or poll time, in UTC
        history = await call(cloud_api, "get_asset_property_value_history", propertyAlias=alias,
                             startDate=int(started) - 10, endDate=int(time.time()) + 10)
        values = history["assetPropertyValueHistory"]
        assert values and all(list(v["value"]) == [member] for v in values), alias
        # what the endpoint has, the gateway has too, with the same timestamps
        edge_history = await call(edge_api, "get_asset_property_value_history", propertyAlias=alias,
                                  startDate=int(started) - 10, endDate=int(time.time()) + 10)
        edge_stamps = {(v["timestamp"]["timeInSeconds"], v["timestamp"]["offsetInNanos"])
                       for v in edge_history["assetPropertyValueHistory"]}
        assert {(v["timestamp"]["timeInSeconds"], v["timestamp"]["offsetInNanos"]) for v in values} <= edge_stamps

    # an asset property read by id at the endpoint, as a SiteWise user would
    prop = cloud.registry.property_by_alias("/plant1/line1/press1/temperature")
    by_id = await call(cloud_api, "get_asset_property_value", assetId=prop.asset_id, propertyId=prop.property_id)
    assert by_id["propertyValue"]["value"]["doubleValue"] > 0
    health = gateway.status()
    assert health["sources"]["line1-opcua"]["state"] == "connected"
    assert health["sources"]["line1-plc"]["state"] == "connected"
    assert health["store"]["valuesRejected"] == 0
    assert health["publishers"]["cloud"]["valuesRejected"] == 0


@shared_loop
async def test_unreachable_devices_give_clear_errors_while_the_rest_runs(
    tmp_path: Path, simulators: Any, start_gateway: Any
) -> None:
    opcua, modbus = simulators
    dead = free_port()
    cfg = gateway_config(tmp_path, models=[], sources=[
        {"name": "good-plc", "type": "modbus", "host": "127.0.0.1", "port": modbus.port, "interval": "200ms",
         "tags": [{"alias": "/ok/speed", "table": "holding", "address": 100, "type": "float32"}]},
        {"name": "dead-plc", "type": "modbus", "host": "127.0.0.1", "port": dead, "timeout": "1s",
         "tags": [{"alias": "/dead/speed", "table": "holding", "address": 100, "type": "float32"}]},
        {"name": "dead-opcua", "type": "opcua", "endpoint": f"opc.tcp://127.0.0.1:{dead}", "timeout": "1s",
         "nodes": [{"node_id": "ns=2;s=Press1.Temperature", "alias": "/dead/temp"}]},
        {"name": "missing-node", "type": "opcua", "endpoint": opcua.endpoint, "nodes": [
            {"node_id": "ns=2;s=Press9.Temperature", "alias": "/missing/temp"},
            {"node_id": "ns=2;s=Press1.Temperature", "alias": "/present/temp"}]},
    ])
    gw = await start_gateway(cfg)

    def settled() -> bool:
        s = gw.status()["sources"]
        return (s["dead-plc"]["state"] == "error" and s["dead-opcua"]["state"] == "error"
                and s["good-plc"]["valuesRead"] >= 3 and s["missing-node"]["valuesRead"] >= 2)

    await eventually(settled, within=20)
    sources = gw.status()["sources"]
    assert str(dead) in sources["dead-plc"]["lastError"]
    assert f"opc.tcp://127.0.0.1:{dead}" in sources["dead-opcua"]["lastError"]
    assert "Press9" in sources["missing-node"]["tagErrors"]["/missing/temp"]
    api = sitewise_client(gw.api_port)
    assert (await call(api, "get_asset_property_value", propertyAlias="/ok/speed"))["propertyValue"]
    present = (await call(api, "get_asset_property_value", propertyAlias="/present/temp"))["propertyValue"]
    assert present["quality"] == "GOOD"
    missing = (await call(api, "get_asset_property_value", propertyAlias="/missing/temp"))["propertyValue"]
    assert missing["quality"] == "BAD" and "nullValue" in missing["value"]


def test_run_command_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    cfg = tmp_path / "gateway.yaml"
    port = free_port()
    cfg.write_text(f"gateway: {{name: cli, data_dir: {tmp_path / 'data'}}}\napi: {{port: {port}}}\n")
    proc = subprocess.Popen([sys.executable, "-m", "sitewise_edge", "run", "-c", str(cfg)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == f"Dashboard: http://127.0.0.1:{port}/"
        client = sitewise_client(port)
        now = int(time.time())
        client.batch_put_asset_property_value(entries=[{"entryId": "a", "propertyAlias": "/cli/x", "propertyValues": [
            {"value": {"doubleValue": 4.5}, "timestamp": {"timeInSeconds": now}}]}])
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert ended(proc) == 0
        assert time.monotonic() - started < 5
    finally:
        ended(proc, 0)
    # what was accepted is there after a restart
    proc = subprocess.Popen([sys.executable, "-m", "sitewise_edge", "run", "-c", str(cfg)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().startswith("Dashboard:")
        value = sitewise_client(port).get_asset_property_value(propertyAlias="/cli/x")["propertyValue"]
        assert value["value"] == {"doubleValue": 4.5}
    finally:
        proc.send_signal(signal.SIGINT)
        assert ended(proc) == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("sources: [{name: x, type: modbus, host: h, tags: [{alias: /a, table: holding, address: 1, type: int33}]}]",
         "sources[0].tags[0].type: unknown data type 'int33'"),
        ("api: {port: 8080\n", "not valid YAML"),
        ("models: [{path: /no/such/models}]", "models"),
    ],
    ids=["bad-type", "bad-yaml", "missing-models"],
)
def test_run_command_refuses_bad_input_cleanly(tmp_path: Path, content: str, message: str) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(content)
    out = subprocess.run([sys.executable, "-m", "sitewise_edge", "run", "-c", str(cfg)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr


class AheadClock(SystemClock):
    """The machine's wall clock, moved ahead by ``ahead_ns`` (windows close early, nothing waits)."""

    ahead_ns = 0

    def time_ns(self) -> int:
        return super().time_ns() + self.ahead_ns

    def time(self) -> float:
        return self.time_ns() / NS_PER_S


@shared_loop
async def test_oee_from_the_simulators_through_the_api(tmp_path: Path, simulators: Any) -> None:
    """The demo plant's OEE model (the SiteWise user guide's, reference §6.9) computed from live simulator data."""
    opcua, modbus = simulators
    env = example_env(tmp_path, opcua, modbus, free_port())
    clock = AheadClock()
    gw = Gateway(load_config(EXAMPLES / "gateway.yaml", env), clock=clock)
    gw.publishers = []  # no endpoint in this test
    await gw.start()
    try:
        await eventually(lambda: gw.metrics.closed, within=20)  # the first metric pass has run
        await eventually(lambda: gw.status()["sources"]["line1-opcua"]["valuesRead"] > 40, within=20)
        clock.ahead_ns = 2 * 60 * NS_PER_S  # two minutes later: the window holding these values has closed
        await gw.metrics.tick()
        api = sitewise_client(gw.api_port)
        machines = [a for a in gw.registry.assets() if a.name in ("Press1", "Press2", "Oven1")]
        model = gw.registry.model(machines[0].model_id)
        prop = {p.name: p.id for p in model.properties}
        made = 0.0
        for machine in machines:
            availability = await call(api, "get_asset_property_value", assetId=machine.id,
                                      propertyId=prop["Availability"])
            assert 0.0 <= availability["propertyValue"]["value"]["doubleValue"] <= 1.0
            parts = (await call(api, "get_asset_property_value", assetId=machine.id,
                                propertyId=prop["Successes"]))["propertyValue"]
            # the plant makes parts only while a machine runs: its window's count follows its state then
            at = parts["timestamp"]["timeInSeconds"]
            i = MACHINES.index(machine.name)
            ran = running_seconds(i, at - 60, at), running_seconds(i, at, at + 60)
            if min(ran) > 0:
                assert parts["value"]["doubleValue"] > 0, (machine.name, at)
            elif max(ran) == 0:
                assert parts["value"]["doubleValue"] == 0, (machine.name, at)
            made += parts["value"]["doubleValue"]
        line = next(a for a in gw.registry.assets() if a.name == "Line 1")
        line_prop = {p.name: p.id for p in gw.registry.model(line.model_id).properties}
        total = await call(api, "get_asset_property_value", assetId=line.id, propertyId=line_prop["Line Parts"])
        assert total["propertyValue"]["timestamp"]["timeInSeconds"] == at  # the same window, one level up
        assert (total["propertyValue"]["value"]["doubleValue"] > 0) == (made > 0)
    finally:
        await gw.stop()
