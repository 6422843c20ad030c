"""The demo plant is plausible: parts only while running, below the ideal rate, KPIs of the model within 0..1."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from sitewise_edge.clock import NS_PER_S, SYSTEM_CLOCK
from sitewise_edge.samples import from_columns
from sitewise_edge.simulators import plant
from tests.conftest import eventually, gateway_config

MIN = 60 * NS_PER_S
DAY_START = 1_800_000_000.0  # a day of the plant, minute aligned


def test_parts_are_made_only_while_running_and_below_the_ideal_rate() -> None:
    for i in range(len(plant.MACHINES)):
        before = plant.machine_values(i, DAY_START, DAY_START)
        states: collections.Counter[int] = collections.Counter()
        for k in range(1, 6 * 3600):  # six hours, second by second
            now = plant.machine_values(i, DAY_START + k, DAY_START)
            states[int(now["State"])] += 1
            made = int(now["GoodCount"]) + int(now["BadCount"]) - int(before["GoodCount"]) - int(before["BadCount"])
            if before["State"] != plant.RUNNING and now["State"] != plant.RUNNING:
                assert made == 0, f"{plant.MACHINES[i]} made {made} parts at {k} s while {now['Status']}"
            assert made <= plant.IDEAL_RATE + 1
            before = now
        total = int(before["GoodCount"]) + int(before["BadCount"])
        ran = plant.running_seconds(i, DAY_START, DAY_START + 6 * 3600 - 1)
        assert 0.7 * plant.IDEAL_RATE * ran < total < plant.IDEAL_RATE * ran
        assert 0.05 < 1 - states[plant.RUNNING] / sum(states.values()) < 0.35  # stops happen, but not all day
        assert {plant.IDLE, plant.FAULT, plant.STOPPED} <= set(states)


def test_the_counters_answer_the_same_wherever_they_are_asked_from() -> None:
    """The cache behind the counters gives what a fresh count gives (OPC UA and Modbus serve the same parts)."""
    t = DAY_START + 7777.5
    cached = plant.machine_values(1, t, DAY_START)
    plant._RUN_CACHE.clear()
    assert plant.machine_values(1, t, DAY_START) == cached
    assert plant.running_seconds(1, DAY_START, t) == plant._ran_since(1, DAY_START, t)


def _plant_batch(begin: float, seconds: int, step: float = 0.5) -> pa.RecordBatch:
    """What the gateway's sources read from the simulators over ``seconds``, sampled every ``step``."""
    signals = {"State": "integer", "GoodCount": "integer", "BadCount": "integer", "Temperature": "double",
               "Speed": "double"}
    streams: list[str] = []
    times: list[int] = []
    columns: dict[str, list[Any]] = {"integer": [], "double": []}
    for i, machine in enumerate(plant.MACHINES):
        for k in range(int(seconds / step)):
            t = begin + k * step
            values = plant.machine_values(i, t, begin)
            for signal, kind in signals.items():
                streams.append(plant.alias(machine, signal))
                times.append(round(t * NS_PER_S))
                for other in columns:
                    columns[other].append(values[signal] if other == kind else None)
    return from_columns(streams, np.array(times), integer=pa.array(columns["integer"], pa.int64()),
                        double=pa.array(columns["double"], pa.float64()))


def _ten_busy_minutes(latest: int) -> int:
    """The latest start (ns, on a minute, at most ``latest``) of 10 minutes in which every machine runs at least 6
    and one stops: the plant's states follow the clock, so the test picks its 10 minutes instead of taking any."""
    for k in range(1000):
        begin = latest - k * MIN
        minutes = [[plant.state_at(i, begin / NS_PER_S + 60 * m + 30) for m in range(10)]
                   for i in range(len(plant.MACHINES))]
        if all(m.count(plant.RUNNING) >= 6 for m in minutes) and any(plant.RUNNING != s for m in minutes for s in m):
            return begin
    raise AssertionError("no 10 minutes of the plant both run and stop: plant.py's states changed")


async def test_ten_simulated_minutes_give_kpis_within_0_and_1(tmp_path: Path, start_gateway: Any) -> None:
    gw = await start_gateway(gateway_config(tmp_path))
    await eventually(lambda: gw.metrics.closed)
    begin = _ten_busy_minutes(SYSTEM_CLOCK.time_ns() // MIN * MIN - 12 * MIN)  # closed windows: late data
    end = begin + 10 * MIN
    await gw.ingest(_plant_batch(begin / NS_PER_S, 600))
    kpis = ("Availability", "Quality", "Performance", "OEE")
    machines = [a for a in gw.registry.assets() if a.name in plant.MACHINES]
    assert len(machines) == len(plant.MACHINES)

    async def computed() -> dict[tuple[str, str], list[float]]:
        got = {}
        for asset in machines:
            for name in kpis:
                got[(asset.name, name)] = await gw.query(lambda r, a=asset, n=name: _history(gw, r, a, n, begin, end))
        # the windows with parts made (a window all stopped has no quality nor performance: 0 parts / 0 s)
        return got if all(len(v) >= 5 for v in got.values()) else {}

    got = await eventually(computed, within=60)
    for (machine, name), series in got.items():
        assert all(0.0 <= v <= 1.0 for v in series), f"{machine} {name} outside 0..1: {series}"
    availability = [v for (_, name), s in got.items() if name == "Availability" for v in s]
    performance = [v for (_, name), s in got.items() if name == "Performance" for v in s]
    assert min(availability) < 1.0  # some machine stopped in these 10 minutes
    assert 0.75 < max(performance) < 0.95  # a running machine: 80-90 % of the ideal rate


def _history(gw: Any, reader: Any, asset: Any, name: str, begin: int, end: int) -> list[float]:
    prop = next(p for p in gw.registry.model(asset.model_id).properties if p.name == name)
    stream = gw.registry.stream_of(asset.id, prop.id)
    return [float(v) for v in reader.history(stream, begin, end + MIN).column("double").to_pylist()]
