"""The I/O loop: one connection (TCP, RTU over TCP, or a serial line), the devices behind it,
their poll groups on their own intervals, and one sample batch per poll group and poll.

One request is outstanding on the connection at a time (pymodbus's client serialises them),
with at least a device's ``pause`` between two requests to that device. Errors, by reach:

* a Modbus exception answer (illegal address, device busy, ...) fails the tags of that request
  alone: null value, BAD quality, the reason in ``status.tag_errors``. A merged request refused
  with exception 2 or 3 is bisected until the bad tags are isolated; the good halves stay merged,
  and the plan keeps what it learned;
* a value that does not decode (a uint64 past the integer column, bytes that are not UTF-8)
  fails that tag alone, the same way;
* a device that does not answer within ``timeout`` (after ``retries``), or that a gateway reports
  absent (exception 10, 11), is *down*: every tag of it goes BAD at once, one warning is logged,
  and it is polled again after a back-off that doubles up to ``max_backoff``; the other devices
  go on. When it answers again, one info line says so;
* a lost connection, or every device down, marks every tag BAD and raises
  :class:`~sitewise_edge.errors.ConnectorError`: the runtime closes, waits and opens again.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.pdu import ModbusPDU

from connectors.base import StreamingConnector
from connectors.modbus.config import ModbusSource
from connectors.modbus.decode import Decoder
from connectors.modbus.plan import GroupPlan, ReadRequest, bisect, plan_source, rejoin
from connectors.modbus.report import ReportFilter
from connectors.modbus.status import DeviceStatus, ModbusStatus
from sitewise_edge.clock import SYSTEM_CLOCK, Clock
from sitewise_edge.errors import ConnectorError
from sitewise_edge.samples import STREAM_TYPE, Quality, from_columns

log = logging.getLogger(__name__)

EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    7: "negative acknowledge",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}
BISECT_ON = frozenset({2, 3})
"""Exception codes after which a merged request is bisected (devices that refuse to read unmapped registers)."""
DEVICE_ABSENT = frozenset({10, 11})
"""Exception codes that say the device itself is not there (a TCP gateway's answer for a silent unit)."""

Client = AsyncModbusTcpClient | AsyncModbusSerialClient


class _RepeatedByUs(logging.Filter):
    """Drops pymodbus's own line for every request without an answer (ERROR, each time): the connector
    reports a device that does not answer once, with the device, unit and registers."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("No response received after") or "No response received of the last" in message
                    or message.startswith("ERROR: No response received"))


_PYMODBUS_FILTER = _RepeatedByUs()


class DeviceDown(Exception):
    """A device did not answer (or its gateway says it is absent): internal to this module."""

    def __init__(self, reason: str, kind: str) -> None:
        super().__init__(reason)
        self.kind = kind


class _Group:
    """One poll group of one device: its requests (the plan, refined by bisection), decoder and schedule."""

    def __init__(self, plan: GroupPlan, interval: float, deadband: float | None, heartbeat: float | None) -> None:
        self.plan = plan
        self.device = plan.device
        self.interval = interval
        self.requests: tuple[ReadRequest, ...] = plan.requests
        self.decoder = Decoder(plan.tags, self.requests, plan.device.byte_order)
        self.aliases = [t.alias for t in plan.tags]
        self.streams = pa.array(self.aliases, pa.string()).dictionary_encode().cast(STREAM_TYPE)
        self.report = ReportFilter([t.deadband if t.deadband is not None else deadband for t in plan.tags],
                                   heartbeat)
        self.due = 0.0
        self.failing: set[int] = set()
        """Rows whose tag has an error (in ``status.tag_errors``)."""
        self.quiet = False
        """The errors of ``failing`` are those of a device down (logged once for the device, not per tag)."""

    def replan(self, requests: Sequence[ReadRequest]) -> None:
        self.requests = tuple(requests)
        self.decoder = Decoder(self.plan.tags, self.requests, self.device.byte_order)


class ModbusConnector(StreamingConnector):
    """Polls the devices of one :class:`~connectors.modbus.config.ModbusSource` over one connection.

    The request plan is computed here, without I/O.
    """

    def __init__(self, config: ModbusSource, clock: Clock = SYSTEM_CLOCK) -> None:
        self.config = config
        self.clock = clock
        self.name = config.name
        pymodbus_log = logging.getLogger("pymodbus.logging")
        if _PYMODBUS_FILTER not in pymodbus_log.filters:
            pymodbus_log.addFilter(_PYMODBUS_FILTER)
        self.plans = plan_source(config)
        groups = config.groups()
        self.groups = [_Group(p, groups[p.group].interval, groups[p.group].deadband, groups[p.group].heartbeat)
                       for p in self.plans]
        self.status: ModbusStatus = ModbusStatus(clock=clock)
        for device in config.device_list():
            self.status.devices[device.name] = DeviceStatus(device.unit_id)
        self._endpoint = config.endpoint()
        self._client: Client | None = None
        self._inflight: asyncio.Future[Any] | None = None
        self._lost = False

    @property
    def requests(self) -> list[ReadRequest]:
        """Every request of one round of polls (all groups), as currently planned."""
        return [r for g in self.groups for r in g.requests]

    # --- life cycle --------------------------------------------------------------------

    def _make_client(self) -> Client:
        cfg = self.config
        common: dict[str, Any] = {
            "timeout": cfg.timeout,
            "retries": cfg.retries,
            "reconnect_delay": 0,  # the runtime owns reconnects
            "name": f"modbus:{self.name}",
            "trace_connect": self._on_connection,
        }
        if cfg.transport == "serial":
            line = cfg.serial
            assert line is not None  # checked by the configuration model
            return AsyncModbusSerialClient(line.port, framer=FramerType.RTU, baudrate=line.baudrate,
                                           parity=line.parity, stopbits=line.stopbits, bytesize=line.bytesize,
                                           **common)
        framer = FramerType.RTU if cfg.transport == "rtu_over_tcp" else FramerType.SOCKET
        return AsyncModbusTcpClient(str(cfg.host), port=cfg.port, framer=framer, **common)

    async def open(self) -> None:
        """Connect; raises ConnectorError naming the source and endpoint when that fails."""
        await self.close()
        self._lost = False
        client = self._make_client()
        try:
            connected = await client.connect()
        except (ModbusException, OSError) as exc:
            connected, reason = False, str(exc)
        else:
            reason = (f"cannot open {self._endpoint}" if self.config.transport == "serial"
                      else f"connection refused or no answer within {self.config.timeout:g} s")
        if not connected:
            client.close()
            raise self._fail(f"cannot connect to {self._endpoint} ({reason})")
        self._client = client
        self.status.last_error = None
        start = self.clock.monotonic()
        for k, g in enumerate(self.groups):  # staggered: groups start spread over their interval
            g.due = start + g.interval * k / len(self.groups)
        for d in self.status.devices.values():
            d.retry_at = 0.0
        log.info("modbus source %r connected to %s (%s), %d devices, %d requests per round",
                 self.name, self._endpoint, self.config.transport, len(self.status.devices), len(self.requests))

    async def close(self) -> None:
        """Disconnect; never raises."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.close()
        except (ModbusException, OSError) as exc:
            log.debug("modbus source %r: error while closing: %s", self.name, exc)

    # --- polling -----------------------------------------------------------------------

    async def stream(self) -> AsyncIterator[pa.RecordBatch]:
        """Poll every group when it is due; a batch per poll (the rows report-by-exception lets through)."""
        if self._client is None:
            raise ConnectorError(f"modbus source {self.name!r}: stream() before open()", source=self.name,
                                 endpoint=self._endpoint)
        while True:
            group = min(self.groups, key=self._due)
            delay = self._due(group) - self.clock.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                batches = await self.poll_group(group)
            except ConnectorError as exc:
                for d in self.status.devices.values():
                    d.state = "disconnected"
                    d.last_error = str(exc)
                yield self._bad_rows(self.groups, str(exc))
                raise
            for batch in batches:
                if batch.num_rows:
                    yield batch
            now = self.clock.monotonic()
            group.due += group.interval
            if group.due <= now:  # overrun: skip missed ticks rather than bursting
                group.due += group.interval * math.ceil((now - group.due) / group.interval)
            if all(d.state == "down" for d in self.status.devices.values()):
                reasons = "; ".join(f"{n}: {d.last_error}" for n, d in self.status.devices.items())
                raise self._fail(f"no device answers on {self._endpoint} ({reasons})")

    def _due(self, group: _Group) -> float:
        return max(group.due, self.status.devices[group.device.name].retry_at)

    async def poll_group(self, group: _Group) -> list[pa.RecordBatch]:
        """Read one poll group once: its batch, or the BAD rows of every group of its device when it is down."""
        client = self._client
        if client is None:
            raise ConnectorError(f"modbus source {self.name!r}: poll before open()", source=self.name,
                                 endpoint=self._endpoint)
        device = self.status.devices[group.device.name]
        now_ns = self.clock.time_ns()
        answers: list[tuple[ReadRequest, Sequence[int] | Sequence[bool] | None, str | None]] = []
        learned: list[ReadRequest] = []
        try:
            for request in group.requests:
                parts = await self._read_or_bisect(client, group, request)
                answers.extend(parts)
                learned.extend(rejoin([(r, d is not None) for r, d, _ in parts]) if len(parts) > 1 else [request])
        except DeviceDown as exc:
            return self._device_down(group, device, str(exc), exc.kind)
        requests = [a[0] for a in answers]
        if tuple(requests) != group.requests:
            group.replan(requests)  # this poll's answers
        decoder = group.decoder
        registers = np.zeros(decoder.registers, dtype=np.uint16)
        bits = np.zeros(decoder.bits, dtype=np.bool_)
        failed = np.zeros(decoder.n, dtype=np.bool_)
        errors: dict[int, str] = {}
        for k, (request, data, error) in enumerate(answers):
            base = decoder.base[k]
            if data is None:
                for s in request.slots:
                    failed[s.index] = True
                    errors[s.index] = str(error)
            elif request.is_bits:
                bits[base : base + request.count] = data[: request.count]
            else:
                registers[base : base + request.count] = data
        decoded = decoder.decode(registers, bits, failed)
        for row, message in decoded.errors.items():
            tag = group.plan.tags[row]
            table, address = tag.location()
            errors[row] = f"{tag.type} at {table} {address} of unit {group.device.unit_id}: {message}"
            device.errors["decode"] += 1
        quality = np.zeros(decoder.n, dtype=np.int8)
        if errors:
            quality[list(errors)] = int(Quality.BAD)
        self._tag_errors(group, errors, log_changes=True)
        self._device_up(group, device, read_any=len(errors) < decoder.n)  # it answered, if only with exceptions
        mono = self.clock.monotonic()
        report = group.report.select(decoded.double, decoded.integer, decoded.string, decoded.boolean, quality, mono)
        batch = from_columns(group.streams, np.full(decoder.n, now_ns, dtype=np.int64), double=decoded.double,
                             integer=decoded.integer, string=decoded.string, boolean=decoded.boolean,
                             quality=pa.array(quality, pa.int8()))
        if not report.all():
            batch = batch.filter(pa.array(report))
        self.status.record_batch(batch, self.clock.time())
        if tuple(learned) != group.requests:
            group.replan(learned)  # the next polls': the bad ranges isolated, the rest merged again
            log.info("modbus source %r: device %r group %r reads %s from now on", self.name, group.device.name,
                     group.plan.group, ", ".join(r.describe() for r in learned))
        return [batch]

    async def _read_or_bisect(
        self, client: Client, group: _Group, request: ReadRequest
    ) -> list[tuple[ReadRequest, Sequence[int] | Sequence[bool] | None, str | None]]:
        """Read one request; when the device refuses a merged one as an illegal address, bisect it.
        Returns the requests read, each with its answer or its error."""
        data, code, error = await self._read(client, group, request)
        if code not in BISECT_ON or len(request.slots) == 1:
            return [(request, data, error)]
        parts = bisect(request)
        log.info("modbus source %r: device %r refused %s with exception %d; reading it as %s",
                 self.name, group.device.name, request.describe(), code, " and ".join(p.describe() for p in parts))
        out: list[tuple[ReadRequest, Sequence[int] | Sequence[bool] | None, str | None]] = []
        for part in parts:
            out.extend(await self._read_or_bisect(client, group, part))
        return out

    async def _read(
        self, client: Client, group: _Group, request: ReadRequest
    ) -> tuple[Sequence[int] | Sequence[bool] | None, int | None, str | None]:
        """(answer, None, None), or (None, exception code, message) for an exception answer or a short answer."""
        device = self.status.devices[group.device.name]
        pause = group.device.pause
        if pause > 0:
            wait = device.last_end + pause - self.clock.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        try:
            response = await self._execute(client, request)
        finally:
            device.last_end = self.clock.monotonic()
            device.count_request(device.last_end)
        where = f"{request.describe()} of unit {request.unit_id}"
        if response.isError():
            code = int(getattr(response, "exception_code", 0))
            name = EXCEPTION_NAMES.get(code, "unknown exception")
            message = f"{name} (exception {code}) reading {where}"
            device.errors[name] += 1
            if code in DEVICE_ABSENT:
                raise DeviceDown(message, name)
            return None, code, message
        data: Sequence[int] | Sequence[bool] = response.bits[: request.count] if request.is_bits \
            else response.registers
        if len(data) < request.count:
            device.errors["short answer"] += 1
            return None, None, f"device answered {len(data)} values for {where}, expected {request.count}"
        return data, None, None

    async def _execute(self, client: Client, request: ReadRequest) -> ModbusPDU:
        """One read; a lost connection becomes ConnectorError, no answer DeviceDown."""
        if self._lost or not client.connected:
            raise self._fail(f"connection to {self._endpoint} lost")
        read = {
            "holding": client.read_holding_registers,
            "input": client.read_input_registers,
            "coil": client.read_coils,
            "discrete": client.read_discrete_inputs,
        }[request.table]
        where = f"{request.describe()} of unit {request.unit_id}"
        try:
            self._inflight = asyncio.ensure_future(read(request.address, count=request.count,
                                                        device_id=request.unit_id))
            return await self._inflight
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self._lost and not (current is not None and current.cancelling()):
                raise self._fail(f"connection to {self._endpoint} lost reading {where}") from None
            raise
        except ConnectionException as exc:
            raise self._fail(f"connection to {self._endpoint} lost reading {where}: {exc}") from exc
        except ModbusIOException as exc:
            if self._lost:
                raise self._fail(f"connection to {self._endpoint} lost reading {where}") from exc
            tries = self.config.retries + 1
            raise DeviceDown(f"no answer within {self.config.timeout:g} s ({tries} tries) reading {where}",
                             "timeout") from None
        except (ModbusException, OSError) as exc:
            raise self._fail(f"{where}: {exc}") from exc
        finally:
            self._inflight = None

    def _on_connection(self, connected: bool) -> None:
        """pymodbus reports a closed connection here: fail the read in flight at once, not after the timeout."""
        if connected:
            return
        self._lost = True
        if self._inflight is not None and not self._inflight.done():
            self._inflight.cancel()

    # --- device state ------------------------------------------------------------------

    def _device_down(self, group: _Group, device: DeviceStatus, reason: str, kind: str) -> list[pa.RecordBatch]:
        """Every tag of the device BAD at once; the device backed off; logged when it changes."""
        if kind == "timeout":
            device.errors["timeout"] += 1
        device.failures += 1
        fastest = min(g.interval for g in self.groups if g.device is group.device)
        backoff = min(self.config.max_backoff, fastest * 2 ** (device.failures - 1))
        device.retry_at = self.clock.monotonic() + backoff
        if device.state != "down" or device.last_error != reason:
            log.warning("modbus source %r: device %r (unit %d) is down: %s; its tags are BAD, next try in %g s",
                        self.name, group.device.name, device.unit_id, reason, backoff)
        device.state, device.last_error = "down", reason
        batch = self._bad_rows([g for g in self.groups if g.device is group.device], reason)
        return [batch]

    def _device_up(self, group: _Group, device: DeviceStatus, *, read_any: bool) -> None:
        if device.state == "down":
            log.info("modbus source %r: device %r (unit %d) answers again", self.name, group.device.name,
                     device.unit_id)
        device.state, device.failures, device.retry_at = "ok", 0, 0.0
        if read_any:
            device.last_good_poll = self.clock.time()

    def _bad_rows(self, groups: Sequence[_Group], reason: str) -> pa.RecordBatch:
        """One BAD row (null value) per tag of ``groups``; their report state and tag errors follow."""
        now_ns, mono = self.clock.time_ns(), self.clock.monotonic()
        parts = []
        for g in groups:
            n = len(g.aliases)
            quality = np.full(n, int(Quality.BAD), dtype=np.int8)
            double, integer, string, boolean = (pa.nulls(n, t) for t in (pa.float64(), pa.int64(), pa.string(),
                                                                         pa.bool_()))
            report = g.report.select(double, integer, string, boolean, quality, mono)
            self._tag_errors(g, dict.fromkeys(range(n), reason), log_changes=False)
            batch = from_columns(g.streams, np.full(n, now_ns, dtype=np.int64), quality=quality)
            parts.append(batch.filter(pa.array(report)))
        out = pa.concat_batches(parts)
        self.status.record_batch(out, self.clock.time())
        return out

    def _tag_errors(self, group: _Group, errors: dict[int, str], *, log_changes: bool) -> None:
        """Keep the current error of each failing tag of the group; log a tag when its error changes or clears."""
        tag_errors = self.status.tag_errors
        for index, message in errors.items():
            alias = group.aliases[index]
            if log_changes and tag_errors.get(alias) != message:
                log.warning("modbus source %r: tag %r: %s", self.name, alias, message)
            tag_errors[alias] = message
        for index in group.failing - errors.keys():
            alias = group.aliases[index]
            if not group.quiet:  # the tags of a device that was down: its own line says it is back
                log.info("modbus source %r: tag %r reads again", self.name, alias)
            tag_errors.pop(alias, None)
        group.failing = set(errors)
        group.quiet = not log_changes

    def _fail(self, what: str) -> ConnectorError:
        """The error of this source, recorded as its last error; the attributes carry source and endpoint."""
        error = ConnectorError(f"modbus source {self.name!r}: {what}", source=self.name, endpoint=self._endpoint)
        self.status.last_error = str(error)
        return error
