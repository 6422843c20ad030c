"""The runtime drives a Modbus source: it alone sets the state that /health shows, through a reconnect."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from connectors.base import ConnectorState
from sitewise_edge.config import Config
from sitewise_edge.runtime import Gateway
from sitewise_edge.samples import Quality
from sitewise_edge.simulators.modbus import ModbusSimulator, example_tags
from tests.conftest import eventually, gateway_config
from tests.modbus.servers import Unit, hang_until, tcp_server
from tests.test_connectors import health


def modbus_gateway(tmp_path: Path, port: int) -> Config:
    source = {"name": "plc", "type": "modbus", "host": "127.0.0.1", "port": port, "interval": "100ms",
              "timeout": "1s", "tags": example_tags()[:3]}
    return gateway_config(tmp_path, sources=[source])


async def test_the_runtime_sets_the_state_through_a_reconnect(
    tmp_path: Path, simulator: ModbusSimulator, start_gateway: Callable[[Config], Any]
) -> None:
    cfg = modbus_gateway(tmp_path, simulator.port)
    assert Gateway(cfg).connectors[0].status.state is ConnectorState.STARTING
    gw: Gateway = await start_gateway(cfg)
    status = gw.connectors[0].status

    async def shown() -> dict[str, Any]:
        source: dict[str, Any] = (await health(gw))["sources"]["plc"]
        return source

    assert (await eventually(lambda: status.batches_read > 0 and shown()))["state"] == "connected"
    await simulator.stop()
    await eventually(lambda: status.state is ConnectorState.ERROR)
    assert (await shown())["state"] == "error" and "plc" in (await shown())["lastError"]
    await simulator.start()  # the same port: the runtime reconnects with back-off
    await eventually(lambda: status.state is ConnectorState.CONNECTED and status.reconnects >= 1)
    assert (await shown())["valuesDropped"] == 0  # the Modbus connector drops nothing
    await gw.stop()
    assert status.state is ConnectorState.STOPPED


async def test_a_hung_device_is_shown_down_in_health_while_a_fast_one_delivers(
    tmp_path: Path, start_gateway: Callable[[Config], Any]
) -> None:
    """Two sources in one gateway: a device that accepts the connection and never answers, and a fast one."""
    release = asyncio.Event()
    async with tcp_server(Unit(holding={0: [42]})) as fast_port, \
            tcp_server(Unit(holding={0: [1]}, action=hang_until(release))) as hung_port:
        sources = [
            {"name": "fast", "type": "modbus", "host": "127.0.0.1", "port": fast_port, "interval": "50ms",
             "tags": [{"alias": "/fast/value", "address": 40001}]},
            {"name": "hung", "type": "modbus", "host": "127.0.0.1", "port": hung_port, "interval": "50ms",
             "timeout": "200ms", "retries": 0, "devices": [{"name": "press", "unit_id": 1,
                                                              "tags": [{"alias": "/hung/value", "address": 40001}]}]},
        ]
        gw: Gateway = await start_gateway(gateway_config(tmp_path, sources=sources))
        fast, hung = (c.status for c in gw.connectors)
        try:
            await eventually(lambda: hung.reconnects >= 1 and fast.batches_read >= 20)
            shown = (await health(gw))["sources"]
            assert shown["fast"]["state"] == "connected"
            assert shown["fast"]["devices"]["fast"]["connected"] is True
            assert shown["fast"]["devices"]["fast"]["lastGoodPoll"] is not None
            assert shown["hung"]["state"] == "error"  # no longer "connected" while delivering nothing
            assert "no device answers on 127.0.0.1" in shown["hung"]["lastError"]
            press = shown["hung"]["devices"]["press"]
            assert press["connected"] is False and press["lastGoodPoll"] is None
            assert press["errors"]["timeout"] >= 1
            assert "no answer within 0.2 s" in press["lastError"]
            latest = {r["stream"]: r for r in gw.store.latest_all().drop_columns(["time"]).to_pylist()}
            assert latest["/hung/value"]["quality"] == Quality.BAD  # the hung device's tag is BAD, not stale GOOD
            assert latest["/fast/value"]["integer"] == 42
        finally:
            release.set()
