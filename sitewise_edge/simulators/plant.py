"""The simulated plant served by both simulators: a few machines with realistic signals.

Values are pure functions of time (and the machine), so the OPC UA and the Modbus
simulator serve matching data, and tests can predict what they read.

Signals of each machine (OPC UA ``ns=2;s=<Machine>.<Signal>``; Modbus at base 100·(i+1)):

=============  =========  =================================  =====================================
signal         type       behaviour                          Modbus (holding and input registers)
=============  =========  =================================  =====================================
Speed          double     rpm, ~1200 when running, 0 else    base+0  float32, big word order (ABCD)
Temperature    double     °C, slow 10-minute wave + noise    base+2  float32, big word order (ABCD)
Pressure       double     bar, 1-minute wave + noise         base+4  float32, little word order (CDAB)
State          integer    1111 running, 1024 idle,           base+6  uint16
                          1020 fault, 1000 planned stop
GoodCount      integer    parts made since start             base+7  uint32, big word order
BadCount       integer    scrap since start                  base+9  uint32, big word order
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


def state_at(machine_index: int, t: float) -> int:
    """Mostly running; an idle, fault or stop minute now and then."""
    slot = int(t // 60)
    r = (_noise(machine_index + 7, slot, 1.0) + 1.0) / 2.0
    if r < 0.75:
        return RUNNING
    if r < 0.88:
        return IDLE
    if r < 0.95:
        return STOPPED
    return FAULT


def machine_values(machine_index: int, t: float, start: float) -> dict[str, float | int | bool | str]:
    """Every signal of machine ``machine_index`` at wall-clock time ``t`` (simulator started at ``start``)."""
    i = machine_index
    state = state_at(i, t)
    running = state == RUNNING
    temp = 60.0 + 10.0 * i + 5.0 * math.sin(2 * math.pi * t / 600.0 + i) + 0.2 * _noise(i, t)
    pressure = 4.0 + 0.5 * math.sin(2 * math.pi * t / 60.0 + i) + 0.05 * _noise(i + 3, t)
    speed = (1200.0 + 100.0 * i + 15.0 * _noise(i + 5, t)) if running else 0.0
    elapsed = max(0.0, t - start)
    good = int(elapsed * (2.0 + 0.5 * i))
    bad = int(elapsed * 0.05)
    return {
        "Speed": round(speed, 3),
        "Temperature": round(temp, 3),
        "Pressure": round(pressure, 4),
        "State": state,
        "GoodCount": good,
        "BadCount": bad,
        "TemperatureX10": round(temp * 10),
        "Running": running,
        "Fault": state == FAULT,
        "Status": STATUS_TEXT[state],
    }


def alias(machine: str, signal: str, prefix: str = "/plant1/line1") -> str:
    """The property alias the examples use for a signal: ``/plant1/line1/press1/temperature``."""
    return f"{prefix}/{machine.lower()}/{signal.lower()}"
