"""The injected clock: a manual clock moves only when told, and components read the clock they are given."""

from __future__ import annotations

from pathlib import Path

import pytest

from sitewise_edge.clock import NS_PER_DAY, NS_PER_S, SYSTEM_CLOCK, ManualClock
from sitewise_edge.config import StorageConfig
from sitewise_edge.samples import from_columns
from storage.store import Store


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(1_000 * NS_PER_S)
    assert (clock.time_ns(), clock.time(), clock.monotonic()) == (1_000 * NS_PER_S, 1_000.0, 0.0)
    clock.advance(1.5)
    assert (clock.time_ns(), clock.monotonic()) == (1_001_500_000_000, 1.5)
    clock.set_ns(5 * NS_PER_S)  # the wall clock jumps back (an NTP step); the monotonic one does not
    assert (clock.time(), clock.monotonic()) == (5.0, 1.5)
    with pytest.raises(ValueError, match="does not go back"):
        clock.advance(-1)


def test_system_clock_is_the_machines() -> None:
    import time

    assert abs(SYSTEM_CLOCK.time() - time.time()) < 5 and abs(SYSTEM_CLOCK.time_ns() / NS_PER_S - time.time()) < 5


async def test_retention_reads_the_stores_clock(tmp_path: Path) -> None:
    """Data of today expires when the store's clock says a month has passed: no real waiting, no ``now`` passed."""
    clock = ManualClock()
    store = Store(tmp_path, StorageConfig(retention="30d", compact_interval="1h"), clock)
    await store.open()
    try:
        await store.append(from_columns(["/a"], [clock.time_ns()], double=[1.0]))
        await store.compact()
        assert await store.apply_retention() == 0
        clock.set_ns(clock.time_ns() + 32 * NS_PER_DAY)
        assert await store.apply_retention() == 1
    finally:
        await store.close()
