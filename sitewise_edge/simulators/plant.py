"""The simulated plant served by both simulators: a few machines with realistic signals.

Values are pure functions of time (and the machine), so the OPC UA and the Modbus
simulator serve matching data, and tests can predict what they read.

The plant is plausible enough for its KPIs to be (the model's OEE, availability, quality and performance stay
within 0..1): each machine runs most of the time, stops now and then for 1 to 4 minutes (idle, a fault, a planned
stop), makes parts only while running, at 80-90 % of the model's ideal rate, 3 % of them scrap.

Signals of each machine (OPC UA ``ns=2;s=<Machine>.<Signal>``; Modbus at base 100·(i+1)):

=============  =========  =================================  =====================================
signal         type       behaviour                          Modbus (holding and input registers)
=============  =========  =================================  =====================================
Speed          double     rpm, ~1200 when running, 0 else    base+0  float32, big word order (ABCD)
Temperature    double     °C, slow 10-minute wave + noise    base+2  float32, big word order (ABCD)
Pressure       double     bar, 1-minute wave + noise         base+4  float32, little word order (CDAB)
State          integer    1111 running, 1024 idle,           base+6  uint16
                          1020 fault, 1000 planned stop
GoodCount      integer    good parts since start             base+7  uint32, big word order
BadCount       integer    scrap since start (3 %)            base+9  uint32, big word order
TemperatureX10 integer    Temperature × 10                   base+11 int16
Running        boolean    State == 1111                      coil / discrete input base+0
Fault          boolean    State == 1020                      coil / discrete input base+1
Status         string     RUNNING, IDLE, FAULT, STOPPED      (OPC UA only)
=============  =========  =================================  =====================================
"""

from __future__ import annotations

import math
from typing import Literal

MACHINES: tuple[str, ...] = ("Press1", "Press2", "Oven1")
NAMESPACE_URI = "urn:sitewise-edge:simulator"

RUNNING, IDLE, FAULT, STOPPED = 1111, 1024, 1020, 1000
STATUS_TEXT = {RUNNING: "RUNNING", IDLE: "IDLE", FAULT: "FAULT", STOPPED: "STOPPED"}

# (signal, OPC UA / Python type)
SIGNALS: tuple[tuple[str, type], ...] = (
    ("Speed", float),
    ("Temperature", float),
    ("Pressure", float),
    ("State", int),
    ("GoodCount", int),
    ("BadCount", int),
    ("TemperatureX10", int),
    ("Running", bool),
    ("Fault", bool),
    ("Status", str),
)

# Modbus register map, offsets from the machine's base address.
REGISTER_MAP: dict[str, tuple[int, str, Literal["big", "little"]]] = {
    # signal: (offset, data type, word order)
    "Speed": (0, "float32", "big"),
    "Temperature": (2, "float32", "big"),
    "Pressure": (4, "float32", "little"),
    "State": (6, "uint16", "big"),
    "GoodCount": (7, "uint32", "big"),
    "BadCount": (9, "uint32", "big"),
    "TemperatureX10": (11, "int16", "big"),
}
COIL_MAP: dict[str, int] = {"Running": 0, "Fault": 1}
REGISTERS_PER_MACHINE = 12


def base_address(machine_index: int) -> int:
    return 100 * (machine_index + 1)


def _noise(seed: int, t: float, period: float = 0.1) -> float:
    """Deterministic noise in [-1, 1] for a time slot."""
    k = int(t / period)
    x = math.sin(k * 12.9898 + seed * 78.233) * 43758.5453
    return 2.0 * (x - math.floor(x)) - 1.0


CYCLE = 600.0
"""Each machine's day is made of 10-minute cycles: running, with at most one stop of 1 to 4 minutes in each."""
IDEAL_RATE = 2.0
"""Parts per second at full speed: the model's ``Ideal Run Rate`` (examples/models/plant.json)."""
SCRAP_SHARE = 0.03
"""The share of parts made that are scrap."""


def rate(machine_index: int) -> float:
    """Parts per second while running: 80 to 90 % of the ideal rate (a machine never beats its ideal rate)."""
    return IDEAL_RATE * (0.80 + 0.05 * (machine_index % 3))


