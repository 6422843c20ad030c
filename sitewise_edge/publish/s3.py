"""The S3 export: sealed days of the store, one Parquet file per UTC day, in a Hive layout.

    task = S3ExportTask(config, store, source="plant1-gw")
    await task.run()              # every config.interval: export what is sealed and not yet exported
    await task.export_once()      # one pass (tests, the CLI); returns the days uploaded

A day is *sealed* once it is over plus ``seal_after`` (grace for late data) and none of its
values is still waiting in the WAL for a compaction. Its Parquet files are merged into one
file (the later write of a (stream, time, quality) wins, as in SiteWise and the store's
queries), filtered by alias, and uploaded to ``<prefix>date=YYYY-MM-DD/<source>.parquet``.

The key depends only on the day and the gateway, so a retry, a crash between upload and
record, or a re-export after late data all overwrite the same object: never a duplicate, and
S3 replaces an object atomically (a versioned bucket keeps the earlier versions).

What was exported is recorded durably, per destination, in
``<data_dir>/cursors/s3/<name>.json``: each day with the key, row count, SHA-256 of the
object and of every source file. A day whose source files differ from the record (a later
compaction added late data), or whose filters changed, is exported again.

Failures (:func:`~sitewise_edge.publish.retry.s3_policy`): network errors, 5xx, throttling and
request timeouts are retried with exponential back-off and jitter; permanent ones (no bucket,
access denied, no credentials) end the pass with a PublishError, the error in the stats and the
log, and are tried again at the next interval. A day is recorded only after S3 acknowledged its
upload.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import shutil
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from boto3.s3.transfer import TransferConfig

from sitewise_edge.clock import NS_PER_DAY, NS_PER_S, SYSTEM_CLOCK, Clock
from sitewise_edge.config import S3Export
from sitewise_edge.errors import PublishError
from sitewise_edge.files import write_json_atomic
from sitewise_edge.publish.base import PartitionSource
from sitewise_edge.publish.clients import S3Client, endpoint_name, s3_client
from sitewise_edge.publish.retry import REQUEST_ERRORS, s3_policy
from sitewise_edge.publish.stats import ExportStats
from sitewise_edge.publish.streams import stream_allowed, synthetic_ids
from sitewise_edge.samples import QUALITY_NAMES, value_types

log = logging.getLogger(__name__)

T = TypeVar("T")

FORMAT_VERSION = 1
CHUNK_SIZE = 8 * 2**20  # multipart part size: bounded memory (x concurrency) on a small PC
CONCURRENCY = 4
MAX_BACKOFF = 60.0  # the retry back-off's ceiling, or the interval when shorter
PROGRESS_EVERY = 10.0  # seconds between progress lines of a long upload

EXPORT_SCHEMA = pa.schema([
    pa.field("alias", pa.string()),
    pa.field("asset_id", pa.string()),
    pa.field("property_id", pa.string()),
    pa.field("time", pa.timestamp("us", tz="UTC")),
    pa.field("timestamp_seconds", pa.int64(), nullable=False),
    pa.field("timestamp_nano_offset", pa.int32(), nullable=False),
    pa.field("quality", pa.string(), nullable=False),
    pa.field("data_type", pa.string()),
    pa.field("double_value", pa.float64()),
    pa.field("integer_value", pa.int64()),
    pa.field("string_value", pa.string()),
    pa.field("boolean_value", pa.bool_()),
])
"""Columns of an exported file. ``time`` (microseconds, what every engine reads) is for queries;
``timestamp_seconds`` + ``timestamp_nano_offset`` keep SiteWise's full nanosecond precision."""

# --- pure parts ---------------------------------------------------------------------------


def normalize_prefix(prefix: str) -> str:
    """``sitewise-edge`` and ``/sitewise-edge/`` -> ``sitewise-edge/``; empty stays empty (bucket root)."""
    prefix = prefix.strip("/")
    return prefix + "/" if prefix else ""


