"""One stats shape for every destination: what /health, ``GET /publishers`` and the dashboard show.

    stats = SitewiseStats()              # or ExportStats()
    stats.failed(failure, "uploading s3://b/k")    # a whole request failed: counted, last error kept
    stats.as_dict()                      # the common keys, then the destination's own

The common keys (``state``, ``valuesSent``, ``requestsSent``, ``retries``, ``valuesRejected``,
``throttled``, ``errors`` by kind, ``lastSuccess``, ``lastError``) mean the same for both kinds, so
the dashboard shows them alike; each kind adds its own (the SiteWise publisher its parking, live
lane and backlog age, the S3 export its files and backlog of days).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sitewise_edge.clock import NS_PER_S, SYSTEM_CLOCK
from sitewise_edge.publish.retry import RequestFailure


@dataclass
class PublishStats:
    """What every destination counts."""

    state: str = "starting"
    values_sent: int = 0
    requests_sent: int = 0
    retries: int = 0
    values_rejected: int = 0
    throttled: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    last_success: float | None = None
    last_error: str | None = None

    def count(self, kind: str) -> None:
        """One more error of ``kind`` (an error code, ``HTTP <status>`` or an exception's class)."""
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def failed(self, failure: RequestFailure, what: str = "") -> None:
        """A whole request failed: counted by kind (and as throttled), its message the last error."""
        self.count(failure.kind)
        if failure.throttled:
            self.throttled += 1
        self.last_error = f"{what}: {failure.message}" if what else failure.message

    def as_dict(self) -> dict[str, object]:
        return {
            "state": self.state, "valuesSent": self.values_sent, "requestsSent": self.requests_sent,
            "retries": self.retries, "valuesRejected": self.values_rejected, "throttled": self.throttled,
            "errors": dict(self.errors), "lastSuccess": self.last_success, "lastError": self.last_error,
        }


@dataclass
class SitewiseStats(PublishStats):
    """A SiteWise destination's. ``state``: starting, idle, sending, retrying, throttled or auth-error."""

    values_parked: int = 0
    values_to_s3: int = 0
    values_replayed: int = 0
    oldest_unsent_ns: int | None = None
    live_lane: bool = False
    rate: float = 0.0
    rate_wait_s: float = 0.0
    requests_failed: int = 0
    """Requests that failed whole (``requestsSent`` counts the answered ones)."""
    success_rate: float | None = None
    """Answered / tried over the last 10 s (None: nothing tried)."""
    in_flight_limit: float = 0.0
    """The adaptive limit of requests in flight (AIMD, up to ``max_in_flight``)."""
    values_per_request: float | None = None
    """Values per answered request over the last 10 s (None: none answered)."""
    values_read: int = 0
    values_forwardable: int = 0
    """Rows read from the log, and those of them bound for SiteWise (the share of the ingest it forwards)."""
    ingest_rate: float | None = None
    """Values/s of the forwarded streams entering the store (last 10 s; None: not known)."""
    catch_up_s: float | None = None
    """Seconds until the backlog is sent at the current rates (None: no backlog, or it grows)."""
    quota_warning: str | None = None
    """Why the backlog must grow (ingest above the quota, or above what is sent), for /health."""

    @property
    def requests_tried(self) -> int:
        return self.requests_sent + self.requests_failed

    def as_dict(self, now: float | None = None) -> dict[str, object]:
        """The status keys; ``now`` (wall-clock seconds) dates the backlog's age."""
        now = SYSTEM_CLOCK.time() if now is None else now
        age = None if self.oldest_unsent_ns is None else max(0.0, now - self.oldest_unsent_ns / NS_PER_S)
        return super().as_dict() | {
            "valuesParked": self.values_parked, "valuesToS3": self.values_to_s3,
            "valuesReplayed": self.values_replayed, "valuesPerSecond": round(self.rate, 1),
            "oldestUnsentAgeSeconds": None if age is None else round(age, 1), "liveLane": self.live_lane,
            "rateLimitWaitSeconds": round(self.rate_wait_s, 1), "requestsFailed": self.requests_failed,
            "successRate": None if self.success_rate is None else round(self.success_rate, 3),
            "successRateTotal": round(self.requests_sent / tried, 3) if (tried := self.requests_tried) else None,
            "inFlightLimit": round(self.in_flight_limit, 1),
            "valuesPerRequest": None if self.values_per_request is None else round(self.values_per_request, 1),
            "ingestValuesPerSecond": None if self.ingest_rate is None else round(self.ingest_rate, 1),
            "catchUpSeconds": None if self.catch_up_s is None else round(self.catch_up_s, 1),
            "quotaWarning": self.quota_warning,
        }


@dataclass
class ExportStats(PublishStats):
    """An S3 export's: ``valuesSent`` counts values exported. ``state``: starting, idle, exporting,
    retrying or error."""

    files_exported: int = 0
    bytes_exported: int = 0
    last_export: str | None = None
    backlog_days: int = 0
    oldest_backlog_day: str | None = None

    def as_dict(self) -> dict[str, object]:
        return super().as_dict() | {
            "filesExported": self.files_exported, "bytesExported": self.bytes_exported,
            "lastExport": self.last_export, "backlogDays": self.backlog_days,
            "oldestBacklogDay": self.oldest_backlog_day,
        }
