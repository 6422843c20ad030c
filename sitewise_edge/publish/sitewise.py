"""The SiteWise publisher: forwards the store to ``BatchPutAssetPropertyValue`` from a durable cursor.

Store first, forward second: the publisher reads what the store has accepted, never
what the connectors produce, so a cloud outage or a crash of this process loses
nothing. The cursor moves (durably) only after every request of a chunk was
answered; after a crash the last chunk is sent again (at-least-once delivery).

Per request: at most 10 entries of at most 10 values, one data stream per entry,
values of a stream in time order. Whole-request failures that can pass
(throttling, 5xx, network) are retried with exponential back-off and jitter; per-entry
``errorEntries`` are split into retryable (sent again) and permanent, which go to the
dead-letter file with their reason.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import boto3
import botocore.config
import botocore.exceptions
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from botocore import UNSIGNED

from sitewise_edge.config import SitewisePublisher
from sitewise_edge.errors import PublishError
from sitewise_edge.samples import to_sitewise_values

log = logging.getLogger(__name__)

MAX_ENTRIES = 10
MAX_VALUES = 10
CHUNK_ROWS = 5_000
RETRYABLE_CODES = frozenset({
    "ThrottlingException", "LimitExceededException", "InternalFailureException",
    "ServiceUnavailableException", "ConflictingOperationException",
})
AUTH_ERRORS = frozenset({
    "AccessDeniedException", "UnauthorizedException", "UnrecognizedClientException", "ExpiredTokenException",
    "InvalidSignatureException", "MissingAuthenticationTokenException", "IncompleteSignature",
})
LANES = 4
SYNTHETIC_PREFIX = "asset:"


class LogSource(Protocol):
    """What the publisher needs of the store."""

    def read(self, position: Any, max_rows: int) -> tuple[pa.Table, Any]: ...
    def cursor(self, name: str) -> Any: ...
    def save_cursor(self, name: str, position: Any) -> None: ...
    async def wait_for_data(self, max_wait: float) -> None: ...


@dataclass
class PublisherStats:
    values_sent: int = 0
    requests_sent: int = 0
    retries: int = 0
    values_rejected: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    last_success: float | None = None
    last_error: str | None = None
    state: str = "starting"

    def as_dict(self) -> dict[str, object]:
        return {
            "state": self.state, "valuesSent": self.values_sent, "requestsSent": self.requests_sent,
            "retries": self.retries, "valuesRejected": self.values_rejected, "errors": dict(self.errors),
            "lastSuccess": self.last_success, "lastError": self.last_error,
        }


def entry_target(stream: str) -> dict[str, str]:
    """How an entry names its data stream: by alias, or by asset and property id for unaliased properties."""
    if stream.startswith(SYNTHETIC_PREFIX):
        asset_id, _, property_id = stream[len(SYNTHETIC_PREFIX):].partition("/")
        return {"assetId": asset_id, "propertyId": property_id}
    return {"propertyAlias": stream}


def sitewise_rejections(table: pa.Table) -> np.ndarray:
    """Why SiteWise will never accept each row ("" for rows it will), found before sending."""
    n = table.num_rows
    bad = np.zeros(n, dtype=bool)
    reasons = np.full(n, "", dtype=object)

    def mark(mask: Any, reason: str) -> None:
        m = np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool) & ~bad
        reasons[m] = reason
        bad[:] |= m

    seconds = pc.divide(table.column("time").cast(pa.int64()), pa.scalar(1_000_000_000, pa.int64()))
    mark(pc.less(seconds, 1), "InvalidRequestException: timestamp before 1970-01-01T00:00:01Z")
    double = table.column("double")
    mark(pc.is_inf(double), "InvalidRequestException: SiteWise does not accept an infinite double")
    integer = table.column("integer")
    mark(pc.or_(pc.less(integer, -(2**31)), pc.greater(integer, 2**31 - 1)),
         "InvalidRequestException: integerValue outside the 32-bit range SiteWise stores")
    mark(pc.greater(pc.binary_length(table.column("string")), 1024),
         "InvalidRequestException: stringValue longer than 1024 bytes")
    return reasons


def build_requests(table: pa.Table, lanes: int = 1) -> list[list[list[dict[str, Any]]]]:
    """Rows -> lanes of requests: ≤10 entries × ≤10 values, one stream per entry, time order per stream.

    Every stream goes to one lane (by a stable hash of its name); lanes are sent concurrently and the
    requests of a lane one after the other, so each stream's values arrive in time order.
    """
    if table.num_rows == 0:
        return []
    keys = pa.table({"s": table.column("stream").cast(pa.string()), "t": table.column("time")})
    order = pc.sort_indices(keys, [("s", "ascending"), ("t", "ascending")])
    table = table.take(order)
    streams = table.column("stream").cast(pa.string()).to_pylist()
    values = to_sitewise_values(table, json_safe=False)
    lane_entries: list[list[dict[str, Any]]] = [[] for _ in range(lanes)]
    start = 0
    n = len(streams)
    while start < n:
        stream = streams[start]
        end = start + 1
        while end < n and end - start < MAX_VALUES and streams[end] == stream:
            end += 1
        lane = zlib.crc32(stream.encode()) % lanes
        lane_entries[lane].append({"entryId": "", **entry_target(stream), "propertyValues": values[start:end]})
        start = end
    out = []
    for entries in lane_entries:
        requests = []
        for i in range(0, len(entries), MAX_ENTRIES):
            group = entries[i:i + MAX_ENTRIES]
            for j, e in enumerate(group):
                e["entryId"] = f"e{j}"
            requests.append(group)
        if requests:
            out.append(requests)
    return out


def make_client(cfg: SitewisePublisher) -> Any:
    """A boto3 ``iotsitewise`` client; credentials from the standard AWS chain, never from the config."""
    session = boto3.session.Session()
    kwargs: dict[str, Any] = {"region_name": cfg.region}
    options: dict[str, Any] = {"retries": {"max_attempts": 1}, "connect_timeout": 5, "read_timeout": 30}
    if cfg.endpoint_url:
        kwargs["endpoint_url"] = cfg.endpoint_url
        options["inject_host_prefix"] = False
        if session.get_credentials() is None:
            log.info("publisher %s: no AWS credentials found; sending unsigned requests to %s",
                     cfg.name, cfg.endpoint_url)
            options["signature_version"] = UNSIGNED
    client = session.client("iotsitewise", config=botocore.config.Config(**options), **kwargs)
    if cfg.token:
        token = cfg.token

        def add_token(request: Any, **_: Any) -> None:
            request.headers["x-api-token"] = token

        client.meta.events.register("before-sign.iotsitewise.*", add_token)
    return client


class SitewisePublisherTask:
    """Runs one destination until cancelled."""

    def __init__(self, cfg: SitewisePublisher, store: LogSource, deadletter_dir: Path, client: Any = None,
                 skip: Callable[[], set[str]] | None = None) -> None:
        self.cfg = cfg
        self.skip = skip
        self.name = cfg.name
        self.store = store
        self.stats = PublisherStats()
        self.deadletter_path = deadletter_dir / f"{cfg.name}.jsonl"
        self.client = client

    async def run(self) -> None:
        if self.client is None:
            self.client = await asyncio.to_thread(make_client, self.cfg)  # reads credentials: not on the loop
        cursor_name = f"publisher-{self.name}"
        position = self.store.cursor(cursor_name)
        log.info("publisher %s: forwarding to %s from %s", self.name, self.cfg.endpoint_url or
                 f"AWS IoT SiteWise in {self.cfg.region}", position)
        while True:
            table, next_position = await asyncio.to_thread(self.store.read, position, CHUNK_ROWS)
            if table.num_rows == 0:
                self.stats.state = "idle"
                await self.store.wait_for_data(self.cfg.batch_interval)
                continue
            if table.num_rows < MAX_VALUES * MAX_ENTRIES:
                # wait a little for more values so requests go out full
                await self.store.wait_for_data(self.cfg.batch_interval)
                table, next_position = await asyncio.to_thread(self.store.read, position, CHUNK_ROWS)
            self.stats.state = "sending"
            skipped = self.skip() if self.skip else set()
            if skipped:
                table = table.filter(pc.invert(pc.is_in(table.column("stream").cast(pa.string()),
                                                        pa.array(sorted(skipped), pa.string()))))
            reasons = sitewise_rejections(table)
            for reason in sorted(set(reasons) - {""}):
                await self._dead_letter(build_entries(table.filter(pa.array(reasons == reason))), reason)
            if (reasons != "").any():
                table = table.filter(pa.array(reasons == ""))
            lanes = build_requests(table, LANES)
            await asyncio.gather(*(self._send_lane(requests) for requests in lanes))
            await asyncio.to_thread(self.store.save_cursor, cursor_name, next_position)
            position = next_position

    async def _send_lane(self, requests: list[list[dict[str, Any]]]) -> None:
        for entries in requests:
            await self._send(entries)

    async def _send(self, entries: list[dict[str, Any]]) -> None:
        """Send one request until every value is delivered or dead-lettered."""
        attempt = 0
        pending = entries
        while pending:
            try:
                response = await asyncio.to_thread(self.client.batch_put_asset_property_value, entries=pending)
            except botocore.exceptions.ParamValidationError as exc:  # botocore refuses to send it: never will
                self._count("ParamValidationError")
                await self._dead_letter(pending, f"InvalidRequestException: {exc}")
                return
            except botocore.exceptions.ClientError as exc:
                kind, error = _client_error(exc)
            except (botocore.exceptions.BotoCoreError, OSError) as exc:
                kind, error = type(exc).__name__, PublishError(f"{type(exc).__name__}: {exc}", retryable=True)
            else:
                pending = await self._handle_response(pending, response)
                if pending:
                    attempt += 1
                    self.stats.retries += 1
                    await asyncio.sleep(self._backoff(attempt))
                continue
            self._count(kind)
            self.stats.last_error = str(error)
            if not error.retryable:
                await self._dead_letter(pending, str(error))
                return
            attempt += 1
            self.stats.retries += 1
            self.stats.state = "auth-error" if kind in AUTH_ERRORS else "retrying"
            delay = self._backoff(attempt)
            log.warning("publisher %s: %s; retrying in %.1fs (attempt %d)", self.name, error, delay, attempt)
            await asyncio.sleep(delay)

    def _backoff(self, attempt: int) -> float:
        return min(self.cfg.max_retry_interval, 0.5 * 2 ** min(attempt, 10)) * random.uniform(0.5, 1.0)

    async def _handle_response(self, sent: list[dict[str, Any]], response: dict[str, Any]) -> list[dict[str, Any]]:
        """Account for a 200 response; returns the entries (values) to send again."""
        by_id = {e["entryId"]: e for e in sent}
        retry: list[dict[str, Any]] = []
        failed_values = 0
        for err_entry in response.get("errorEntries", []):
            entry = by_id.get(err_entry["entryId"])
            if entry is None:
                continue
            for err in err_entry.get("errors", []):
                stamps = {(t["timeInSeconds"], t.get("offsetInNanos", 0)) for t in err.get("timestamps", [])}
                values = [v for v in entry["propertyValues"]
                          if (v["timestamp"]["timeInSeconds"], v["timestamp"]["offsetInNanos"]) in stamps]
                failed_values += len(values)
                part = {**entry, "propertyValues": values}
                self._count(err["errorCode"])
                if err["errorCode"] in RETRYABLE_CODES:
                    retry.append(part)
                else:
                    await self._dead_letter([part], f"{err['errorCode']}: {err.get('errorMessage', '')}")
        total = sum(len(e["propertyValues"]) for e in sent)
        self.stats.values_sent += total - failed_values
        self.stats.requests_sent += 1
        self.stats.last_success = time.time()
        if self.stats.state in ("retrying", "auth-error"):
            self.stats.state = "sending"
        for i, e in enumerate(retry):
            e["entryId"] = f"r{i}"
        return retry

    def _count(self, kind: str) -> None:
        self.stats.errors[kind] = self.stats.errors.get(kind, 0) + 1

    async def _dead_letter(self, entries: list[dict[str, Any]], reason: str) -> None:
        n = sum(len(e["propertyValues"]) for e in entries)
        self.stats.values_rejected += n
        log.error("publisher %s: %d values rejected permanently (%s); kept in %s", self.name, n, reason,
                  self.deadletter_path)
        lines = [json.dumps({"reason": reason, "entry": {k: v for k, v in e.items() if k != "entryId"},
                             "at": time.time()}, allow_nan=True) + "\n" for e in entries]
        await asyncio.to_thread(_append_lines, self.deadletter_path, lines)


def _append_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.writelines(lines)
        f.flush()
        os.fsync(f.fileno())


def build_entries(table: pa.Table) -> list[dict[str, Any]]:
    """Rows -> entries (any size), for the dead-letter file."""
    return [entry for lane in build_requests(table) for request in lane for entry in request]


def _client_error(exc: botocore.exceptions.ClientError) -> tuple[str, PublishError]:
    """(error kind for the counters, the error with its retry class)."""
    code = exc.response.get("Error", {}).get("Code", "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    message = exc.response.get("Error", {}).get("Message", str(exc))
    # credentials can be fixed while we wait: never dead-letter a whole backlog for them
    retryable = code in RETRYABLE_CODES or code in AUTH_ERRORS or status in (401, 403, 429) or status >= 500
    kind = code or f"HTTP {status}"
    return kind, PublishError(f"{kind}: {message}", retryable=retryable)
