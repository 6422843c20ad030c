"""A Modbus simulator serving the simulated plant of :mod:`sitewise_edge.simulators.plant`.

    sim = ModbusSimulator(port=0)          # 0: any free port, read back from sim.port
    await sim.start()
    ...
    await sim.stop()

Modbus TCP by default; ``framer="rtu"`` serves RTU frames over TCP (a serial-to-Ethernet server),
``serial_port="/dev/ttyUSB1"`` serves serial RTU on that port (``transport: serial`` of the connector).

Every machine ``i`` occupies 12 registers at ``base_address(i)`` (100, 200, 300) in both the
holding and the input registers, laid out as ``plant.REGISTER_MAP`` says, and 2 bits at the same
base in both the coils and the discrete inputs (``plant.COIL_MAP``). The values follow
``plant.machine_values`` and are rewritten every ``update_interval`` seconds; each machine's
registers are written at once, so one read of a machine sees one instant.

Addresses outside the map answer exception 2 (illegal data address), except the bits between
two machines, which read as 0. Requests for another unit id than ``unit_id`` answer exception
11 (gateway target device failed to respond), as a Modbus TCP gateway does for an absent unit.

Built on pymodbus's ``SimDevice``/``SimData`` (the datastore API of pymodbus 3.10+; the older
``ModbusDeviceContext`` is a deprecated shim over it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from pymodbus import FramerType
from pymodbus.client.mixin import ModbusClientMixin
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from sitewise_edge.simulators.plant import (
    COIL_MAP,
    MACHINES,
    REGISTER_MAP,
    REGISTERS_PER_MACHINE,
    alias,
    base_address,
    machine_values,
)

log = logging.getLogger(__name__)

_DT = ModbusClientMixin.DATATYPE
_DATATYPES = {"int16": _DT.INT16, "uint16": _DT.UINT16, "uint32": _DT.UINT32, "float32": _DT.FLOAT32}
# Function codes the server's datastore is written through: one per table.
_FC_HOLDING, _FC_INPUT, _FC_COIL, _FC_DISCRETE = 3, 4, 1, 2


def register_table() -> list[dict[str, Any]]:
    """The register map of every machine, one row per signal and table (for docs and the CLI)."""
    rows: list[dict[str, Any]] = []
    for i, machine in enumerate(MACHINES):
        base = base_address(i)
        for signal, (offset, data_type, word_order) in REGISTER_MAP.items():
            for table in ("holding", "input"):
                rows.append({
                    "machine": machine, "signal": signal, "table": table, "address": base + offset,
                    "type": data_type, "word_order": word_order,
                    "count": 1 if data_type.endswith("16") else 2,
                })
        for signal, offset in COIL_MAP.items():
            for table in ("coil", "discrete"):
                rows.append({
                    "machine": machine, "signal": signal, "table": table, "address": base + offset,
                    "type": "bool", "word_order": "big", "count": 1,
                })
    return rows


def example_tags(prefix: str = "/plant1/line1") -> list[dict[str, Any]]:
    """Configuration tag dicts for every register and coil signal of every machine.

    Registers are read from the holding table and bits from the coils (the input and discrete
    tables hold the same values).
    """
    tags: list[dict[str, Any]] = []
    for row in register_table():
        if row["table"] not in ("holding", "coil"):
            continue
        tags.append({
            "alias": alias(row["machine"], row["signal"], prefix),
            "table": row["table"],
            "address": row["address"],
            "type": row["type"],
            "word_order": row["word_order"],
        })
    return tags


def machine_registers(values: dict[str, Any]) -> list[int]:
    """The 12 registers of one machine for its current signal values."""
    regs = [0] * REGISTERS_PER_MACHINE
    for signal, (offset, data_type, word_order) in REGISTER_MAP.items():
        words = ModbusClientMixin.convert_to_registers(values[signal], _DATATYPES[data_type], word_order=word_order)
        regs[offset : offset + len(words)] = words
    return regs


def machine_bits(values: dict[str, Any]) -> list[bool]:
    bits = [False] * len(COIL_MAP)
    for signal, offset in COIL_MAP.items():
        bits[offset] = bool(values[signal])
    return bits


async def _absent_unit(*_args: Any) -> ExcCodes:
    return ExcCodes.GATEWAY_NO_RESPONSE


class ModbusSimulator:
    """The plant's machines behind one Modbus TCP server, in the running event loop."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 5020, unit_id: int = 1, update_interval: float = 0.5, *,
        framer: str = "socket", serial_port: str | None = None, baudrate: int = 19200,
    ) -> None:
        if framer not in ("socket", "rtu"):
            raise ValueError(f"unknown framer {framer!r}; expected socket or rtu")
        self.host = host
        self.port = port
        self.unit_id = unit_id
        self.framer = FramerType.RTU if framer == "rtu" or serial_port else FramerType.SOCKET
        self.serial_port = serial_port
        self.baudrate = baudrate
        self.update_interval = update_interval
        self.started_at: float = 0.0
        self._server: ModbusTcpServer | ModbusSerialServer | None = None
        self._updater: asyncio.Task[None] | None = None
        self._values: dict[str, dict[str, Any]] = {}
        self._updated = asyncio.Event()

    def _devices(self) -> list[SimDevice]:
        def registers() -> list[SimData]:
            return [SimData(base_address(i), count=REGISTERS_PER_MACHINE, datatype=DataType.REGISTERS)
                    for i in range(len(MACHINES))]

        def bits() -> list[SimData]:
            return [SimData(base_address(i), values=[False] * len(COIL_MAP), datatype=DataType.BITS)
                    for i in range(len(MACHINES))]

        # Separate blocks per table (coils, discrete inputs, holding, input): a bit address names one bit.
        plant = SimDevice(self.unit_id, simdata=(bits(), bits(), registers(), registers()))
        if self.unit_id == 0:  # unit 0 already answers for every unit id
            return [plant]
        absent = SimDevice(0, simdata=SimData(0, count=65535, datatype=DataType.REGISTERS), action=_absent_unit)
        return [plant, absent]

    async def start(self) -> None:
        """Fill the registers and listen; with ``port=0`` the bound port is then in :attr:`port`."""
        if self._server is not None:
            return
        server: ModbusTcpServer | ModbusSerialServer
        if self.serial_port:
            server = ModbusSerialServer(self._devices(), port=self.serial_port, baudrate=self.baudrate,
                                        framer=FramerType.RTU)
        else:
            server = ModbusTcpServer(self._devices(), address=(self.host, self.port), framer=self.framer)
        self.started_at = time.time()
        await self._update(server, self.started_at)
        try:
            await server.serve_forever(background=True)
        except RuntimeError:  # pymodbus logs the OS error and raises this when it cannot listen
            raise RuntimeError(
                f"Modbus simulator cannot listen on {self.where} (port in use, or not a local address)"
            ) from None
        self._server = server
        sockets = getattr(server.transport, "sockets", None) or ()
        if sockets:
            self.port = sockets[0].getsockname()[1]
        self._updater = asyncio.create_task(self._update_loop(server), name="modbus-simulator-update")
        log.info("Modbus simulator serving %d machines on %s, unit %d", len(MACHINES), self.where, self.unit_id)

    @property
    def where(self) -> str:
        """``host:port`` (with ``RTU over TCP`` for RTU frames), or ``serial RTU on PORT``."""
        if self.serial_port:
            return f"serial RTU on {self.serial_port}"
        rtu = " (RTU over TCP)" if self.framer == FramerType.RTU else ""
        return f"{self.host}:{self.port}{rtu}"

    async def stop(self) -> None:
        """Stop updating, close the listener and every client connection."""
        if self._updater is not None:
            self._updater.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._updater
            self._updater = None
        if self._server is not None:
            server, self._server = self._server, None
            await server.shutdown()

    async def serve_forever(self) -> None:
        """Start, then serve until cancelled."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """The signal values last written, per machine."""
        return {machine: dict(values) for machine, values in self._values.items()}

    async def next_update(self) -> None:
        """Wait until the registers are rewritten (tests wait on this instead of sleeping)."""
        self._updated.clear()
        await self._updated.wait()

    async def _update_loop(self, server: ModbusTcpServer | ModbusSerialServer) -> None:
        while True:
            await asyncio.sleep(self.update_interval)
            await self._update(server, time.time())

    async def _update(self, server: ModbusTcpServer | ModbusSerialServer, now: float) -> None:
        for i, machine in enumerate(MACHINES):
            values = machine_values(i, now, self.started_at)
            self._values[machine] = values
            regs, bits, base = machine_registers(values), machine_bits(values), base_address(i)
            for fc, data in ((_FC_HOLDING, regs), (_FC_INPUT, regs), (_FC_COIL, bits), (_FC_DISCRETE, bits)):
                await server.async_setValues(self.unit_id, fc, base, data)
        self._updated.set()
