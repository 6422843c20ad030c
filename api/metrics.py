"""``GET /metrics``: the gateway in Prometheus' text format (prometheus-client), one registry per app.

    sitewise_edge_source_up{source}                        1 connected, 0 not
    sitewise_edge_source_values_read_total{source}         values read (and _dropped_total, _reconnects_total,
                                                           _tag_errors: tags failing now)
    sitewise_edge_store_values_accepted_total              durable in the WAL (and _rejected_total, _lost_total)
    sitewise_edge_store_disk_bytes                         the store's size on disk (and _compactions_total)
    sitewise_edge_publisher_values_sent_total{publisher}   delivered (and _rejected_total: dead-lettered,
                                                           _retries_total)
    sitewise_edge_publisher_backlog_records{publisher}     what waits behind the cursor
    sitewise_edge_publisher_lag_seconds{publisher}         age of the oldest value not yet sent (0: none)
    sitewise_edge_api_requests_total{operation,status}     every request, by route template and HTTP status
    sitewise_edge_api_request_seconds{operation}           latency histogram (ExecuteQuery is operation
                                                           /queries/execution)
    sitewise_edge_api_auth_failures_total{code}            refused credentials, by error code
    sitewise_edge_up, sitewise_edge_ready                  the verdict as numbers (1 ok, 0.5 degraded, 0 unavailable)

The gateway's figures are read from ``backend.status()`` when scraped (nothing is kept twice); the API's own
are counted by :class:`RequestMetrics`, a pure ASGI middleware (a few microseconds a request).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api.auth import Authenticator
from api.backend import Backend
from api.guard import ASGIApp, Message, Receive, Scope, Send

PREFIX = "sitewise_edge"
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
VERDICT = {"ok": 1.0, "degraded": 0.5, "unavailable": 0.0}


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


class GatewayCollector(Collector):
    """Sources, store, publishers and the verdict, from the backend's status at scrape time."""

    def __init__(self, backend: Backend, auth: Authenticator) -> None:
        self.backend = backend
        self.auth = auth

    def collect(self) -> Iterator[Metric]:
        status = self.backend.status()
        verdict = self.backend.verdict()
        up = GaugeMetricFamily(f"{PREFIX}_up", "The verdict: 1 ok, 0.5 degraded, 0 unavailable")
        up.add_metric([], VERDICT.get(verdict.get("status", ""), 0.0))
        ready = GaugeMetricFamily(f"{PREFIX}_ready", "1 while the gateway accepts data")
        ready.add_metric([], 1.0 if self.backend.ready() else 0.0)
        yield up
        yield ready
        yield from self._sources(status.get("sources", {}))
        yield from self._store(status.get("store", {}))
        yield from self._publishers(status.get("publishers", {}))
        failures = CounterMetricFamily(f"{PREFIX}_api_auth_failures", "Requests refused for their credentials",
                                       labels=["code"])
        for code, n in sorted(self.auth.failures.items()):
            failures.add_metric([code], n)
        yield failures

    @staticmethod
    def _sources(sources: dict[str, Any]) -> Iterator[Metric]:
        up = GaugeMetricFamily(f"{PREFIX}_source_up", "1 while the source is connected", labels=["source"])
        read = CounterMetricFamily(f"{PREFIX}_source_values_read", "Values read", labels=["source"])
        dropped = CounterMetricFamily(f"{PREFIX}_source_values_dropped", "Values dropped (queue full)",
                                      labels=["source"])
        reconnects = CounterMetricFamily(f"{PREFIX}_source_reconnects", "Reconnections", labels=["source"])
        tags = GaugeMetricFamily(f"{PREFIX}_source_tag_errors", "Tags failing now", labels=["source"])
        for name, s in sources.items():
            up.add_metric([name], 1.0 if s.get("state") == "connected" else 0.0)
            read.add_metric([name], _number(s.get("valuesRead")))
            dropped.add_metric([name], _number(s.get("valuesDropped")))
            reconnects.add_metric([name], _number(s.get("reconnects")))
            tags.add_metric([name], float(len(s.get("tagErrors") or {})))
        yield from (up, read, dropped, reconnects, tags)

    @staticmethod
    def _store(store: dict[str, Any]) -> Iterator[Metric]:
        for key, name, text in (("valuesAccepted", "values_accepted", "Values durable in the WAL"),
                                ("valuesRejected", "values_rejected", "Values refused at ingest"),
                                ("valuesLost", "values_lost", "Values deleted before they were forwarded"),
                                ("compactions", "compactions", "WAL compactions into Parquet")):
            family = CounterMetricFamily(f"{PREFIX}_store_{name}", text)
            family.add_metric([], _number(store.get(key)))
            yield family
        disk = GaugeMetricFamily(f"{PREFIX}_store_disk_bytes", "The store's size on disk")
        disk.add_metric([], _number(store.get("diskBytes")))
        ok = GaugeMetricFamily(f"{PREFIX}_store_up", "1 while the store takes writes")
        ok.add_metric([], 1.0 if store.get("state") == "ok" else 0.0)
        yield disk
        yield ok

    @staticmethod
    def _publishers(publishers: dict[str, Any]) -> Iterator[Metric]:
        label = ["publisher"]
        sent = CounterMetricFamily(f"{PREFIX}_publisher_values_sent", "Values delivered", labels=label)
        rejected = CounterMetricFamily(f"{PREFIX}_publisher_values_rejected", "Values dead-lettered", labels=label)
        retries = CounterMetricFamily(f"{PREFIX}_publisher_retries", "Requests retried", labels=label)
        backlog = GaugeMetricFamily(f"{PREFIX}_publisher_backlog_records", "Records behind the cursor", labels=label)
        lag = GaugeMetricFamily(f"{PREFIX}_publisher_lag_seconds", "Age of the oldest value not yet sent",
                                labels=label)
        for name, p in publishers.items():
            sent.add_metric([name], _number(p.get("valuesSent")))
            rejected.add_metric([name], _number(p.get("valuesRejected")))
            retries.add_metric([name], _number(p.get("retries")))
            backlog.add_metric([name], _number(p.get("backlogRecords", p.get("backlogDays"))))
            lag.add_metric([name], _number(p.get("oldestUnsentAgeSeconds")))
        yield from (sent, rejected, retries, backlog, lag)


class RequestMetrics:
    """Counts and times every request by its route template (``/assets/{assetId}``, never the raw path)."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry, backend: Backend) -> None:
        self.app = app
        self.clock = backend.clock
        self.requests = Counter(f"{PREFIX}_api_requests", "API requests", ["operation", "status"], registry=registry)
        self.seconds = Histogram(f"{PREFIX}_api_request_seconds", "API request latency", ["operation"],
                                 buckets=BUCKETS, registry=registry)
        # (route template, status) -> its two labelled children; bounded by routes x statuses, never by raw paths
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = self.clock.monotonic()
        status = 500

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            route = scope.get("route")
            operation = getattr(route, "path", None) or "unmatched"
            children = self._children.get((operation, status))
            if children is None:  # labels() validates and locks: once per route template and status, not per request
                children = self._children[(operation, status)] = (self.requests.labels(operation, str(status)),
                                                                  self.seconds.labels(operation))
            children[0].inc()
            children[1].observe(self.clock.monotonic() - started)


def metrics_registry(backend: Backend, auth: Authenticator) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GatewayCollector(backend, auth))
    return registry


def exposition(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The text to answer a scrape with, and its content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST
