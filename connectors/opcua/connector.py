"""The OPC UA connector: an asyncua client behind the connector interface.

    connector = make_opcua_connector(config)     # config: an OpcUaSource; no I/O yet
    await connector.open()                    # connect, check the nodes, subscribe
    async for batch in connector.stream():    # mode subscribe (or: await connector.poll())
        ...
    await connector.close()

Mode ``subscribe`` gives an :class:`OpcUaStreamingConnector`: one subscription whose publishing
interval is the configured ``interval``, one data-change monitored item per node; every publish
notification becomes one sample batch. Mode ``poll`` gives an :class:`OpcUaPollingConnector`:
each :meth:`~OpcUaPollingConnector.poll` reads every node in one Read call per chunk.

A missing node degrades alone: it is recorded in ``status.tag_errors`` and gets one BAD null row
per open, while the other nodes go on. A connection that cannot be made or is lost raises
:class:`~sitewise_edge.errors.ConnectorError` (with ``source`` and ``endpoint``); the runtime
closes and re-opens with back-off. Certificates and endpoint checks are in ``security.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pyarrow as pa
from asyncua import Client, ua
from asyncua.common.subscription import Subscription

from connectors.base import Connector, ConnectorStatus, PollingConnector, StreamingConnector
from connectors.opcua.browse import browse_variables
from connectors.opcua.columns import Converted, Targets, to_batch
from connectors.opcua.config import OpcUaSource
from connectors.opcua.convert import status_name, value_type
from connectors.opcua.paths import PathRules
from connectors.opcua.pki import common_name, fingerprint
from connectors.opcua.security import (
    PkiError,
    apply_identity,
    apply_security,
    check_server,
    offered,
    offers_endpoint,
    own_certificate,
    pick_endpoint,
    server_certificate,
    server_endpoints,
    trust_kind,
)
from sitewise_edge.clock import SYSTEM_CLOCK, Clock
from sitewise_edge.errors import ConnectorError, NodeError
from sitewise_edge.samples import Quality, SampleBuilder, ValueType

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

DEFAULT_CHUNK = 500
"""Nodes per Read or CreateMonitoredItems call when the server does not state its limit."""

CALLS_IN_FLIGHT = 4
"""CreateMonitoredItems calls sent before the first answer: the server works while the client encodes."""

CLOSE_TIMEOUT = 2.0
"""At most this long for a graceful disconnect (CloseSession): a hung server cannot hold a shutdown."""
LOST_CLOSE_TIMEOUT = 0.2

# The errors asyncua raises for a transport or service failure.
_IO_ERRORS = (OSError, ua.UaError, asyncio.TimeoutError)


@dataclass(frozen=True, slots=True)
class _Node:
    alias: str
    node_id: str  # as configured (or the browse path), for messages
    forced: ValueType | None
    nid: ua.NodeId | None = None  # known already: a browsed variable


@dataclass(frozen=True, slots=True)
class _Layout:
    """The aliases each slot (a monitored item's client handle, a node of a Read) feeds, for to_batch."""

    targets: Targets
    nodes: list[_Node]  # per target
    index: dict[str, int]  # alias -> target

    @staticmethod
    def build(slots: Sequence[Sequence[_Node]]) -> _Layout:
        nodes = [node for feeds in slots for node in feeds]
        targets = Targets.build([[(n.alias, n.forced) for n in feeds] for feeds in slots])
        return _Layout(targets, nodes, {n.alias: t for t, n in enumerate(nodes)})


def _browsed_node(alias: str, path: str, nid: ua.NodeId, forced: ValueType | None) -> _Node:
    return _Node(alias, f"{path} ({nid.to_string()})", forced, nid)


class OpcUaConnector(Connector):
    """What both modes share: connecting, security, node checks, closing. Build with :meth:`from_config`."""

    def __init__(self, config: OpcUaSource, clock: Clock = SYSTEM_CLOCK) -> None:
        self.config = config
        self.clock = clock
        self.name = config.name
        self.interval = config.interval
        self.status = ConnectorStatus()
        self._explicit = [_Node(n.alias, n.node_id, value_type(n.type)) for n in config.nodes]
        self._rules = PathRules(config.browse.include, config.browse.exclude) if config.browse else None
        self._browsed: dict[str, _Node] = {}  # alias -> variable, from the last browse (kept across reconnects)
        self._next_browse = 0.0  # clock.monotonic() of the next scheduled browse
        self._types_loaded = False  # asyncua keeps decoders process-wide: once per connector is enough
        self._client: Client | None = None
        self._present: dict[ua.NodeId, tuple[_Node, ...]] = {}  # nodes that exist, by node id
        self._present_version = 0  # counts the changes of _present
        self._failed: list[_Node] = []  # nodes that owe one BAD row after open
        self._warned: set[str] = set()
        self._lost: ConnectorError | None = None
        self._lost_event = asyncio.Event()  # set with _lost: wakes requests waiting on a dead server
        self._chunk = DEFAULT_CHUNK
        self._item_chunk = DEFAULT_CHUNK
        self._browse_chunk = DEFAULT_CHUNK
        self._session = False  # connect() succeeded on the current client: close() ends the session
        self._own_logged = False  # the client certificate is logged at the first open
        self._trust_any_logged = False
        self.connection: dict[str, object] = self.status.connection
        """Shown in /health: endpoint, security policy and mode, identity, certificates."""
        self.connection.update({"endpoint": config.endpoint, "securityPolicy": config.security_policy,
                                "securityMode": config.security_mode, "identity": config.identity,
                                "serverTrust": trust_kind(config) if config.security_policy != "None" else None})

    @property
    def _nodes(self) -> list[_Node]:
        return [*self._explicit, *self._browsed.values()]

    @staticmethod
    def from_config(config: OpcUaSource) -> OpcUaConnector:
        return make_opcua_connector(config)

    @property
    def where(self) -> str:
        return f"source {self.name!r} ({self.config.endpoint})"

    # --- life cycle -----------------------------------------------------------------

    async def open(self) -> None:
        if self._client is not None:
            await self.close()
        self._lost = None
        self._failed = []
        self._lost_event = asyncio.Event()
        client = Client(self.config.endpoint, timeout=self.config.timeout, watchdog_intervall=self.config.keepalive)
        client.name = client.description = f"sitewise-edge {self.name}"
        client.connection_lost_callback = self._on_connection_lost
        self._client = client
        try:
            await self._connect(client)
            await self._read_limits(client)
            if not self._types_loaded:
                await self._load_types(client)
            if self._rules is not None:
                await self._browse(client)
            self._present = {}
            await self._check_nodes(client, self._nodes)
            await self._prepare(client)
        except ConnectorError as exc:
            await self.close()
            self.status.last_error = str(exc)
            raise
        except _IO_ERRORS as exc:
            await self.close()
            raise self._error(f"opening failed: {_describe(exc)}") from exc
        self.status.last_error = None
        log.info("%s: connected, %d of %d nodes present", self.where, self._count_present(), len(self._nodes))

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[tuple[Client, int, int]]:
        """A session with this source's security and identity and nothing subscribed (``opcua browse``):
        the client, MaxNodesPerBrowse and MaxNodesPerRead. Raises ConnectorError as :meth:`open` does."""
        client = Client(self.config.endpoint, timeout=self.config.timeout)
        client.name = client.description = f"sitewise-edge {self.name}"
        connected = False
        try:
            try:
                await self._connect(client)
                connected = True
                await self._read_limits(client)
            except _IO_ERRORS as exc:
                raise self._error(f"opening failed: {_describe(exc)}") from exc
            yield client, self._browse_chunk, self._chunk
        finally:
            if connected:
                try:
                    await asyncio.wait_for(client.disconnect(), min(self.config.timeout, CLOSE_TIMEOUT))
                except _IO_ERRORS as exc:
                    log.debug("%s: disconnect: %s", self.where, _describe(exc))
            client.disconnect_socket()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        client.connection_lost_callback = None
        session, self._session = self._session, False
        # A lost server is not waited for: disconnect() stops asyncua's tasks at once, then its CloseSession
        # would go unanswered. Without a session (connect() failed), there is only the socket to close.
        wait = LOST_CLOSE_TIMEOUT if self._lost is not None else min(self.config.timeout, CLOSE_TIMEOUT)
        if session:
            try:
                await asyncio.wait_for(client.disconnect(), wait)
            except _IO_ERRORS as exc:
                log.debug("%s: disconnect: %s", self.where, _describe(exc))
        client.disconnect_socket()

    # --- connecting -----------------------------------------------------------------

    async def _connect(self, client: Client) -> None:
        config = self.config
        try:
            async with asyncio.timeout(config.timeout):
                if config.security_policy != "None":
                    await self._secure(client)
                apply_identity(client, config)
                await client.connect()
                self._session = True
        except PkiError as exc:
            raise self._failure(str(exc)) from exc
        except TimeoutError as exc:
            hint = ""
            if config.security_policy != "None":
                hint = " (a server that cannot decrypt the request does not answer: check its certificate)"
            raise self._failure(f"no answer within {config.timeout:g}s{hint}") from exc
        except ua.UaStatusCodeError as exc:
            hint = ""
            if status_name(exc.code).startswith(("BadCertificate", "BadSecurity")):
                hint = " (does the server trust the client certificate? `sitewise-edge opcua cert` shows it)"
            elif status_name(exc.code) in ("BadUserAccessDenied", "BadIdentityTokenRejected",
                                           "BadIdentityTokenInvalid"):
                hint = f" (user identity: {config.identity})"
            raise self._failure(f"connection refused: {_describe(exc)}{hint}") from exc
        except ua.UaError as exc:
            # asyncua says "no matching endpoint" in text only: ask the server what it offers instead
            endpoints = await server_endpoints(config)
            if endpoints is not None and not offers_endpoint(endpoints, config):
                raise self._failure(f"the server offers no endpoint with security policy {config.security_policy} "
                                    f"and mode {config.security_mode} (it offers {offered(endpoints)})") from exc
            raise self._failure(f"cannot connect: {exc}") from exc
        except OSError as exc:
            raise self._failure(f"cannot connect: {_describe(exc)}") from exc

    async def _secure(self, client: Client) -> None:
        """The gateway's certificate, the server's endpoint and certificate (checked before any secured
        message, so a password never reaches an untrusted server), then the policy and mode."""
        config = self.config
        # files (and, at the first start, an RSA key generated and fsynced): off the event loop
        own = await asyncio.to_thread(own_certificate, config, self.clock)
        if not self._own_logged:
            self._own_logged = True
            made = "generated" if own.generated else "using"
            log.info("%s: %s client certificate %s (application URI %s, SHA-256 %s): the server must trust it",
                     self.where, made, own.cert_path, own.application_uri, fingerprint(own.certificate))
        self.connection["clientCertificate"] = {"path": str(own.cert_path), "applicationUri": own.application_uri,
                                                "sha256": fingerprint(own.certificate)}
        endpoints = await client.connect_and_get_server_endpoints()
        endpoint = pick_endpoint(endpoints, config)
        if endpoint is None:
            raise self._failure(f"the server offers no endpoint with security policy {config.security_policy} "
                                f"and mode {config.security_mode} (it offers {offered(endpoints)})")
        server_cert = server_certificate(endpoint)
        self.connection["serverCertificate"] = {"sha256": fingerprint(server_cert), "subject": common_name(server_cert),
                                                "notAfter": server_cert.not_valid_after_utc.isoformat()}
        await asyncio.to_thread(check_server, server_cert, endpoint, config, self.clock)  # reads the trust list
        if config.trust_any_server and not self._trust_any_logged:
            self._trust_any_logged = True
            log.warning("%s: trust_any_server is on: the server certificate is not checked (this one is %s, "
                        "SHA-256 %s); anyone on the network path can pose as the server", self.where,
                        common_name(server_cert), fingerprint(server_cert))
        apply_security(client, config, own, server_cert)

    async def _read_limits(self, client: Client) -> None:
        """MaxNodesPerRead, MaxMonitoredItemsPerCall and MaxNodesPerBrowse, when the server states them
        (0 = no limit)."""
        limits = ua.ObjectIds
        ids = [
            ua.NodeId(ua.Int32(limits.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead)),
            ua.NodeId(ua.Int32(limits.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall)),
            ua.NodeId(ua.Int32(limits.Server_ServerCapabilities_OperationLimits_MaxNodesPerBrowse)),
        ]
        results = await self._read(client, ids, ua.AttributeIds.Value, ua.TimestampsToReturn.Neither)
        values = [dv.Value.Value if _good(dv) and dv.Value is not None else None for dv in results]
        self._chunk, self._item_chunk, self._browse_chunk = (_limit(v) for v in values)

    async def _load_types(self, client: Client) -> None:
        """The server's structure definitions, so that its ExtensionObjects decode (then stored as JSON).
        A server that cannot describe them is not a failure: its structures are BAD rows that say why."""
        try:
            await client.load_data_type_definitions()
            self._types_loaded = True
        except _IO_ERRORS as exc:
            if self.status.last_error is None:
                log.warning("%s: cannot load the server's data type definitions (%s); its structures will be BAD",
                            self.where, _describe(exc))

    async def _browse(self, client: Client) -> tuple[list[_Node], list[_Node]]:
        """Browse the rules' variables: the new ones and the vanished ones (one BAD row and a log line each)."""
        assert self._rules is not None and self.config.browse is not None
        browse = self.config.browse
        found = await browse_variables(client, self._rules, self._browse_chunk)
        self._next_browse = self.clock.monotonic() + browse.interval
        explicit = {n.alias for n in self._explicit}
        forced = value_type(browse.type)
        current: dict[str, _Node] = {}
        for path, nid in found.items():
            alias = browse.prefix + path
            if alias in explicit:
                continue
            old = self._browsed.get(alias)
            current[alias] = old if old is not None and old.nid == nid else _browsed_node(alias, path, nid, forced)
        added = [n for a, n in current.items() if self._browsed.get(a) is not n]
        vanished = [n for a, n in self._browsed.items() if current.get(a) is not n]
        self._browsed = current
        for node in vanished:
            self._tag_failed(node, f"variable {node.node_id} is no longer on the server (browse)")
        for node in added:
            self._warned.discard(node.alias)
        if added or vanished:
            log.info("%s: browse selected %d variables (%d new, %d vanished)", self.where, len(current), len(added),
                     len(vanished))
        return added, vanished

    def _browse_due(self) -> bool:
        interval = self.config.browse.interval if self.config.browse else 0.0
        return self._rules is not None and interval > 0 and self.clock.monotonic() >= self._next_browse

    async def _check_nodes(self, client: Client, selected: Sequence[_Node]) -> None:
        """Add ``selected`` to the present nodes. Configured node ids are checked (their NodeClass is
        read): a missing node or a non-variable is a tag error, not a failure. Browsed ones are variables."""
        ids: list[ua.NodeId] = []
        nodes: list[_Node] = []
        namespaces: list[str] | None = None
        present: dict[ua.NodeId, list[_Node]] = {nid: list(ns) for nid, ns in self._present.items()}
        for node in selected:
            if node.nid is not None:
                present.setdefault(node.nid, []).append(node)
                self.status.tag_errors.pop(node.alias, None)
                continue
            if node.node_id.startswith("nsu=") and namespaces is None:
                namespaces = await client.get_namespace_array()
            try:
                nid = self._resolve(node, namespaces)
            except NodeError as exc:
                self._tag_failed(node, str(exc))
                continue
            ids.append(nid)
            nodes.append(node)
        if not self._read_node_class:
            for node, nid in zip(nodes, ids, strict=True):
                present.setdefault(nid, []).append(node)
            ids, nodes = [], []
        results: list[ua.DataValue] = []
        for chunk in _chunks(ids, self._chunk):
            results.extend(await self._read(client, chunk, ua.AttributeIds.NodeClass, ua.TimestampsToReturn.Neither))
        for node, nid, dv in zip(nodes, ids, results, strict=True):
            if not _good(dv):
                code = status_name(dv.StatusCode)
                what = "does not exist" if code == "BadNodeIdUnknown" else "cannot be read"
                self._tag_failed(node, f"node {node.node_id} {what} ({code})")
            elif dv.Value is None or dv.Value.Value != ua.NodeClass.Variable:
                kind = ua.NodeClass(dv.Value.Value).name if dv.Value is not None else "unknown"
                self._tag_failed(node, f"node {node.node_id} is not a variable (node class {kind})")
            else:
                present.setdefault(nid, []).append(node)
                self.status.tag_errors.pop(node.alias, None)
        self._present = {nid: tuple(ns) for nid, ns in present.items()}
        self._present_version += 1

    def _resolve(self, node: _Node, namespaces: list[str] | None) -> ua.NodeId:
        """A configured node id -> the server's NodeId; NodeError when it cannot be one."""
        try:
            return _parse_node_id(node.node_id, namespaces)
        except ValueError as exc:
            raise NodeError(f"node {node.node_id} is not a valid node id: {exc}", node=node.node_id,
                            source=self.name, endpoint=self.config.endpoint) from None

    async def _prepare(self, client: Client) -> None:
        """Mode-specific work at the end of open()."""

    _read_node_class = True
    """Check configured nodes by reading their NodeClass. Subscribe mode need not: CreateMonitoredItems
    says which nodes are missing or no variables (one call instead of two per chunk of nodes)."""

    # --- helpers --------------------------------------------------------------------

    async def _read(
        self, client: Client, ids: Sequence[ua.NodeId], attr: ua.AttributeIds, timestamps: ua.TimestampsToReturn
    ) -> list[ua.DataValue]:
        params = ua.ReadParameters()
        params.MaxAge = 0
        params.TimestampsToReturn = timestamps
        params.NodesToRead = [ua.ReadValueId(NodeId=nid, AttributeId=attr) for nid in ids]
        results: list[ua.DataValue] = await client.uaclient.read(params)
        return results

    def _forget(self, nodes: Iterable[_Node]) -> list[ua.NodeId]:
        """Stop reading ``nodes``: the node ids no alias reads any more."""
        gone = {id(n) for n in nodes}
        dropped: list[ua.NodeId] = []
        for nid, targets in list(self._present.items()):
            kept = tuple(t for t in targets if id(t) not in gone)
            if len(kept) == len(targets):
                continue
            if kept:
                self._present[nid] = kept
            else:
                del self._present[nid]
                dropped.append(nid)
        self._present_version += 1
        return dropped

    def _count_present(self) -> int:
        return sum(len(v) for v in self._present.values())

    def _tag_failed(self, node: _Node, message: str) -> None:
        """A node that cannot be read at all: recorded, warned about once, one BAD row."""
        self.status.tag_errors[node.alias] = message
        self._failed.append(node)
        if node.alias not in self._warned:
            self._warned.add(node.alias)
            log.warning("%s: %s; alias %s gets BAD quality", self.where, message, node.alias)

    def _add_failed_rows(self, builder: SampleBuilder) -> None:
        now = self.clock.time_ns()
        for node in self._failed:
            builder.add(node.alias, now, None, Quality.BAD, node.forced)
        self._failed = []

    def _report(self, done: Converted, layout: _Layout) -> None:
        """Tag errors of a converted batch: set when a tag turns BAD (logged once), cleared when it reads
        again."""
        tag_errors = self.status.tag_errors
        nodes = layout.nodes
        failed: set[int] = set()
        for bad, error in done.errors:
            node = nodes[bad]
            failed.add(bad)
            if node.alias not in tag_errors:  # logged when a tag turns bad, not for every value
                log.warning("%s: node %s: %s; alias %s gets BAD quality", self.where, node.node_id, error,
                            node.alias)
            tag_errors[node.alias] = f"node {node.node_id}: {error}"
        if len(tag_errors) > len(failed):
            index = layout.index
            candidates = [t for a in tag_errors if (t := index.get(a)) is not None and t not in failed]
            if candidates:
                for good in np.asarray(candidates)[np.isin(candidates, done.targets)].tolist():
                    tag_errors.pop(nodes[good].alias, None)

    def _failure(self, what: str) -> ConnectorError:
        """The error of this source: the message starts with :attr:`where`, the attributes carry it."""
        return ConnectorError(f"{self.where}: {what}", source=self.name, endpoint=self.config.endpoint)

    def _error(self, what: str) -> ConnectorError:
        """A failure, recorded as the source's last error."""
        error = self._failure(what)
        self.status.last_error = str(error)
        return error

    async def _on_connection_lost(self, exc: Exception) -> None:
        self._set_lost(f"connection lost: {_describe(exc)}")

    def _set_lost(self, what: str) -> None:
        if self._lost is None:
            self._lost = self._error(what)
            self._lost_event.set()
            log.warning("%s", self._lost)

    async def _unless_lost(self, work: Awaitable[R]) -> R:
        """``work``, abandoned (IO error) as soon as the connection is known to be lost: a poll waiting
        on a hung server ends at the keep-alive's verdict, not at the request timeout."""
        task = asyncio.ensure_future(work)
        lost = asyncio.ensure_future(self._lost_event.wait())
        try:
            await asyncio.wait((task, lost), return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise ConnectionError("connection lost")
        return task.result()


class OpcUaPollingConnector(OpcUaConnector, PollingConnector):
    """Mode ``poll``: every poll() reads all present nodes, one Read call per chunk."""

    _poll_layout: tuple[int, _Layout] | None = None  # the layout of a _present_version

    async def poll(self) -> pa.RecordBatch:
        client = self._client
        if client is None:
            raise self._failure("not open")
        if self._lost is not None:
            raise self._lost
        try:
            if self._browse_due():
                added, vanished = await self._browse(client)
                self._forget(vanished)
                await self._check_nodes(client, added)
        except _IO_ERRORS as exc:
            self._set_lost(f"browse failed: {_describe(exc)}")
            assert self._lost is not None
            raise self._lost from exc
        ids = list(self._present)
        received = self.clock.time_ns()
        results: list[ua.DataValue] = []
        try:
            for chunk in _chunks(ids, self._chunk):
                results.extend(await self._unless_lost(
                    self._read(client, chunk, ua.AttributeIds.Value, ua.TimestampsToReturn.Both)))
        except _IO_ERRORS as exc:
            if self._lost is not None:
                raise self._lost from exc
            self._set_lost(f"read failed: {_describe(exc)}")
            assert self._lost is not None
            raise self._lost from exc
        builder = SampleBuilder()
        self._add_failed_rows(builder)
        if self._poll_layout is None or self._poll_layout[0] != self._present_version:
            self._poll_layout = (self._present_version, _Layout.build([self._present[nid] for nid in ids]))
        layout = self._poll_layout[1]
        done = to_batch(results, np.arange(len(results)), layout.targets, self.config.timestamp, received)
        self._report(done, layout)
        batch = _concat([builder.build(), done.batch])
        self.status.record_batch(batch, self.clock.time())
        return batch


class OpcUaStreamingConnector(OpcUaConnector, StreamingConnector):
    """Mode ``subscribe``: one subscription; each publish notification becomes one batch.

    Each publish response's data changes are converted at once, as columns (:mod:`.columns`), and a
    flush is scheduled right after the response. Flushed batches wait in a bounded queue; when it is
    full the batches stay pending (one larger batch later), up to ``max_buffered_rows``, past which
    new rows are dropped and counted in ``status.values_dropped``.
    """

    def __init__(self, config: OpcUaSource, clock: Clock = SYSTEM_CLOCK, *, queue_batches: int = 64,
                 max_buffered_rows: int = 100_000) -> None:
        super().__init__(config, clock)
        self.max_buffered_rows = max_buffered_rows
        self._queue: asyncio.Queue[pa.RecordBatch | None] = asyncio.Queue(maxsize=queue_batches)
        self._builder = SampleBuilder()  # the BAD rows of failed nodes
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._flush_scheduled = False
        self._subscription: Subscription | None = None
        self._handles: dict[ua.NodeId, int] = {}  # monitored item ids, to delete vanished ones
        self._slot_of: dict[ua.NodeId, int] = {}  # node id -> its monitored item's client handle
        self._slots: list[tuple[_Node, ...]] = []  # client handle -> the aliases it feeds
        self._layout = _Layout.build([])
        self._browser: asyncio.Task[None] | None = None

    _read_node_class = False

    async def _prepare(self, client: Client) -> None:
        self._queue = asyncio.Queue(maxsize=self._queue.maxsize)
        self._builder = SampleBuilder()
        self._pending, self._pending_rows = [], 0
        self._add_failed_rows(self._builder)
        self._schedule_flush()
        self._subscription = await _create_subscription(client, self.config.interval * 1000.0, self)
        self._handles, self._slot_of, self._slots = {}, {}, []
        self._layout = _Layout.build([])
        await self._monitor(list(self._present))
        if self._rules is not None and self.config.browse is not None and self.config.browse.interval > 0:
            self._browser = asyncio.create_task(self._browse_loop(client), name=f"opcua-browse-{self.name}")

    async def _monitor(self, ids: Sequence[ua.NodeId]) -> None:
        """One data-change monitored item per node id, MaxMonitoredItemsPerCall at a time, a few calls in
        flight. The client handle of each is its slot in the layout."""
        sub = self._subscription
        assert sub is not None
        requests = []
        for nid in ids:
            self._slot_of[nid] = len(self._slots)
            requests.append(_item_request(nid, len(self._slots), self.config.interval * 1000.0))
            self._slots.append(self._present[nid])
        self._relayout()  # before the first notification can arrive
        chunks = list(_chunks(requests, self._item_chunk))
        results: list[list[int | ua.StatusCode]] = []
        for start in range(0, len(chunks), CALLS_IN_FLIGHT):
            in_flight = chunks[start:start + CALLS_IN_FLIGHT]
            results += await asyncio.gather(*(sub.create_monitored_items(c) for c in in_flight))
        failed = False
        for nid, handle in zip(ids, (h for r in results for h in r), strict=True):
            if isinstance(handle, ua.StatusCode):
                self._slots[self._slot_of.pop(nid)] = ()
                for node in self._present.pop(nid):
                    self._tag_failed(node, _not_monitored(node, handle))
                failed = True
            else:
                self._handles[nid] = handle
        if failed:
            self._present_version += 1
            self._relayout()
        if self._failed:
            self._add_failed_rows(self._builder)
            self._schedule_flush()

    def _relayout(self) -> None:
        """The slots -> the arrays to_batch reads (after nodes were added or forgotten)."""
        for nid, slot in self._slot_of.items():
            self._slots[slot] = self._present.get(nid, ())
        self._layout = _Layout.build(self._slots)

    async def _browse_loop(self, client: Client) -> None:
        """Browse again every ``browse.interval``: subscribe the new variables, unsubscribe the vanished."""
        assert self.config.browse is not None
        while True:
            await asyncio.sleep(max(0.0, self._next_browse - self.clock.monotonic()))
            try:
                added, vanished = await self._browse(client)
                dropped = self._forget(vanished)
                handles = [h for nid in dropped if (h := self._handles.pop(nid, None)) is not None]
                for nid in dropped:
                    if (slot := self._slot_of.pop(nid, None)) is not None:
                        self._slots[slot] = ()
                self._relayout()
                if handles and self._subscription is not None:
                    for chunk in _chunks(handles, self._item_chunk):
                        await self._subscription.unsubscribe(list(chunk))
                before = set(self._present)
                await self._check_nodes(client, added)
                await self._monitor([nid for nid in self._present if nid not in before])
            except _IO_ERRORS as exc:
                self._set_lost(f"browse failed: {_describe(exc)}")
                return

    async def close(self) -> None:
        self._subscription = None
        browser, self._browser = self._browser, None
        if browser is not None:
            browser.cancel()
            await asyncio.gather(browser, return_exceptions=True)
        await super().close()
        try:
            self._queue.put_nowait(None)  # wake a waiting stream(): it ends
        except asyncio.QueueFull:
            pass

    async def stream(self) -> AsyncIterator[pa.RecordBatch]:
        """Batches until the connection is lost (ConnectorError) or the connector is closed (the end)."""
        if self._client is None:
            raise self._failure("not open")
        queue = self._queue
        while True:
            if self._client is None or queue is not self._queue:
                return  # closed, or re-opened with a new queue
            if queue.empty():
                self._flush()
            if queue.empty() and self._lost is not None:
                raise self._lost
            batch = await queue.get()
            if batch is None:  # a wake-up: the connection is lost or the connector closed
                continue
            self.status.record_batch(batch, self.clock.time())
            yield batch

    # --- called by the subscription ------------------------------------------------------

    def on_data_changes(self, items: Sequence[ua.MonitoredItemNotification]) -> None:
        """The data changes of one publish response -> one batch (columnar: no per-value Python call)."""
        received = self.clock.time_ns()
        slots = np.fromiter([item.ClientHandle for item in items], np.int64, len(items))
        layout = self._layout
        done = to_batch([item.Value for item in items], slots, layout.targets, self.config.timestamp, received)
        self.status.values_dropped += done.dropped  # a late notification for a node no longer monitored
        if done.errors or self.status.tag_errors:
            self._report(done, layout)
        if done.batch.num_rows:
            self._pending.append(done.batch)
            self._pending_rows += done.batch.num_rows
            self._schedule_flush()

    def on_status_change(self, status: ua.StatusChangeNotification) -> None:
        code = status.Status
        if code is not None and not code.is_good():
            self._set_lost(f"subscription ended ({status_name(code)})")

    def _set_lost(self, what: str) -> None:
        super()._set_lost(what)
        try:
            self._queue.put_nowait(None)
        except asyncio.QueueFull:
            pass  # stream() is not waiting: it checks for the error once the queue is drained

    def _schedule_flush(self) -> None:
        # call_soon runs after the callbacks asyncua already scheduled for the same notification.
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if len(self._builder):
            failed = self._builder.build()
            self._pending.insert(0, failed)
            self._pending_rows += failed.num_rows
        rows = self._pending_rows
        if not rows:
            return
        if self._queue.full():
            if rows > self.max_buffered_rows:
                self.status.values_dropped += rows
                self._pending, self._pending_rows = [], 0
                log.warning("%s: consumer too slow, dropped %d values (%d in total)", self.where, rows,
                            self.status.values_dropped)
            return
        batches, self._pending, self._pending_rows = self._pending, [], 0
        self._queue.put_nowait(_concat(batches))


def _not_monitored(node: _Node, code: ua.StatusCode) -> str:
    name = status_name(code)
    if name == "BadNodeIdUnknown":
        return f"node {node.node_id} does not exist ({name})"
    if name == "BadAttributeIdInvalid":  # a Value attribute is what a variable has
        return f"node {node.node_id} is not a variable ({name})"
    return f"node {node.node_id} cannot be monitored ({name})"


class _Subscription(Subscription):
    """asyncua's subscription, handing each publish response's data changes to the connector at once
    (asyncua's own path makes a task and a handler call per value). Status changes go its usual way."""

    def __init__(self, client: Client, params: ua.CreateSubscriptionParameters,
                 connector: OpcUaStreamingConnector) -> None:
        super().__init__(client.uaclient.session, params, _Handler(connector))
        self._connector = connector

    async def publish_callback(self, publish_result: ua.PublishResult) -> None:
        message = publish_result.NotificationMessage
        if message.NotificationData:
            rest = []
            for notification in message.NotificationData:
                if isinstance(notification, ua.DataChangeNotification):
                    if notification.MonitoredItems:
                        self._connector.on_data_changes(notification.MonitoredItems)
                else:
                    rest.append(notification)
            message.NotificationData = rest
        await super().publish_callback(publish_result)  # keep-alive time, sequence number, status changes


async def _create_subscription(client: Client, period_ms: float, connector: OpcUaStreamingConnector) -> Subscription:
    """``client.create_subscription`` (the same parameters), with :class:`_Subscription`."""
    params = ua.CreateSubscriptionParameters()
    params.RequestedPublishingInterval = period_ms
    params.RequestedLifetimeCount = 10000
    params.RequestedMaxKeepAliveCount = client.get_keepalive_count(period_ms)
    params.MaxNotificationsPerPublish = 10000
    params.PublishingEnabled = True
    params.Priority = 0
    subscription = _Subscription(client, params, connector)
    results = await subscription.init()
    revised = client.get_subscription_revised_params(params, results)
    if revised:
        await subscription.update(revised)
    client._subscriptions.append(subscription)  # as create_subscription: asyncua's stale-subscription watchdog
    return subscription


def _item_request(nid: ua.NodeId, handle: int, sampling_ms: float) -> ua.MonitoredItemCreateRequest:
    """A data-change monitored item on ``nid``'s value, reported under client handle ``handle``."""
    params = ua.MonitoringParameters()
    params.ClientHandle = ua.UInt32(handle)
    params.SamplingInterval = ua.Double(sampling_ms)
    params.QueueSize = ua.UInt32(1)
    params.DiscardOldest = True
    request = ua.MonitoredItemCreateRequest()
    request.ItemToMonitor = ua.ReadValueId(NodeId=nid, AttributeId=ua.AttributeIds.Value)
    request.MonitoringMode = ua.MonitoringMode.Reporting
    request.RequestedParameters = params
    return request


class _Handler:
    """asyncua's subscription handler protocol: status changes, forwarded to the connector."""

    def __init__(self, connector: OpcUaStreamingConnector) -> None:
        self._connector = connector

    def status_change_notification(self, status: ua.StatusChangeNotification) -> None:
        self._connector.on_status_change(status)


def make_opcua_connector(config: OpcUaSource,
                         clock: Clock = SYSTEM_CLOCK) -> OpcUaStreamingConnector | OpcUaPollingConnector:
    """The connector for a source's mode (``subscribe`` or ``poll``)."""
    if config.mode == "poll":
        return OpcUaPollingConnector(config, clock)
    return OpcUaStreamingConnector(config, clock)


# --- pure helpers ---------------------------------------------------------------------


def _concat(batches: Sequence[pa.RecordBatch]) -> pa.RecordBatch:
    """One batch of ``batches`` (each stream column with its own dictionary)."""
    batches = [b for b in batches if b.num_rows] or list(batches[:1])
    if len(batches) == 1:
        return batches[0]
    return pa.Table.from_batches(batches).unify_dictionaries().combine_chunks().to_batches()[0]


def _chunks(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _limit(value: object) -> int:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) and value > 0 else DEFAULT_CHUNK


def _parse_node_id(text: str, namespaces: list[str] | None) -> ua.NodeId:
    """``ns=2;s=X``, ``i=2258`` or ``nsu=<uri>;s=X`` (resolved against the server's namespace array)."""
    try:
        nid = ua.NodeId.from_string(text)
    except (ValueError, ua.UaError, IndexError, KeyError) as exc:
        raise ValueError(str(exc) or "malformed") from None
    if isinstance(nid, ua.ExpandedNodeId) and nid.NamespaceUri:
        if not namespaces or nid.NamespaceUri not in namespaces:
            raise ValueError(f"namespace {nid.NamespaceUri!r} is not on the server")
        nid = ua.NodeId(nid.Identifier, ua.Int16(namespaces.index(nid.NamespaceUri)), nid.NodeIdType)
    return nid


def _good(dv: ua.DataValue) -> bool:
    return dv.StatusCode is None or dv.StatusCode.is_good()  # no status code: Good (OPC UA Part 4)


def _describe(exc: BaseException) -> str:
    """A short, human message for an asyncua or socket error."""
    if isinstance(exc, ua.UaStatusCodeError):
        return f"{status_name(exc.code)}"
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


__all__ = [
    "OpcUaConnector",
    "OpcUaPollingConnector",
    "OpcUaStreamingConnector",
    "make_opcua_connector",
]
