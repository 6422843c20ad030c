"""The runtime drives a Modbus source: it alone sets the state that /health shows, through a reconnect."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from connectors.base import ConnectorState
from sitewise_edge.config import Config
from sitewise_edge.runtime import Gateway
from sitewise_edge.simulators.modbus import ModbusSimulator, example_tags
from tests.conftest import eventually, gateway_config
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