def _stop_of(machine_index: int, cycle: int) -> tuple[int, float, float] | None:
    """The stop in a cycle: (state, start, end) in seconds from the cycle's start, or None (it runs throughout).

    Stops begin and end on whole minutes (as the model's 1-minute metric windows do), so a window holds at most
    one state change, at its edge: the parts counted in a window then never exceed its running time's share.
    """
    r = (_noise(machine_index + 7, cycle, 1.0) + 1.0) / 2.0
    if r < 0.15:
        return None
    if r < 0.55:
        state, minutes = IDLE, 1 + int(2 * (r - 0.15) / 0.4)  # a missing operator or material: 1-2 min
    elif r < 0.85:
        state, minutes = FAULT, 1 + int(3 * (r - 0.55) / 0.3)  # a jam, a tripped sensor: 1-3 min
    else:
        state, minutes = STOPPED, 3 + int(2 * (r - 0.85) / 0.15)  # a planned stop (tool change): 3-4 min
    first = 1 + int((_noise(machine_index + 11, cycle, 1.0) + 1.0) / 2.0 * (9 - minutes))  # runs >= 1 min first
    return state, 60.0 * first, 60.0 * (first + minutes)


def state_at(machine_index: int, t: float) -> int:
    """Mostly running; an idle, fault or planned stop of a few minutes in most 10-minute cycles."""
    cycle = int(t // CYCLE)
    stop = _stop_of(machine_index, cycle)
    if stop is None:
        return RUNNING
    state, begin, end = stop
    return state if begin <= t - cycle * CYCLE < end else RUNNING


def running_seconds(machine_index: int, t0: float, t1: float) -> float:
    """How long the machine ran between ``t0`` and ``t1`` (seconds; one step per 10-minute cycle)."""
    if t1 <= t0:
        return 0.0
    total = 0.0
    cycle = int(t0 // CYCLE)
    while cycle * CYCLE < t1:
        lo, hi = max(t0, cycle * CYCLE), min(t1, (cycle + 1) * CYCLE)
        total += hi - lo
        stop = _stop_of(machine_index, cycle)
        if stop is not None:
            _, begin, end = stop
            total -= max(0.0, min(hi, cycle * CYCLE + end) - max(lo, cycle * CYCLE + begin))
        cycle += 1
    return total


_RUN_CACHE: dict[tuple[int, float], tuple[float, float]] = {}
"""(machine, start) -> (t, running seconds from start to t): the counters' last answer, so each call adds only
the cycles since (a simulator asks every update, for days)."""


def _ran_since(machine_index: int, start: float, t: float) -> float:
    key = (machine_index, start)
    seen = _RUN_CACHE.get(key)
    if seen is None or seen[0] > t:
        ran = running_seconds(machine_index, start, t)
    else:
        ran = seen[1] + running_seconds(machine_index, seen[0], t)
    if len(_RUN_CACHE) > 64:
        _RUN_CACHE.clear()
    _RUN_CACHE[key] = (t, ran)
    return ran


def machine_values(machine_index: int, t: float, start: float) -> dict[str, float | int | bool | str]:
    """Every signal of machine ``machine_index`` at wall-clock time ``t`` (simulator started at ``start``).

    Parts are made only while the machine runs, below the ideal rate; the counters count from ``start``.
    """
    i = machine_index
    state = state_at(i, t)
    running = state == RUNNING
    temp = 60.0 + 10.0 * i + 5.0 * math.sin(2 * math.pi * t / 600.0 + i) + 0.2 * _noise(i, t)
    pressure = 4.0 + 0.5 * math.sin(2 * math.pi * t / 60.0 + i) + 0.05 * _noise(i + 3, t)
    speed = (1200.0 + 100.0 * i + 15.0 * _noise(i + 5, t)) if running else 0.0
    made = rate(i) * _ran_since(i, start, t)
    return {
        "Speed": round(speed, 3),
        "Temperature": round(temp, 3),
        "Pressure": round(pressure, 4),
        "State": state,
        "GoodCount": int(made * (1.0 - SCRAP_SHARE)),
        "BadCount": int(made * SCRAP_SHARE),
        "TemperatureX10": round(temp * 10),
        "Running": running,
        "Fault": state == FAULT,
        "Status": STATUS_TEXT[state],
    }


def alias(machine: str, signal: str, prefix: str = "/plant1/line1") -> str:
    """The property alias the examples use for a signal: ``/plant1/line1/press1/temperature``."""
    return f"{prefix}/{machine.lower()}/{signal.lower()}"