def object_key(prefix: str, day: str, source: str) -> str:
    """Where a day goes: the same key for the same day and gateway, whatever the content."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", source) or "gateway"
    return f"{normalize_prefix(prefix)}date={day}/{safe}.parquet"


def day_bounds(day: str) -> tuple[int, int]:
    """``2026-01-31`` -> [start, end) in UTC epoch seconds."""
    start = datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC)
    return int(start.timestamp()), int((start + timedelta(days=1)).timestamp())


def days_touched(resident: Iterable[tuple[int, pa.RecordBatch]]) -> set[str]:
    """UTC days that rows still waiting for a compaction fall on (every day between each batch's min and max)."""
    days: set[str] = set()
    for _, batch in resident:
        if batch.num_rows == 0:
            continue
        mm = pc.min_max(batch.column("time").cast(pa.int64()))
        lo, hi = mm["min"].as_py() // NS_PER_DAY, mm["max"].as_py() // NS_PER_DAY
        for d in range(lo, min(hi, lo + 366) + 1):
            days.add((date(1970, 1, 1) + timedelta(days=d)).isoformat())
    return days


def sealed(day: str, now: float, seal_after: float) -> bool:
    return day_bounds(day)[1] + seal_after <= now


def merge_latest(tables: list[pa.Table]) -> pa.Table:
    """Tables in write order (oldest first) -> one, sorted by stream, time, quality, with only the
    last write of each (stream, time, quality): SiteWise's duplicate rule."""
    if not tables:
        raise ValueError("nothing to merge")
    table = pa.concat_tables(tables)
    n = table.num_rows
    keys = pa.table({"s": table.column("stream"), "t": table.column("time"), "q": table.column("quality"),
                     "i": pa.array(np.arange(n, dtype=np.int64))})
    order = pc.sort_indices(keys, [("s", "ascending"), ("t", "ascending"), ("q", "ascending"), ("i", "ascending")])
    if n > 1:
        keys = keys.take(order)
        same_as_next = np.ones(n - 1, dtype=bool)
        for col in ("s", "t", "q"):
            a = keys.column(col)
            same_as_next &= pc.equal(a.slice(0, n - 1), a.slice(1)).to_numpy(zero_copy_only=False)
        order = pc.filter(order, pa.array(np.append(~same_as_next, True)))
    return table.take(order)


def to_export_table(table: pa.Table) -> pa.Table:
    """Store rows (stream as string) -> :data:`EXPORT_SCHEMA`. Per-stream work only, never per value."""
    encoded = table.column("stream").combine_chunks().dictionary_encode()
    names = encoded.dictionary.to_pylist()
    alias: list[str | None] = []
    asset: list[str | None] = []
    prop: list[str | None] = []
    for s in names:
        ids = synthetic_ids(s)
        alias.append(s if ids is None else None)
        asset.append(None if ids is None else ids[0])
        prop.append(None if ids is None else ids[1])
    idx = encoded.indices
    ns = table.column("time").cast(pa.int64())
    seconds = pc.divide(ns, pa.scalar(NS_PER_S, pa.int64()))  # integer division: times are after 1970
    nanos = pc.subtract(ns, pc.multiply(seconds, pa.scalar(NS_PER_S, pa.int64()))).cast(pa.int32())
    quality = pc.take(pa.array(QUALITY_NAMES, pa.string()), table.column("quality").cast(pa.int32()))
    data_type = pc.utf8_upper(value_types(table))
    return pa.table([
        pc.take(pa.array(alias, pa.string()), idx),
        pc.take(pa.array(asset, pa.string()), idx),
        pc.take(pa.array(prop, pa.string()), idx),
        table.column("time").cast(pa.timestamp("us", tz="UTC"), safe=False),  # truncates to the microsecond
        seconds, nanos, quality, data_type,
        table.column("double"), table.column("integer"), table.column("string"), table.column("boolean"),
    ], schema=EXPORT_SCHEMA)


# --- building a day's file ------------------------------------------------------------------


@dataclass(frozen=True)
class DayFile:
    day: str
    path: Path | None  # None: no row of the day passes the filters
    rows: int
    size: int
    sha256: str
    sources: dict[str, str]  # source file name -> SHA-256


def build_day_file(day: str, files: list[Path], out: Path, include: list[str], exclude: list[str],
                   decode: Callable[[pa.Table], pa.Table]) -> DayFile:
    """Merge a day's store files (any order; the file names carry their write order) into ``out``.

    Blocking: run in a worker thread. Raises FileNotFoundError when retention removed a file meanwhile.
    """
    sources: dict[str, str] = {}
    tables: list[pa.Table] = []
    for path in sorted(files, key=lambda p: p.name):  # <first seq>-<last seq>, zero-padded: write order
        data = path.read_bytes()
        sources[path.name] = hashlib.sha256(data).hexdigest()
        t = decode(pq.read_table(pa.BufferReader(data)))  # the store's file layout -> sample rows
        t = t.set_column(0, "stream", t.column("stream").cast(pa.string()))
        streams = pc.unique(t.column("stream")).to_pylist()
        allowed = [s for s in streams if stream_allowed(s, include, exclude)]
        if len(allowed) < len(streams):
            t = t.filter(pc.is_in(t.column("stream"), pa.array(allowed, pa.string())))
        tables.append(t)
    if not tables or sum(t.num_rows for t in tables) == 0:
        return DayFile(day, None, 0, 0, "", sources)
    table = to_export_table(merge_latest(tables))
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        table, out, compression="zstd", compression_level=3, row_group_size=1 << 20, version="2.6",
        use_dictionary=["alias", "asset_id", "property_id", "quality", "data_type", "string_value"],
        write_statistics=True,
    )
    digest = hashlib.sha256()
    with open(out, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return DayFile(day, out, table.num_rows, out.stat().st_size, digest.hexdigest(), sources)


# --- the durable record ---------------------------------------------------------------------


class ExportRecord:
    """The days a destination holds, with what they were built from: ``<data_dir>/cursors/s3/<name>.json``."""

    def __init__(self, path: Path, destination: str) -> None:
        self.path = path
        self.destination = destination
        self.days: dict[str, dict[str, Any]] = {}

    def load(self) -> None:
        """Blocking. A record of another destination (bucket or prefix changed) starts afresh."""
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return
        if data.get("destination") != self.destination:
            log.warning("s3 export: %s was for %s; exporting every sealed day again to %s",
                        self.path, data.get("destination"), self.destination)
            return
        self.days = dict(data.get("days", {}))

    def save(self) -> None:
        """Blocking; atomic and durable."""
        write_json_atomic(self.path, {"format": FORMAT_VERSION, "destination": self.destination,
                                      "days": self.days}, indent=1)

    def is_current(self, day: str, file_names: set[str], filters: dict[str, list[str]]) -> bool:
        entry = self.days.get(day)
        return entry is not None and set(entry.get("files", {})) == file_names and entry.get("filters") == filters


# --- the task ----------------------------------------------------------------------------------


class _Progress:
    """boto3 transfer callback (called from its threads): a log line every PROGRESS_EVERY seconds."""

    def __init__(self, what: str, total: int, clock: Clock = SYSTEM_CLOCK) -> None:
        self.what = what
        self.clock = clock
        self.total = total
        self.done = 0
        self.started = self.last = clock.monotonic()
        self.lock = threading.Lock()

    def __call__(self, n: int) -> None:
        with self.lock:
            self.done += n
            now = self.clock.monotonic()
            if now - self.last < PROGRESS_EVERY or self.done >= self.total:
                return
            self.last = now
            rate = self.done / max(now - self.started, 1e-9)
        log.info("%s: %.0f%% (%.1f of %.1f MiB, %.1f MiB/s)", self.what, 100 * self.done / max(self.total, 1),
                 self.done / 2**20, self.total / 2**20, rate / 2**20)


class S3ExportTask:
    """Runs one S3 destination until cancelled: a :class:`~sitewise_edge.publish.base.Publisher`."""

    def __init__(self, config: S3Export, store: PartitionSource, source: str = "sitewise-edge", *,
                 client: S3Client | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.config = config
        self.name = config.name
        self.store = store
        self.source = source
        self.client = client
        self.clock = clock
        self.endpoint = endpoint_name("S3", config.endpoint_url, config.region)
        self.stats = ExportStats()
        self.retry = s3_policy(config.interval, MAX_BACKOFF)
        self.prefix = normalize_prefix(config.prefix)
        self.filters = {"include": list(config.include), "exclude": list(config.exclude)}
        data_dir = Path(store.data_dir)
        self.record = ExportRecord(data_dir / "cursors" / "s3" / f"{config.name}.json",
                                   f"s3://{config.bucket}/{self.prefix}")
        self.staging = data_dir / "exports" / f"s3-{config.name}"
        self.transfer = TransferConfig(multipart_threshold=config.multipart_threshold, multipart_chunksize=CHUNK_SIZE,
                                       max_concurrency=CONCURRENCY, use_threads=True)
        self._loaded = False

    async def run(self) -> None:
        log.info("s3 export %s: sealed days to s3://%s/%s (every %.0fs, %.0fs after the end of a day)",
                 self.name, self.config.bucket, self.prefix, self.config.interval, self.config.seal_after)
        while True:
            try:
                await self.export_once()
            except PublishError:
                pass  # counted, logged and in the stats; tried again next interval
            await asyncio.sleep(self.config.interval)

    def status(self) -> dict[str, object]:
        """The stats (a :class:`~sitewise_edge.publish.base.Publisher`)."""
        return self.stats.as_dict()

    async def export_once(self) -> list[str]:
        """Export every sealed day not yet exported (or changed since). Returns the days uploaded.

        Raises PublishError on a permanent failure; retryable ones are retried here until they pass.
        """
        if not self._loaded:
            await asyncio.to_thread(self._prepare)
            self._loaded = True
        if self.client is None:
            self.client = await asyncio.to_thread(s3_client, self.config)  # reads credentials: not on the loop
        todo = await asyncio.to_thread(self._pending_days)
        self._set_backlog(todo)
        if not todo:
            self.stats.state = "idle"
            return []
        log.info("s3 export %s: %d sealed days to export (%s .. %s)", self.name, len(todo), todo[0][0], todo[-1][0])
        done: list[str] = []
        self.stats.state = "exporting"
        for i, (day, files) in enumerate(todo):
            if await self._export_day(day, files):
                done.append(day)
            self._set_backlog(todo[i + 1:])
        self.stats.state = "idle"
        return done

    def _set_backlog(self, todo: list[tuple[str, list[Path]]]) -> None:
        self.stats.backlog_days = len(todo)
        self.stats.oldest_backlog_day = todo[0][0] if todo else None

    def _prepare(self) -> None:
        self.record.load()
        shutil.rmtree(self.staging, ignore_errors=True)  # files of an export a crash interrupted

    def _pending_days(self) -> list[tuple[str, list[Path]]]:
        """Sealed days whose export is missing or stale, oldest first, with their files (blocking)."""
        snap = self.store.snapshot()
        by_day: dict[str, list[Path]] = {}
        for f in snap.files:
            folder = Path(f).parent.name
            if folder.startswith("day="):
                by_day.setdefault(folder[4:], []).append(Path(f))
        waiting = days_touched(snap.resident)
        now = self.clock.time()
        out = []
        for day in sorted(by_day):
            if day in waiting or not sealed(day, now, self.config.seal_after):
                continue
            if not self.record.is_current(day, {p.name for p in by_day[day]}, self.filters):
                out.append((day, by_day[day]))
        return out

    async def _export_day(self, day: str, files: list[Path]) -> bool:
        """Build, upload and record one day. False when its files went away (retention) meanwhile."""
        out = self.staging / f"{day}.parquet"
        try:
            built = await asyncio.to_thread(build_day_file, day, files, out, self.filters["include"],
                                            self.filters["exclude"], self.store.decode_file)
        except FileNotFoundError:
            log.info("s3 export %s: %s was removed by retention before it could be exported", self.name, day)
            return False
        key = object_key(self.prefix, day, self.source)
        try:
            if built.path is None:
                previous = self.record.days.get(day, {})
                if previous.get("key"):
                    old_key = previous["key"]
                    client = self._client()
                    await self._call(f"deleting s3://{self.config.bucket}/{old_key}",
                                     lambda: client.delete_object(Bucket=self.config.bucket, Key=old_key))
                key_written = None
            else:
                await self._upload(built, key)
                key_written = key
        finally:
            if built.path is not None:
                built.path.unlink(missing_ok=True)
        self.record.days[day] = {
            "key": key_written, "rows": built.rows, "bytes": built.size, "sha256": built.sha256,
            "files": built.sources, "filters": self.filters,
            "exportedAt": datetime.fromtimestamp(self.clock.time(), UTC).isoformat(timespec="seconds"),
        }
        await asyncio.to_thread(self.record.save)
        self.stats.values_sent += built.rows
        self.stats.last_success = self.clock.time()
        self.stats.last_export = day
        if key_written:
            self.stats.files_exported += 1
            self.stats.bytes_exported += built.size
        log.info("s3 export %s: %s -> s3://%s/%s (%d values, %d bytes)", self.name, day, self.config.bucket,
                 key_written or "(nothing: every stream filtered out)", built.rows, built.size)
        return True

    async def _upload(self, built: DayFile, key: str) -> None:
        assert built.path is not None
        path = built.path
        client = self._client()
        progress = _Progress(f"s3 export {self.name}: uploading {key}", built.size, self.clock) \
            if built.size >= self.config.multipart_threshold else None
        extra = {"ContentType": "application/vnd.apache.parquet",
                 "Metadata": {"sha256": built.sha256, "rows": str(built.rows), "gateway": self.source,
                              "format": str(FORMAT_VERSION)}}
        await self._call(f"uploading s3://{self.config.bucket}/{key}", lambda: client.upload_file(
            str(path), self.config.bucket, key, ExtraArgs=extra, Config=self.transfer, Callback=progress))

    def _client(self) -> S3Client:
        if self.client is None:
            raise RuntimeError(f"s3 export {self.name}: a call before export_once() made a client")
        return self.client

    async def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run a blocking S3 call in a thread; retry what can pass, raise PublishError on what cannot."""
        attempt = 0
        while True:
            try:
                result = await asyncio.to_thread(fn)
            except REQUEST_ERRORS as exc:
                failure = self.retry.classify_error(exc)
            else:
                self.stats.requests_sent += 1
                if self.stats.state == "retrying":
                    log.info("s3 export %s: %s succeeded after %d retries", self.name, what, attempt)
                    self.stats.state = "exporting"
                return result
            self.stats.failed(failure, what)
            if not failure.retryable:
                self.stats.state = "error"
                log.error("s3 export %s: %s failed: %s; trying again in %.0fs", self.name, what, failure.message,
                          self.config.interval)
                raise PublishError(f"s3 export {self.name}: {self.stats.last_error}", retryable=False,
                                   publisher=self.name, endpoint=self.endpoint, kind=failure.kind)
            attempt += 1
            self.stats.retries += 1
            self.stats.state = "retrying"
            delay = self.retry.backoff.delay(attempt)
            log.warning("s3 export %s: %s failed: %s; retrying in %.1fs (attempt %d)", self.name, what,
                        failure.message, delay, attempt)
            await asyncio.sleep(delay)
