"""The composition root: builds every component from the configuration and supervises them.

    gateway = Gateway(load_config("gateway.yaml"))
    await gateway.start()        # store recovered, sources, publishers and API running
    ...
    await gateway.stop()         # sources stop, queued batches drain into the store, all closes

Flow: connectors -> bounded queue (full policy: block, so a slow disk slows the
sources instead of growing memory) -> mapper (type checks against the asset models)
-> store (durable) -> publishers (from their own cursors) and the API (queries).

Only this package (and the CLI) import across the sibling packages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import uvicorn

from api.app import create_app
from asset_models.mapping import check_batch, resolve_stream
from asset_models.metrics import MetricPlan
from asset_models.registry import Change, Registry
from asset_models.transforms import TransformEngine, TransformPlan
from connectors.base import Connector, ConnectorState, ConnectorStatus, PollingConnector, StreamingConnector, registered
from sitewise_edge.clock import SYSTEM_CLOCK, Clock
from sitewise_edge.config import Config, S3Export, SourceConfig, redact_all
from sitewise_edge.errors import ApiError, ConfigError, ConfigIssue, ConnectorError, SitewiseEdgeError, StoreError
from sitewise_edge.health import Health
from sitewise_edge.publish.base import Publisher
from sitewise_edge.publish.deadletter import DeadLetterFilter
from sitewise_edge.publish.s3 import S3ExportTask
from sitewise_edge.publish.sitewise import SitewisePublisherTask
from sitewise_edge.runtime.metrics import MetricRunner
from sitewise_edge.runtime.models import ModelStore, TokenCache
from sitewise_edge.samples import SCHEMA, Quality, Sample, concat
from storage.store import Store

log = logging.getLogger(__name__)
T = TypeVar("T")

QUEUE_BATCHES = 256
INGEST_ROWS = 200_000  # rows of queued batches stored together (one WAL frame, one fsync)
MAX_BACKOFF = 30.0
SOURCE_FIRST_RETRY = 0.5
SOURCE_MAX_BACKOFF = 5.0
"""A source retries after 0.5 s, then doubling up to 5 s: a device back after an outage is read again
within 5 s (an attempt on a device that is down is one refused connect)."""
DRAIN_TIMEOUT = 5.0
RECANCEL_INTERVAL = 0.5
"""How long a cancelled task may take to end before it is cancelled again (see :func:`cancel_all`)."""
HEALTH_INTERVAL = 1.0  # seconds between two checks of the verdict
DROP_QUIET = 60.0  # seconds without a new dropped value before a source's drop reason clears


def make_connector(config: SourceConfig, clock: Clock = SYSTEM_CLOCK) -> Connector:
    """The connector registered for ``config.type`` (see connectors/base.py), built without I/O."""
    return registered(config.type).factory(config, clock)


class Gateway:
    """One gateway: what ``sitewise-edge run`` runs. Also the API's backend."""

    def __init__(self, config: Config, clock: Clock = SYSTEM_CLOCK) -> None:
        self.config = config
        self.clock = clock  # every component reads the time from it (metric windows, retention, back-off...)
        self.name = config.gateway.name
        self.api_config = config.api
        # The configuration's model files, then what the API created or changed (data_dir/models). The
        # registry is immutable: change_models() replaces it whole, under _models_lock.
        self.model_store = ModelStore(config.gateway.data_dir / "models")
        self.registry: Registry = self.model_store.open([m.path for m in config.models], clock.time())
        self.client_tokens = TokenCache()
        self._models_lock = asyncio.Lock()
        self.store = Store(config.gateway.data_dir, config.storage, clock)
        self.transforms = TransformEngine(TransformPlan.build(self.registry))
        self.metrics = MetricRunner(self, MetricPlan.build(self.registry))
        self._compute_registry = self.registry
        self._compute_lock = asyncio.Lock()
        # a source given a Config not read by load_config still keeps its files under the data directory
        self.connectors = [make_connector(s.with_data_dir(config.gateway.data_dir), clock) for s in config.sources]
        self.health = Health(clock)  # the verdict of /health and /ready; any part may report(component, reason)
        self._source_of = {alias: conn for src, conn in zip(config.sources, self.connectors, strict=True)
                           for alias in src.aliases()}
        self._down_since: dict[str, float] = {}  # source name -> wall-clock time it went down
        self._drops: dict[str, tuple[int, float]] = {}  # source name -> (values dropped, monotonic time it grew)
        self._started_at = clock.time()
        deadletter = config.gateway.data_dir / "deadletter"
        s3_exports = [p for p in config.publishers if isinstance(p, S3Export)]
        # SiteWise publishers hold store cursors and dead letters; S3 exports hold neither (see destinations)
        self.publishers = [SitewisePublisherTask(p, self.store, deadletter, skip=self.not_forwarded,
                                                 exports=s3_exports, clock=clock,
                                                 accepted=lambda: self.store.stats.values_accepted)
                           for p in config.publishers if not isinstance(p, S3Export)]
        self.exports = [S3ExportTask(p, self.store, self.name, clock=clock)
                        for p in config.publishers if isinstance(p, S3Export)]
        self.rejected_values = 0
        self.store_error: str | None = None
        self._store_error_kind: type[StoreError] = StoreError
        self.api_port: int | None = None
        self._queue: asyncio.Queue[tuple[ConnectorStatus, pa.RecordBatch]] = asyncio.Queue(QUEUE_BATCHES)
        self._source_tasks: list[asyncio.Task[None]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._server: uvicorn.Server | None = None
        self._stopping = asyncio.Event()
        # ExecuteQuery's own threads: slow queries must not take the default executor's threads, which
        # the WAL writes, compaction and the other reads use (8 slow queries stalled BatchPut for 28 s)
        self._query_threads = ThreadPoolExecutor(config.api.query.concurrency, "ThreadPoolExecutor-query",
                                                 initializer=_lower_priority)
        self._queries = 0

    # --- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        tls = self.config.api.tls
        if tls is not None:
            check_tls(tls.cert, tls.key)  # before anything is opened: a bad pair leaves nothing to close
        await self.store.open()
        self.transforms.seed(self.store.latest_all())  # transforms go on from the values before a restart
        self.store.retain_cursors({p.cursor_name for p in self.publishers})
        sock = self._bind(self.config.api.host, self.config.api.port)
        self.api_port = sock.getsockname()[1]
        app = create_app(self)
        # a client holding a request open (a slow query, a stuck reader) must not hold the stop: at most
        # DRAIN_TIMEOUT, then its connection is closed
        server = _EmbeddedServer(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False,
                                                timeout_graceful_shutdown=int(DRAIN_TIMEOUT),
                                                ssl_certfile=tls.cert if tls else None,
                                                ssl_keyfile=tls.key if tls else None))
        self._server = server
        self._tasks.append(asyncio.create_task(server.serve(sockets=[sock]), name="api"))
        self._tasks.append(asyncio.create_task(self._ingest_loop(), name="ingest"))
        self._tasks.append(asyncio.create_task(self._watch_health(), name="health"))
        # always: a metric created through the API is computed even where the configuration has none
        self._tasks.append(asyncio.create_task(self._supervise("metrics", self.metrics.run), name="metrics"))
        for pub in self.destinations:
            self._tasks.append(asyncio.create_task(self._supervise(f"publisher {pub.name}", pub.run),
                                                   name=f"publisher-{pub.name}"))
        for conn in self.connectors:
            self._source_tasks.append(asyncio.create_task(self._run_source(conn), name=f"source-{conn.name}"))
        while not server.started:
            if self._tasks[0].done():
                self._tasks[0].result()
                raise SitewiseEdgeError("the API server stopped during start-up")
            await asyncio.sleep(0.01)
        log.info("gateway %s running: %d sources, %d publishers, API on %s", self.name, len(self.connectors),
                 len(self.publishers), dashboard_url(self.config.api.host, self.api_port, tls is not None))

    @staticmethod
    def _bind(host: str, port: int) -> socket.socket:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # accepted connections inherit it. asyncio sets it itself only on a socket made with proto=IPPROTO_TCP;
        # without it Nagle holds the body behind the headers for the client's delayed ACK (~40 ms a request)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise SitewiseEdgeError(f"api: cannot listen on {host}:{port}: {exc.strerror}") from None
        sock.listen(128)
        sock.setblocking(False)
        return sock

    async def stop(self) -> None:
        """Stop sources, drain what they produced into the store, then stop the rest."""
        self._stopping.set()
        await cancel_all(self._source_tasks)
        try:
            await asyncio.wait_for(self._queue.join(), DRAIN_TIMEOUT)
        except TimeoutError:
            log.error("stop: %d batches could not be stored within %.0fs", self._queue.qsize(), DRAIN_TIMEOUT)
        if self._server is not None:
            self._server.should_exit = True
        await cancel_all(self._tasks[1:])
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._query_threads.shutdown(wait=False, cancel_futures=True)  # a running query ends at its timeout
        await self.store.close()
        log.info("gateway %s stopped", self.name)

    # --- sources ------------------------------------------------------------------------

    async def _run_source(self, conn: Connector) -> None:
        """Open, read, and on failure reopen with exponential back-off; other sources are unaffected.

        The one writer of ``status.state``: starting until the first open, then connected or error
        (also while it reconnects), stopped at shutdown. Every change of state or of error is logged once
        (the connector may have recorded the error in its status already: the runtime keeps its own note)."""
        backoff = SOURCE_FIRST_RETRY
        status: ConnectorStatus = conn.status
        logged: str | None = None  # the error last logged; None: connected (or not failed yet)
        failures = 0
        while True:
            try:
                await conn.open()
                status.state = ConnectorState.CONNECTED
                status.last_error = None
                if logged is None:
                    log.info("source %s connected", conn.name)
                else:
                    log.warning("source %s connected again after %d failed attempts", conn.name, failures)
                logged, failures = None, 0
                self._down_since.pop(conn.name, None)
                backoff = SOURCE_FIRST_RETRY
                if isinstance(conn, PollingConnector):
                    await self._poll(conn)
                elif isinstance(conn, StreamingConnector):
                    async for batch in conn.stream():
                        await self._queue.put((status, batch))
            except ConnectorError as exc:
                status.state = ConnectorState.ERROR
                status.last_error = str(exc)
            except asyncio.CancelledError:
                status.state = ConnectorState.STOPPED
                await conn.close()
                raise
            except Exception as exc:  # the supervisor: a bug in a connector must not stop the gateway
                status.state = ConnectorState.ERROR
                status.last_error = f"internal error: {exc!r}"
                log.exception("source %s failed unexpectedly; restarting in %gs", conn.name, backoff)
                logged = status.last_error
            await conn.close()
            status.state = ConnectorState.ERROR  # also after a stream that ended: the source is not read
            if status.last_error is None:
                status.last_error = "the source stopped delivering (stream ended)"
            failures += 1
            if status.last_error != logged:
                log.warning("source %s down: %s (retrying in %gs)", conn.name, status.last_error, backoff)
                logged = status.last_error
            self._down_since.setdefault(conn.name, self.clock.time())
            status.reconnects += 1
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, SOURCE_MAX_BACKOFF)

    async def _poll(self, conn: PollingConnector) -> None:
        next_tick = self.clock.monotonic()
        while True:
            batch = await conn.poll()
            if batch.num_rows:
                await self._queue.put((conn.status, batch))
            next_tick += conn.interval
            delay = next_tick - self.clock.monotonic()
            if delay < 0:  # overrun: skip missed ticks rather than bursting
                next_tick = self.clock.monotonic()
                delay = 0
            await asyncio.sleep(delay)

    async def _ingest_loop(self) -> None:
        """Store what the sources read. Everything queued (up to INGEST_ROWS rows) is checked and stored
        together: one append, so one WAL frame and one fsync for many sources' batches. A store that
        cannot write is retried with back-off: the bounded queue then fills and the sources wait
        (back-pressure), nothing read is dropped."""
        while True:
            items = [await self._queue.get()]
            rows = items[0][1].num_rows
            while rows < INGEST_ROWS and not self._queue.empty():
                items.append(self._queue.get_nowait())
                rows += items[-1][1].num_rows
            try:
                await self._store_read(items)
            finally:
                for _ in items:
                    self._queue.task_done()

    async def _store_read(self, items: list[tuple[ConnectorStatus, pa.RecordBatch]]) -> None:
        accepted: list[pa.RecordBatch] = []
        for source, batch in items:
            try:  # conformed one by one: a malformed batch is dropped alone, never with the group it came in
                accepted.append(self._check(batch if batch.schema == SCHEMA else batch.cast(SCHEMA)))
            except pa.ArrowException as exc:  # a malformed batch from a connector: a bug, never accepted
                self.rejected_values += batch.num_rows
                source.values_dropped += batch.num_rows
                log.error("dropped a malformed batch of %d values: %s", batch.num_rows, exc)
        backoff = 0.5
        while True:
            try:
                await self._store_accepted(accepted)
                self.store_error = None
                return
            except StoreError as exc:
                if self.store_error is None or type(exc) is not self._store_error_kind:  # once per kind
                    log.error("cannot store %d values read from the sources, retrying (the sources wait): %s",
                              sum(t.num_rows for t in accepted), exc)
                self.store_error, self._store_error_kind = str(exc), type(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    async def _supervise(self, what: str, run: Callable[[], Any]) -> None:
        backoff = 1.0
        while True:
            try:
                await run()
                return
            except asyncio.CancelledError:
                raise
            except Exception:  # the supervisor: log, count, restart
                log.exception("%s failed; restarting in %.0fs", what, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    # --- the API's backend --------------------------------------------------------------

    async def ingest(self, batch: pa.RecordBatch) -> None:
        """Type-check against the models, compute the transforms it triggers, and make both durable in one
        WAL frame. Rejected values are logged and counted."""
        await self._store_accepted([self._check(batch)])

    def _check(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The values of ``batch`` the asset models accept; the rest is logged and counted."""
        accepted, rejected, reasons = check_batch(batch, self.registry)
        if rejected.num_rows:
            self.rejected_values += rejected.num_rows
            log.warning("rejected %d values: %s", rejected.num_rows, "; ".join(sorted(set(reasons))[:3]))
        return accepted

    async def _store_accepted(self, batches: list[pa.RecordBatch]) -> None:
        """Accepted values and the transform outputs they trigger, appended as one batch (one frame)."""
        batches = [b for b in batches if b.num_rows]
        if batches:
            await self.store_computed(batches[0] if len(batches) == 1 else concat(batches), measured=True)

    async def store_computed(self, values: pa.Table | pa.RecordBatch, *, measured: bool = False) -> None:
        """Store ``values`` (accepted measurements, or metric outputs) together with the transform outputs
        they trigger, in one append. Transforms see the values before they are durable: a failed append
        is retried with the same values, which a transform's state takes again unchanged."""
        computed = await self._compute(values)
        frame = values if computed is None else concat([*_batches(values), *computed.to_batches()])
        await self.store.append(frame)
        if measured:
            self.metrics.note(values)
        if computed is not None:
            self.metrics.note(computed)

    async def _compute(self, accepted: pa.Table | pa.RecordBatch) -> pa.Table | None:
        """The transform outputs ``accepted`` triggers (no thread hop or lock when no transform is defined)."""
        if not self.transforms.plan.groups and self._compute_registry is self.registry:
            return None
        async with self._compute_lock:  # one batch at a time through the transform state, off the loop
            if self._compute_registry is not self.registry:  # models changed through the API
                engine = TransformEngine(TransformPlan.build(self.registry))
                engine.seed(self.store.latest_all())
                self.transforms = engine
                self._compute_registry = self.registry
            if not self.transforms.plan.groups:
                return None
            return await asyncio.to_thread(self.transforms.process, accepted)

    async def transform(self, accepted: pa.Table | pa.RecordBatch) -> None:
        """Compute and store the transforms that values already stored trigger."""
        computed = await self._compute(accepted)
        if computed is not None:
            self.metrics.note(computed)
            await self.store.append(computed)

    def not_forwarded(self) -> set[str]:
        """Computed streams that stay at the edge (SiteWise computes them from the measurements)."""
        plan = self.transforms.plan
        return (plan.outputs - plan.forwarded_outputs) | self.metrics.plan.outputs

    async def change_models(self, change: Callable[[Registry], Change], client_token: str | None,
                            request: str) -> dict[str, Any]:
        """A control-plane operation: computed on the current registry, persisted, then swapped in whole."""
        async with self._models_lock:
            replay = self.client_tokens.replay(client_token, request)
            if replay is not None:
                return replay
            result = change(self.registry)
            plan = MetricPlan.build(result.registry) if result.models or result.assets or result.associations \
                else None  # before saving: a plan that does not build refuses the change
            try:
                await asyncio.to_thread(self.model_store.save, result)
            except OSError as exc:
                raise ApiError("InternalFailureException",
                               f"cannot save the change under {self.model_store.directory}: {exc}") from None
            self.registry = result.registry
            if plan is not None:
                self.metrics.replan(plan)
            self.client_tokens.remember(client_token, request, result.response)
            return result.response

    def resolve_stream(self, asset_id: str | None, property_id: str | None, alias: str | None) -> str:
        return resolve_stream(self.registry, asset_id, property_id, alias)

    def property_data_type(self, stream: str) -> tuple[str, str, str] | None:
        prop = self.registry.property_of_stream(stream)
        if prop is None:
            return None
        return prop.data_type, f"the property {prop.property_name} of asset {prop.asset_name}", prop.kind

    async def delete_stream(self, stream: str, client_token: str | None) -> None:
        await self.store.delete_stream(stream, client_token)

    def deleted_by(self, client_token: str) -> str | None:
        return self.store.deleted_by(client_token)

    def latest(self, stream: str) -> pa.Table:
        table = self.store.latest(stream)
        conn = self._source_of.get(stream)
        if table.num_rows and conn is not None and conn.name in self._stale_sources():
            return _uncertain(table, None)
        return table

    def latest_value(self, stream: str) -> Sample | None:
        value = self.store.latest_value(stream)
        if value is not None and value.quality == Quality.GOOD and self._down_since:
            conn = self._source_of.get(stream)
            if conn is not None and conn.name in self._stale_sources():
                return value._replace(quality=int(Quality.UNCERTAIN))
        return value

    def latest_all(self) -> pa.Table:
        table = self.store.latest_all()
        stale = self._stale_sources()
        if not stale or not table.num_rows:
            return table
        aliases = [a for a, c in self._source_of.items() if c.name in stale]
        return _uncertain(table, pc.is_in(table.column("stream").cast(pa.string()), value_set=pa.array(aliases)))

    def _stale_sources(self) -> set[str]:
        """Sources down, without a value for longer than ``gateway.stale_after``: their latest values are stale."""
        if not self._down_since:
            return set()
        now = self.clock.time()
        limit = self.config.gateway.stale_after
        return {c.name for c in self.connectors if c.name in self._down_since
                and now - max(c.status.last_read or self._started_at, self._started_at) > limit}

    def _read(self, fn: Callable[[Any], T]) -> Callable[[], T]:
        def run() -> T:
            with self.store.reader() as reader:
                return fn(reader)

        return run

    async def query(self, fn: Callable[[Any], T]) -> T:
        return await asyncio.to_thread(self._read(fn))

    async def run_query(self, fn: Callable[[Any], T]) -> T:
        limits = self.api_config.query
        if self._queries >= limits.concurrency + limits.queue:
            raise ApiError("ThrottlingException", f"{self._queries} queries are running or waiting "
                           "(api.query.concurrency + api.query.queue): try again later")
        self._queries += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._query_threads, self._read(fn))
        finally:
            self._queries -= 1

    @property
    def destinations(self) -> list[Publisher]:
        """Every publisher, SiteWise ones first: what the runtime runs and shows alike."""
        return [*self.publishers, *self.exports]

    # --- dead letters (api/ops.py) -------------------------------------------------------

    def _publishers_named(self, publisher: str | None) -> list[SitewisePublisherTask]:
        chosen = [p for p in self.publishers if publisher is None or p.name == publisher]
        if publisher is not None and not chosen:
            raise ApiError("ResourceNotFoundException", f"no SiteWise publisher named {publisher!r}")
        return chosen

    async def dead_letters(self, publisher: str | None, reason: str | None, alias: str | None,
                           state: str | None) -> list[dict[str, Any]]:
        flt = DeadLetterFilter(reason=reason, alias=alias, state=state)
        out: list[dict[str, Any]] = []
        for p in self._publishers_named(publisher):
            out += [r.to_json() for r in await asyncio.to_thread(p.deadletters.list, flt)]
        return out

    async def replay_dead_letters(self, publisher: str | None, reason: str | None, alias: str | None,
                                  state: str | None, ids: list[str] | None,
                                  rewrite_alias: str | None) -> dict[str, Any]:
        flt = DeadLetterFilter(reason=reason, alias=alias, state=state, ids=set(ids) if ids is not None else None)
        records = values = 0
        for p in self._publishers_named(publisher):
            chosen = await asyncio.to_thread(p.replay, flt, rewrite_alias)
            records += len(chosen)
            values += sum(r.values for r in chosen)
            if chosen:
                p.wake_requeue()
        return {"records": records, "values": values}

    @property
    def started_at(self) -> float:
        return self._started_at

    def status(self) -> dict[str, Any]:
        """What /health shows; a password inside a URL (an endpoint, an error naming it) is redacted."""
        return redact_all(self._status())

    def _status(self) -> dict[str, Any]:
        s = self.store.stats
        return {
            "gateway": self.name,
            "sources": {c.name: c.status.as_dict() for c in self.connectors},
            "publishers": {p.name: p.status() for p in self.destinations},
            "store": {"valuesAccepted": s.values_accepted, "batchesAccepted": s.batches_accepted,
                      "compactions": s.compactions, "valuesRejected": self.rejected_values,
                      "valuesLost": s.values_lost, "diskBytes": s.disk_bytes,
                      "state": "error" if self.store_error else "ok", "lastError": self.store_error,
                      "dataDir": str(self.store.data_dir), "disk": self.store.disk_status(),
                      "walDamage": self._wal_damage()},
        }

    # --- health ---------------------------------------------------------------------------

    async def _watch_health(self) -> None:
        """Keep the verdict current (so each change is logged once, when it happens, polled or not)."""
        while True:
            self._update_health()
            await asyncio.sleep(HEALTH_INTERVAL)

    def _update_health(self) -> None:
        report = self.health.report
        stale = self._stale_sources()
        for conn in self.connectors:
            st = conn.status
            down = st.state == ConnectorState.ERROR
            reason = None
            if down:
                reason = f"down: {st.last_error}" + ("; its latest values read as UNCERTAIN" if conn.name in stale
                                                     else "")
            report(f"source {conn.name}", reason)
            report(f"source {conn.name} drops", self._dropping(conn.name, st.values_dropped))
            bad = sorted(st.tag_errors) if st.state == ConnectorState.CONNECTED else []
            report(f"source {conn.name} tags", f"{len(bad)} tag(s) fail, e.g. {bad[0]}: {st.tag_errors[bad[0]]}"
                   if bad else None)
        for pub in self.destinations:
            s = pub.status()
            state = str(s.get("state"))
            failing = state in ("retrying", "throttled", "auth-error", "error")
            report(f"publisher {pub.name}", f"{state}: {s.get('lastError')}" if failing else None)
            warning = s.get("quotaWarning")  # the backlog must grow: ingest above the quota or the send rate
            report(f"publisher {pub.name} quota", str(warning) if warning else None)
        disk = self.store.disk_status()
        report("disk", str(disk["refusing"]) if disk["refusing"] else None, blocks_ingest=True)
        report("store", f"cannot write: {self.store_error}" if self.store_error else None, blocks_ingest=True)
        damage = self._wal_damage()
        report("wal", f"damage in {damage['places']} place(s): {damage['recordsLost']} records "
               f"({'' if damage['exact'] else 'at least '}{damage['valuesLost']} values) lost; see "
               f"{self.store.data_dir / 'quarantine'} (remove the files once read)" if damage["places"] else None)
        lost = self.store.stats.values_lost_to_budget
        report("retention", f"{lost} values not yet forwarded were deleted to stay within storage.max_disk"
               if lost else None)

    def _dropping(self, source: str, dropped: int) -> str | None:
        """A reason while a source's dropped-values count grew in the last DROP_QUIET seconds."""
        now = self.clock.monotonic()
        seen, since = self._drops.get(source, (0, now))
        if dropped > seen:
            self._drops[source] = (dropped, now)
            since = now
        elif dropped == 0 or now - since > DROP_QUIET:
            return None
        return (f"values read from the device are dropped ({dropped} so far this run): its buffer is full "
                "because the store refuses or is slower than the source")

    def verdict(self) -> dict[str, Any]:
        self._update_health()
        return self.health.verdict()

    def ready(self) -> bool:
        self._update_health()
        return self._server is not None and self._server.started and not self._stopping.is_set() \
            and self.health.ready

    def _wal_damage(self) -> dict[str, Any]:
        """Damage the WAL ever had (kept in data_dir/quarantine until the operator removes the files)."""
        found = self.store.quarantine
        return {"places": len(found), "recordsLost": sum(q.records_lost for q in found),
                "valuesLost": sum(q.values_lost for q in found), "exact": all(q.exact for q in found),
                "recordsInParquetOnly": sum(q.compacted for q in found),
                "quarantine": [q.to_json() for q in found]}


def _batches(values: pa.Table | pa.RecordBatch) -> list[pa.RecordBatch]:
    return [values] if isinstance(values, pa.RecordBatch) else values.to_batches()


def _uncertain(table: pa.Table, rows: pa.ChunkedArray | pa.Array | None) -> pa.Table:
    """``table`` with its GOOD values among ``rows`` (a mask; None: all) read as UNCERTAIN (a stale source)."""
    quality = table.column("quality")
    good = pc.equal(quality, int(Quality.GOOD))
    mask = good if rows is None else pc.and_(good, rows)
    replaced = pc.if_else(mask, pa.scalar(int(Quality.UNCERTAIN), quality.type), quality)
    return table.set_column(table.schema.get_field_index("quality"), table.schema.field("quality"), replaced)


QUERY_NICENESS = 10


def _lower_priority() -> None:
    """A query thread yields the CPU to ingest and forwarding (Linux: a thread has its own nice value)."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), QUERY_NICENESS)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside our loop: the gateway, not uvicorn, owns the signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def dashboard_url(host: str, port: int, tls: bool = False) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"{'https' if tls else 'http'}://{shown}:{port}/"


def check_tls(cert: Path, key: Path) -> None:
    """Load the certificate and key as the server will; a ConfigError naming the file and the reason."""
    for path in (cert, key):
        if not path.is_file():
            raise ConfigError([ConfigIssue("api.tls", f"cannot read {path}: no such file (make a self-signed "
                                           "pair with: sitewise-edge tls generate)")])
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError([ConfigIssue("api.tls", f"the certificate {cert} and key {key} do not load: "
                                       f"{getattr(exc, 'reason', None) or exc} (PEM files of one pair?)")]) from None


async def cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel the tasks and wait until they have ended, cancelling again any that goes on.

    A cancellation can be lost: on Python 3.11, ``asyncio.wait_for`` (which asyncua and pymodbus use for every
    request) returns the result when the awaited answer arrives in the same loop iteration as the cancel, and the
    task goes on reading. A single ``cancel()`` then leaves ``stop()`` waiting for ever; a second one, at the task's
    next await, ends it."""
    pending = {t for t in tasks if not t.done()}
    rounds = 0
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_INTERVAL)
        rounds += 1
        if pending and rounds == 10:
            log.warning("stop: %s still running after %d cancellations",
                        ", ".join(sorted(t.get_name() for t in pending)), rounds)
    await asyncio.gather(*tasks, return_exceptions=True)
