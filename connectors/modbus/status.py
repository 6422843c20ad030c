"""What ``/health`` shows of a Modbus source: the usual fields, and one entry per device under ``devices``."""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field

from connectors.base import ConnectorStatus
from sitewise_edge.clock import SYSTEM_CLOCK, Clock

RATE_WINDOW = 10.0
"""Seconds over which ``requestsPerSecond`` is counted."""


@dataclass
class DeviceStatus:
    """What ``/health`` shows of one device of a source."""

    unit_id: int
    state: str = "starting"
    """``starting`` (not polled yet), ``ok``, ``down`` (not answering, backed off) or ``disconnected``."""
    requests: int = 0
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    last_error: str | None = None
    last_good_poll: float | None = None
    """Wall-clock seconds of the last poll that read at least one tag of the device."""
    failures: int = 0
    """Polls that failed in a row (the back-off doubles with each)."""
    retry_at: float = 0.0
    """Monotonic seconds before which the device is not polled."""
    last_end: float = -math.inf
    """Monotonic seconds at the end of the last request (for ``pause``)."""
    _times: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=4096))

    def count_request(self, now: float) -> None:
        self.requests += 1
        self._times.append(now)

    def rate(self, now: float) -> float:
        recent = sum(1 for t in self._times if now - t <= RATE_WINDOW)
        return round(recent / RATE_WINDOW, 2)

    def as_dict(self, now: float) -> dict[str, object]:
        return {
            "unitId": self.unit_id,
            "state": self.state,
            "connected": self.state == "ok",
            "requests": self.requests,
            "requestsPerSecond": self.rate(now),
            "errors": dict(self.errors),
            "lastError": self.last_error,
            "lastGoodPoll": self.last_good_poll,
        }


@dataclass
class ModbusStatus(ConnectorStatus):
    """The source's status, with one entry per device under ``devices``."""

    devices: dict[str, DeviceStatus] = field(default_factory=dict)
    clock: Clock = SYSTEM_CLOCK

    def as_dict(self) -> dict[str, object]:
        now = self.clock.monotonic()
        return {**super().as_dict(), "devices": {n: d.as_dict(now) for n, d in self.devices.items()}}
