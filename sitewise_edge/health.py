"""The gateway's health verdict: one board of reasons that any part raises and clears with one call.

    health = Health(clock)
    health.report("publisher cloud", "throttled: 31 of the last 100 requests")   # raise or update a reason
    health.report("publisher cloud", None)                                       # cleared
    health.report("disk", "3 MiB free, under storage.disk_reserve 256 MiB", blocks_ingest=True)
    health.verdict()      # {"status": "degraded", "reasons": [{"component", "reason", "since", "blocksIngest"}]}
    health.ready          # False while a reason blocks ingest

A reason is keyed by the component it is about (``source press``, ``publisher cloud``, ``disk``...): a new
reason, a changed one and a cleared one are each logged once, when they happen, never on every poll.

The verdict's ``status``:

- ``ok``: nothing to report;
- ``degraded``: data is accepted but something needs a look (a source down, a publisher retrying, values
  lost): ``/health`` still answers 200, so a liveness probe does not restart a gateway that is buffering;
- ``unavailable``: the gateway cannot accept data (the disk is full, the store cannot write): ``/health``
  and ``/ready`` answer 503.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sitewise_edge.clock import SYSTEM_CLOCK, Clock
from sitewise_edge.config import redact

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reason:
    component: str
    reason: str
    since: float  # wall-clock seconds when it was raised (a changed text keeps the time)
    blocks_ingest: bool

    def as_dict(self) -> dict[str, object]:
        return {"component": self.component, "reason": self.reason, "since": self.since,
                "blocksIngest": self.blocks_ingest}


class Health:
    """The reasons the gateway is not fully well, by component. Not thread-safe: call it from the event loop."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self._reasons: dict[str, Reason] = {}

    def report(self, component: str, reason: str | None, *, blocks_ingest: bool = False) -> None:
        """Raise (or update) the reason ``component`` is unwell; ``None`` clears it. Logged once per change."""
        old = self._reasons.get(component)
        if reason is not None:
            reason = redact(reason)  # a source's error names its endpoint, which may carry a password
        if reason is None:
            if old is not None:
                del self._reasons[component]
                log.warning("health: %s recovered (was: %s)", component, old.reason)
            return
        if old is not None and old.reason == reason and old.blocks_ingest == blocks_ingest:
            return
        since = old.since if old is not None else self.clock.time()
        self._reasons[component] = Reason(component, reason, since, blocks_ingest)
        level = logging.ERROR if blocks_ingest else logging.WARNING
        log.log(level, "health: %s: %s%s", component, reason, " (data is refused)" if blocks_ingest else "")

    def clear_all(self, prefix: str) -> None:
        """Clear every reason whose component starts with ``prefix`` (a part that is gone)."""
        for component in [c for c in self._reasons if c.startswith(prefix)]:
            self.report(component, None)

    @property
    def reasons(self) -> list[Reason]:
        return sorted(self._reasons.values(), key=lambda r: (not r.blocks_ingest, r.component))

    @property
    def ready(self) -> bool:
        """True while nothing stops the gateway from accepting data."""
        return not any(r.blocks_ingest for r in self._reasons.values())

    @property
    def status(self) -> str:
        if not self._reasons:
            return "ok"
        return "degraded" if self.ready else "unavailable"

    def verdict(self) -> dict[str, object]:
        return {"status": self.status, "reasons": [r.as_dict() for r in self.reasons]}
