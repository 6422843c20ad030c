"""Can the destination keep up? The ingest rate of the forwarded streams against the quota and the send rate.

    quota = values_quota(config)                 # values/s the rate limits allow (None: no limit)
    v = verdict(ingest=2400.0, quota=1000.0, sending=1000.0, backlog_age=300.0)
    v.warning        # "the forwarded streams bring 2,400 values/s, above the quota ...": /health, logged once
    v.catch_up       # seconds until the backlog is sent at the current rates (None: it grows, or none)

Pure: the publisher's status loop feeds it the rates of its last 10 s. The backlog holds about
``ingest × backlog_age`` values (the age of the oldest unsent value), so at a send rate ``sending``
it is gone after ``backlog_age × ingest / (sending − ingest)`` seconds, and never while
``sending ≤ ingest``. A backlog exists once the oldest unsent value is ``BACKLOG_AFTER`` seconds old.

SiteWise's documented defaults (shared reference §8, AWS IoT SiteWise quotas): 1,000 data points
per second per account and Region ("Rate of data points ingested", L-055D0253, adjustable),
1,000 ``BatchPutAssetPropertyValue`` requests per second (adjustable), 10 entries per second per
asset property (L-90092B39), at most 10 entries × 10 values per request.
"""

from __future__ import annotations

from dataclasses import dataclass

from sitewise_edge.config import SitewisePublisher
from sitewise_edge.publish.requests import MAX_ENTRIES, MAX_VALUES

BACKLOG_AFTER = 10.0
"""Seconds of age of the oldest unsent value from which the destination counts as behind."""


def values_quota(config: SitewisePublisher) -> tuple[float | None, str]:
    """The values/s the destination's rate limits allow at most, and which setting sets it."""
    limits: list[tuple[float, str]] = []
    if config.rate_limit_values > 0:
        limits.append((config.rate_limit_values, f"rate_limit_values {config.rate_limit_values:,.0f}/s"))
    if config.rate_limit_requests > 0:
        limits.append((config.rate_limit_requests * MAX_ENTRIES * MAX_VALUES,
                       f"rate_limit_requests {config.rate_limit_requests:,.0f}/s x 100 values"))
    if not limits:
        return None, "no rate limit"
    return min(limits)


@dataclass(frozen=True)
class Verdict:
    warning: str | None  # why the backlog must grow (None: it does not)
    catch_up: float | None  # seconds to send the backlog at the current rates (None: no backlog, or it grows)


def verdict(ingest: float | None, quota: float | None, sending: float, backlog_age: float | None,
            quota_source: str = "the rate limits") -> Verdict:
    """Compare the forwarded streams' ingest rate (values/s) with the quota and what is being sent."""
    behind = backlog_age is not None and backlog_age >= BACKLOG_AFTER
    if ingest is None:
        return Verdict(None, None)
    if quota is not None and ingest > quota:
        return Verdict(f"the forwarded streams bring {ingest:,.0f} values/s, above the quota of {quota:,.0f} "
                       f"values/s ({quota_source}): the backlog grows by {ingest - quota:,.0f} values/s and never "
                       "drains; raise the quota (SiteWise's 'Rate of data points ingested' is adjustable) or "
                       "forward fewer streams", None)
    if not behind:
        return Verdict(None, None)
    assert backlog_age is not None
    if sending <= ingest:
        return Verdict(f"behind by {backlog_age:,.0f}s and sending {sending:,.0f} values/s while the forwarded "
                       f"streams bring {ingest:,.0f} values/s: the backlog grows", None)
    return Verdict(None, backlog_age * ingest / (sending - ingest))
