"""Fixtures of the Modbus tests: the plant simulator on a free port (the leak check is global: tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sitewise_edge.simulators.modbus import ModbusSimulator


@pytest.fixture
async def simulator() -> AsyncIterator[ModbusSimulator]:
    """The plant simulator on a free port, not updating during a test (its values stay those of the start)."""
    sim = ModbusSimulator(port=0, update_interval=3600)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()
