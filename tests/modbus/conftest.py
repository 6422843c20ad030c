"""Fixtures of the Modbus tests: the plant simulator on a free port, and a leak check."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from sitewise_edge.simulators.modbus import ModbusSimulator


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves tasks running: servers and clients must be closed."""
    before = asyncio.all_tasks()
    yield
    current = asyncio.current_task()
    leaked = [t for t in asyncio.all_tasks() - before if t is not current and not t.done()]
    if leaked:
        # tasks still finishing their close get a moment; waiting on them, not sleeping
        _, pending = await asyncio.wait(leaked, timeout=1.0)
        assert not pending, f"leaked tasks: {pending}"


@pytest.fixture
async def simulator() -> AsyncIterator[ModbusSimulator]:
    """The plant simulator on a free port, not updating during a test (its values stay those of the start)."""
    sim = ModbusSimulator(port=0, update_interval=3600)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()
