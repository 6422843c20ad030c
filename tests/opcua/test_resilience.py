"""The runtime drives an OPC UA source through losses: first retry within a second, bounded back-off."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from connectors.base import ConnectorState
from sitewise_edge.config import Config
from sitewise_edge.runtime import Gateway
from sitewise_edge.runtime.gateway import SOURCE_FIRST_RETRY, SOURCE_MAX_BACKOFF
from sitewise_edge.simulators.opcua import OpcUaSimulator, example_nodes
from tests.conftest import eventually, gateway_config, gateway_starter
from tests.opcua.conftest import FreezingProxy

live = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module")
async def start_gateway() -> AsyncIterator[Callable[[Config], Any]]:
    async for start in gateway_starter():
        yield start


def opcua_gateway(tmp_path: Path, endpoint: str) -> Config:
    source = {"name": "plc", "type": "opcua", "endpoint": endpoint, "interval": "200ms", "timeout": "2s",
              "nodes": example_nodes()[:3]}
    return gateway_config(tmp_path, sources=[source])


@live
async def test_a_dropped_connection_is_retried_within_a_second(
    tmp_path: Path, frozen_proxy: FreezingProxy, start_gateway: Callable[[Config], Any]
) -> None:
    gw: Gateway = await start_gateway(opcua_gateway(tmp_path, frozen_proxy.endpoint))
    status = gw.connectors[0].status
    await eventually(lambda: status.state is ConnectorState.CONNECTED and status.batches_read > 0)
    for drop in range(1, 3):  # the back-off starts again after each good connection
        frozen_proxy.drop()
        await eventually(lambda: status.state is ConnectorState.ERROR, 3)
        lost = time.monotonic()
        read = status.values_read
        await eventually(lambda: status.state is ConnectorState.CONNECTED and status.values_read > read, 5)  # noqa: B023
        # the retry comes after SOURCE_FIRST_RETRY; the rest is a new session and a read, which on a loaded
        # 2-core machine took just over 0.5 s: far from the next back-off step either way
        assert time.monotonic() - lost < SOURCE_FIRST_RETRY + 1.0
        assert status.reconnects == drop
        assert "connection lost" in (status.last_error or "") or status.last_error is None


@live
async def test_restart_on_the_same_port_resumes(tmp_path: Path, start_gateway: Callable[[Config], Any]) -> None:
    simulator = OpcUaSimulator(port=0, update_interval=0.2)
    await simulator.start()
    try:
        gw: Gateway = await start_gateway(opcua_gateway(tmp_path, simulator.endpoint))
        status = gw.connectors[0].status
        await eventually(lambda: status.batches_read > 0)
        await simulator.stop()
        await eventually(lambda: status.state is ConnectorState.ERROR, 3)
        assert "plc" in (status.last_error or "")
        await simulator.start()
        restarted = time.monotonic()
        read = status.values_read
        await eventually(lambda: status.state is ConnectorState.CONNECTED and status.values_read > read, 8)
        assert time.monotonic() - restarted < SOURCE_MAX_BACKOFF + 1.0  # the back-off is bounded
    finally:
        await simulator.stop()
