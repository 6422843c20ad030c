"""The I/O loop: read one Modbus TCP device per poll and hand over one sample batch.

Errors, by reach:

* a Modbus exception answer (illegal address, device busy, ...) fails the tags of that request
  alone: they get a null value with BAD quality and a message in ``status.tag_errors``, the
  other tags of the poll stay GOOD. A merged request refused with exception 2 or 3 is split
  into one request per tag for the rest of the connector's life (some devices refuse to read
  the unused registers between two tags);
* a value that does not decode (a uint64 past the integer column, bytes that are not UTF-8)
  fails that tag alone, the same way;
* no connection, a lost connection or no answer within ``timeout`` raises
  :class:`~sitewise_edge.errors.ConnectorError`: the runtime closes, waits and opens again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.pdu import ModbusPDU

from connectors.base import ConnectorStatus, PollingConnector
from connectors.modbus.config import ModbusSource
from connectors.modbus.decode import DecodeError, Value, check_answer, column_of, decode_slot
from connectors.modbus.plan import ReadRequest, TagSlot, plan_requests, split
from sitewise_edge.clock import SYSTEM_CLOCK, Clock
from sitewise_edge.errors import ConnectorError
from sitewise_edge.samples import STREAM_TYPE, VALUE_COLUMNS, Quality, from_columns

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
SPLIT_ON = frozenset({2, 3})
"""Exception codes after which a merged request is retried as one request per tag."""


class ModbusConnector(PollingConnector):
    """Polls the tags of one :class:`~connectors.modbus.config.ModbusSource` over Modbus TCP.

    The request plan is computed here, without I/O; a configuration it cannot serve
    raises :class:`~sitewise_edge.errors.ConfigError`.
    """

    def __init__(self, config: ModbusSource, clock: Clock = SYSTEM_CLOCK) -> None:
        self.config = config
        self.clock = clock
        self.name = config.name
        self.interval = config.interval
        self.status = ConnectorStatus()
        self.plan = plan_requests(config.tags, source=f"source {config.name!r}")
        self.requests: list[ReadRequest] = list(self.plan)
        """The requests of the next poll: the plan, with the merged requests the device refused split."""
        self._aliases = [t.alias for t in config.tags]
        self._streams = pa.array(self._aliases, pa.string()).dictionary_encode().cast(STREAM_TYPE)
        self._columns = [column_of(t) for t in config.tags]
        self._endpoint = f"{config.host}:{config.port}"
        self._client: AsyncModbusTcpClient | None = None
        self._inflight: asyncio.Future[Any] | None = None
        self._lost = False

    # --- life cycle --------------------------------------------------------------------

    async def open(self) -> None:
        """Connect; raises ConnectorError naming the source and endpoint when the device does not answer."""
        await self.close()
        self._lost = False
        self.requests = list(self.plan)  # a device may accept again what it refused before a restart
        client = AsyncModbusTcpClient(
            self.config.host,
            port=self.config.port,
            timeout=self.config.timeout,
            retries=0,  # the runtime owns retries and back-off
            reconnect_delay=0,  # ... and reconnects
            name=f"modbus:{self.name}",
            trace_connect=self._on_connection,
        )
        try:
            connected = await client.connect()
        except (ModbusException, OSError) as exc:
            connected, reason = False, str(exc)
        else:
            reason = f"connection refused or no answer within {self.config.timeout:g} s"
        if not connected:
            client.close()
            raise self._fail(f"cannot connect to {self._endpoint} ({reason})")
        self._client = client
        self.status.last_error = None
        log.info("modbus source %r connected to %s, unit %d, %d requests per poll",
                    self.name, self._endpoint, self.config.unit_id, len(self.requests))

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

    async def poll(self) -> pa.RecordBatch:
        """Read every tag once: one row per tag, in configuration order, stamped with the poll's start."""
        client = self._client
        if client is None:
            raise ConnectorError(f"modbus source {self.name!r}: poll() before open()", source=self.name,
                                 endpoint=self._endpoint)
        now_ns = self.clock.time_ns()
        n = len(self._aliases)
        values: list[Value | None] = [None] * n
        quality = [int(Quality.GOOD)] * n
        errors: dict[int, str] = {}
        planned: list[ReadRequest] = []
        for request in self.requests:
            planned.extend(await self._read_or_split(client, request, values, errors))
        self.requests = planned
        for index in errors:
            quality[index] = int(Quality.BAD)
        self._update_tag_errors(errors)
        batch = self._build(now_ns, values, quality)
        self.status.record_batch(batch, self.clock.time())
        return batch

    async def _read_or_split(
        self, client: AsyncModbusTcpClient, request: ReadRequest, values: list[Value | None], errors: dict[int, str]
    ) -> list[ReadRequest]:
        """Read one request; when the device refuses a merged one, read its parts. Returns what to read next poll."""
        failed = await self._read_into(client, request, values, errors)
        if failed not in SPLIT_ON or len(request.slots) == 1:
            return [request]
        parts = split(request)
        if len(parts) == 1:
            parts = split(request, per_tag=True)
        log.info("modbus source %r: %s refused with exception %d, reading it as %d requests from now on",
                    self.name, request.describe(), failed, len(parts))
        for slot in request.slots:
            errors.pop(slot.index, None)
        kept: list[ReadRequest] = []
        for part in parts:
            kept.extend(await self._read_or_split(client, part, values, errors))
        return kept

    async def _read_into(
        self, client: AsyncModbusTcpClient, request: ReadRequest, values: list[Value | None], errors: dict[int, str]
    ) -> int | None:
        """Read one request and decode its tags into ``values``; returns the Modbus exception code, if any."""
        response = await self._execute(client, request)
        if response.isError():
            code = int(getattr(response, "exception_code", 0))
            message = (f"{EXCEPTION_NAMES.get(code, 'unknown exception')} (exception {code}) "
                       f"reading {request.describe()} of unit {self.config.unit_id}")
            for slot in request.slots:
                errors[slot.index] = message
            return code
        data: Sequence[int] | Sequence[bool] = response.bits if request.is_bits else response.registers
        try:
            check_answer(request, data)
        except DecodeError as exc:
            for slot in request.slots:
                errors[slot.index] = f"{exc} (unit {self.config.unit_id})"
            return None
        for slot in request.slots:
            try:
                values[slot.index] = decode_slot(slot, data)
            except DecodeError as exc:
                errors[slot.index] = f"{_where(slot)}: {exc}"
        return None

    async def _execute(self, client: AsyncModbusTcpClient, request: ReadRequest) -> ModbusPDU:
        """One read; a lost connection or a silent device becomes ConnectorError."""
        if self._lost or not client.connected:
            raise self._fail(f"connection to {self._endpoint} lost")
        read = {
            "holding": client.read_holding_registers,
            "input": client.read_input_registers,
            "coil": client.read_coils,
            "discrete": client.read_discrete_inputs,
        }[request.table]
        try:
            # pymodbus raises ConnectionException from the call itself when the transport is gone
            self._inflight = asyncio.ensure_future(read(request.address, count=request.count,
                                                        device_id=self.config.unit_id))
            return await self._inflight
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self._lost and not (current is not None and current.cancelling()):
                raise self._fail(f"connection to {self._endpoint} lost reading {request.describe()}") from None
            raise
        except (ModbusException, OSError) as exc:  # OSError covers TimeoutError
            raise self._fail(f"{request.describe()} of unit {self.config.unit_id}: {exc}") from exc
        finally:
            self._inflight = None

    def _on_connection(self, connected: bool) -> None:
        """pymodbus reports a closed connection here: fail the read in flight at once, not after the timeout."""
        if connected:
            return
        self._lost = True
        if self._inflight is not None and not self._inflight.done():
            self._inflight.cancel()

    # --- helpers -----------------------------------------------------------------------

    def _build(self, now_ns: int, values: list[Value | None], quality: list[int]) -> pa.RecordBatch:
        columns: dict[str, list[Any]] = {c: [None] * len(values) for c in VALUE_COLUMNS}
        for i, (column, value) in enumerate(zip(self._columns, values, strict=True)):
            columns[column][i] = value
        return from_columns(self._streams, np.full(len(values), now_ns, dtype=np.int64), quality=quality, **columns)

    def _update_tag_errors(self, errors: dict[int, str]) -> None:
        """Keep the current error of each failing tag; log a tag when its error changes or clears."""
        tag_errors = self.status.tag_errors
        for index, message in errors.items():
            alias = self._aliases[index]
            if tag_errors.get(alias) != message:
                log.warning("modbus source %r: tag %r: %s", self.name, alias, message)
            tag_errors[alias] = message
        failing = {self._aliases[i] for i in errors}
        for alias in [a for a in tag_errors if a not in failing]:
            log.info("modbus source %r: tag %r reads again", self.name, alias)
            del tag_errors[alias]

    def _fail(self, what: str) -> ConnectorError:
        """The error of this source, recorded as its last error; the attributes carry source and endpoint."""
        error = ConnectorError(f"modbus source {self.name!r}: {what}", source=self.name, endpoint=self._endpoint)
        self.status.last_error = str(error)
        return error


def _where(slot: TagSlot) -> str:
    tag = slot.tag
    return f"{tag.type} at {tag.table} {tag.address}"
