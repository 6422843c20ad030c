"""Real pymodbus servers for the Modbus tests: fixed tables per unit, request counts seen at the server,
slow and hung units, and a serial line made of two pseudo-terminals joined by a relay."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import socket
import tty
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

HOST = "127.0.0.1"
Action = Callable[..., Awaitable[ExcCodes | None]]
Table = Mapping[int, Sequence[int]] | Mapping[int, Sequence[bool]]


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Unit:
    """One unit's four tables, as {first address: values}: each block is readable, the addresses between
    blocks answer exception 2 (illegal data address)."""

    unit_id: int = 1
    holding: Mapping[int, Sequence[int]] = field(default_factory=dict)
    input: Mapping[int, Sequence[int]] = field(default_factory=dict)
    coils: Mapping[int, Sequence[bool]] = field(default_factory=dict)
    discrete: Mapping[int, Sequence[bool]] = field(default_factory=dict)
    action: Action | None = None
    """Called on every request (pymodbus ``SimDevice`` action): may sleep (a slow unit) or answer an exception."""

    def device(self) -> SimDevice:
        def blocks(table: Mapping[int, Sequence[Any]], kind: DataType) -> list[SimData]:
            if not table:
                return [SimData(60000, values=[0] if kind == DataType.REGISTERS else [False], datatype=kind)]
            return [SimData(a, values=list(v), datatype=kind) for a, v in sorted(table.items())]

        simdata = (blocks(self.coils, DataType.BITS), blocks(self.discrete, DataType.BITS),
                   blocks(self.holding, DataType.REGISTERS), blocks(self.input, DataType.REGISTERS))
        return SimDevice(self.unit_id, simdata=simdata, action=self.action)


class RequestLog:
    """Requests as the server received them: ``(unit, function code, address, count)``."""

    def __init__(self) -> None:
        self.requests: list[tuple[int, int, int, int]] = []

    def trace(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        if not sending:
            self.requests.append((pdu.dev_id, pdu.function_code, pdu.address, pdu.count))
        return pdu

    def per_unit(self) -> Counter[int]:
        return Counter(r[0] for r in self.requests)

    def clear(self) -> None:
        self.requests.clear()


@contextlib.asynccontextmanager
async def tcp_server(*units: Unit, framer: FramerType = FramerType.SOCKET, log: RequestLog | None = None,
                     port: int = 0) -> AsyncIterator[int]:
    """A pymodbus TCP server (Modbus TCP, or RTU frames over TCP) for ``units``; yields its port."""
    server = ModbusTcpServer([u.device() for u in units], address=(HOST, port), framer=framer,
                             trace_pdu=log.trace if log else None)
    await server.serve_forever(background=True)
    try:
        yield int(server.transport.sockets[0].getsockname()[1])
    finally:
        await server.shutdown()


@contextlib.asynccontextmanager
async def serial_line() -> AsyncIterator[tuple[str, str]]:
    """Two pseudo-terminals joined by a relay, like a null-modem cable: yields (server end, client end).

    Each end is a pty's slave device (``/dev/pts/N``) that pyserial opens like any serial port.
    """
    loop = asyncio.get_running_loop()
    ends = [pty.openpty() for _ in range(2)]
    for _, slave in ends:
        tty.setraw(slave)
    (m1, s1), (m2, s2) = ends
    names = (os.ttyname(s1), os.ttyname(s2))

    def relay(src: int, dst: int) -> None:
        with contextlib.suppress(OSError):
            os.write(dst, os.read(src, 4096))

    loop.add_reader(m1, relay, m1, m2)
    loop.add_reader(m2, relay, m2, m1)
    try:
        yield names
    finally:
        for m, s in ends:
            loop.remove_reader(m)
            os.close(m)
            os.close(s)


@contextlib.asynccontextmanager
async def serial_server(port: str, *units: Unit, log: RequestLog | None = None,
                        baudrate: int = 115200) -> AsyncIterator[None]:
    """A pymodbus RTU server on a serial port (one end of :func:`serial_line`)."""
    server = ModbusSerialServer([u.device() for u in units], port=port, baudrate=baudrate, framer=FramerType.RTU,
                                trace_pdu=log.trace if log else None)
    await server.serve_forever(background=True)
    try:
        yield
    finally:
        await server.shutdown()


def hang_until(release: asyncio.Event) -> Action:
    """A unit action that never answers until ``release`` is set (a hung device)."""

    async def action(*_args: Any) -> ExcCodes | None:
        await release.wait()
        return None

    return action


def slow(seconds: float) -> Action:
    """A unit action that answers after ``seconds``."""

    async def action(*_args: Any) -> ExcCodes | None:
        await asyncio.sleep(seconds)
        return None

    return action
