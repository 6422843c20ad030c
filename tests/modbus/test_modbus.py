"""Modbus: request planning and decoding (pure tables), then the connector against real servers."""

from __future__ import annotations

import asyncio
import math
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from connectors.modbus import ModbusConnector
from connectors.modbus.config import ModbusSource, ModbusTag
from connectors.modbus.decode import DecodeError, column_of, decode_registers
from connectors.modbus.plan import MAX_BITS, MAX_REGISTERS, plan_requests, split
from sitewise_edge.errors import ConfigError, ConnectorError
from sitewise_edge.samples import SCHEMA, Quality
from sitewise_edge.simulators import plant
from sitewise_edge.simulators.modbus import ModbusSimulator, example_tags, register_table

HOST = "127.0.0.1"
Action = Callable[..., Awaitable[ExcCodes | None]]
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


# --- servers ---------------------------------------------------------------------------


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def fixed_server(
    holding: Mapping[int, Sequence[int]] = {},
    coils: Mapping[int, Sequence[bool]] = {},
    *,
    unit_id: int = 1,
    action: Action | None = None,
) -> AsyncIterator[int]:
    """A plain pymodbus server with fixed holding registers and coils; yields its port.

    The holding registers from the lowest to the highest address given are all readable
    (unset ones read 0), so that requests may span the holes between tags.
    """
    regs: dict[int, int] = {a + k: int(v) for a, vs in holding.items() for k, v in enumerate(vs)}
    bits: dict[int, bool] = {a + k: bool(v) for a, vs in coils.items() for k, v in enumerate(vs)}
    hr = [SimData(min(regs), values=[regs.get(a, 0) for a in range(min(regs), max(regs) + 1)],
                  datatype=DataType.REGISTERS)] if regs else [SimData(0, datatype=DataType.REGISTERS)]
    co = [SimData(min(bits), values=[bits.get(a, False) for a in range(min(bits), max(bits) + 1)],
                  datatype=DataType.BITS)] if bits else [SimData(0, values=[False], datatype=DataType.BITS)]
    di = [SimData(0, values=[False], datatype=DataType.BITS)]
    ir = [SimData(0, datatype=DataType.REGISTERS)]
    server = ModbusTcpServer(SimDevice(unit_id, simdata=(co, di, hr, ir), action=action), address=(HOST, 0))
    await server.serve_forever(background=True)
    try:
        yield int(server.transport.sockets[0].getsockname()[1])
    finally:
        await server.shutdown()


@asynccontextmanager
async def raw_server(handle: Handler) -> AsyncIterator[int]:
    """A TCP server that is not Modbus at all (silent, or hanging up); yields its port."""
    writers: list[asyncio.StreamWriter] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await handle(reader, writer)

    server = await asyncio.start_server(on_connect, HOST, 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        for w in writers:
            w.close()
        await server.wait_closed()


def source(port: int, tags: Sequence[Mapping[str, Any]], **overrides: Any) -> dict[str, Any]:
    """A ``ModbusSource`` configuration dict for a local server."""
    return {"name": "press-line", "type": "modbus", "host": HOST, "port": port, "timeout": 1.0,
            "tags": list(tags), **overrides}


def rows(batch: pa.RecordBatch) -> dict[str, dict[str, Any]]:
    """alias -> the row of a batch (time as int ns)."""
    out = batch.set_column(1, "time", batch.column("time").cast(pa.int64())).to_pylist()
    return {r["stream"]: r for r in out}


def value_of(row: Mapping[str, Any]) -> Any:
    set_values = [row[c] for c in ("double", "integer", "string", "boolean") if row[c] is not None]
    assert len(set_values) <= 1, row
    return set_values[0] if set_values else None


def tag(address: int, type_: str = "uint16", table: str = "holding", **kw: Any) -> ModbusTag:
    return ModbusTag(alias=kw.pop("alias", f"/{table}/{address}/{type_}"), table=table, address=address,
                     type=type_, **kw)


# --- planning --------------------------------------------------------------------------

PLAN_CASES = [
    # (id, tags, expected requests as (table, address, count, addresses of the tags served))
    ("one uint16", [tag(100)], [("holding", 100, 1, [100])]),
    ("adjacent float32s merge", [tag(100, "float32"), tag(102, "float32")], [("holding", 100, 4, [100, 102])]),
    ("register counts per type",
     [tag(0, "int16"), tag(1, "int32"), tag(3, "uint64"), tag(7, "float64"), tag(11, "string", length=5)],
     [("holding", 0, 16, [0, 1, 3, 7, 11])]),
    ("hole of 10 registers is read", [tag(100), tag(111)], [("holding", 100, 12, [100, 111])]),
    ("hole of 11 registers splits", [tag(100), tag(112)], [("holding", 100, 1, [100]), ("holding", 112, 1, [112])]),
    ("config order does not matter", [tag(104, "float32"), tag(100, "float32")], [("holding", 100, 6, [100, 104])]),
    ("overlapping tags share a request", [tag(100, "uint32"), tag(101)], [("holding", 100, 2, [100, 101])]),
    ("125 registers fit one request", [tag(0, "string", length=123), tag(123, "uint32")],
     [("holding", 0, MAX_REGISTERS, [0, 123])]),
    ("126 registers do not", [tag(0, "string", length=123), tag(123, "float64")],
     [("holding", 0, 123, [0]), ("holding", 123, 4, [123])]),
    ("tables never mix", [tag(100, table="input"), tag(100), tag(101, "bool", "coil"), tag(101, "bool", "discrete")],
     [("holding", 100, 1, [100]), ("input", 100, 1, [100]), ("coil", 101, 1, [101]), ("discrete", 101, 1, [101])]),
    ("bits merge across 64 unused bits", [tag(0, "bool", "coil"), tag(65, "bool", "coil")],
     [("coil", 0, 66, [0, 65])]),
    ("bits split past 64", [tag(0, "bool", "coil"), tag(66, "bool", "coil")],
     [("coil", 0, 1, [0]), ("coil", 66, 1, [66])]),
    ("plant simulator: one request per machine and table",
     [ModbusTag(**t) for t in example_tags()],
     [("holding", 100, 12, [100, 102, 104, 106, 107, 109, 111]),
      ("holding", 200, 12, [200, 202, 204, 206, 207, 209, 211]),
      ("holding", 300, 12, [300, 302, 304, 306, 307, 309, 311]),
      ("coil", 100, 2, [100, 101]), ("coil", 200, 2, [200, 201]), ("coil", 300, 2, [300, 301])]),
]


@pytest.mark.parametrize(("tags", "expected"), [c[1:] for c in PLAN_CASES], ids=[c[0] for c in PLAN_CASES])
def test_plan(tags: list[ModbusTag], expected: list[tuple[str, int, int, list[int]]]) -> None:
    plan = plan_requests(tags)
    got = [(r.table, r.address, r.count, [s.tag.address for s in r.slots]) for r in plan]
    assert got == expected
    for r in plan:
        for s in r.slots:  # each slot points back at its tag and into its request
            assert tags[s.index] is s.tag
            assert r.address + s.offset == s.tag.address
            assert s.offset + s.count <= r.count


def test_plan_respects_the_bit_limit() -> None:
    tags = [tag(0, "bool", "coil"), tag(MAX_BITS - 1, "bool", "coil"), tag(MAX_BITS, "bool", "coil")]
    plan = plan_requests(tags, max_gap_bits=MAX_BITS)
    assert [(r.address, r.count) for r in plan] == [(0, MAX_BITS), (MAX_BITS, 1)]


@pytest.mark.parametrize(
    ("tags", "path", "words"),
    [
        ([tag(65535, "float32")], "tags[0].address", "float32 at 65535 needs holding registers up to 65536"),
        ([tag(65533, "uint64")], "tags[0].address", "past the last address 65535"),
        ([tag(1, alias="/a"), tag(2, alias="/a")], "tags[1].alias", "'/a' is already used by tags[0]"),
    ],
    ids=["float32 at the last register", "uint64 past the end", "duplicate alias"],
)
def test_plan_refuses(tags: list[ModbusTag], path: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        plan_requests(tags, source="source 'press-line'")
    assert [i.path for i in err.value.issues] == [path]
    assert words in str(err.value)
    assert str(err.value).startswith("source 'press-line': ")


def test_plan_accepts_the_last_register() -> None:
    assert plan_requests([tag(65534, "float32", alias="/x"), tag(65535, alias="/y")])[0].count == 2


@pytest.mark.parametrize(
    ("per_tag", "expected"),
    [(False, [(100, 3), (110, 2)]), (True, [(100, 2), (102, 1), (110, 2)])],
    ids=["runs without holes", "one per tag"],
)
def test_split(per_tag: bool, expected: list[tuple[int, int]]) -> None:
    tags = [tag(110, "int32"), tag(100, "float32"), tag(102)]
    (merged,) = plan_requests(tags)
    parts = split(merged, per_tag=per_tag)
    assert [(p.address, p.count) for p in parts] == expected
    assert sorted(s.index for p in parts for s in p.slots) == [0, 1, 2]
    for p in parts:
        for s in p.slots:
            assert tags[s.index] is s.tag and p.address + s.offset == s.tag.address


# --- decoding --------------------------------------------------------------------------

# Hand-computed words: the reference is the Modbus byte layout, not the library under test.
DECODE_CASES = [
    # (id, type, word order, registers, scale, expected value)
    ("int16", "int16", "big", [0xFFFE], None, -2),
    ("uint16", "uint16", "big", [0xFFFE], None, 65534),
    ("int16 ignores word order", "int16", "little", [0x8000], None, -32768),
    ("int32 big", "int32", "big", [0xFFFF, 0xFFFE], None, -2),
    ("int32 little", "int32", "little", [0xFFFE, 0xFFFF], None, -2),
    ("uint32 big", "uint32", "big", [0x0001, 0x0002], None, 65538),
    ("uint32 little", "uint32", "little", [0x0002, 0x0001], None, 65538),
    ("uint32 max", "uint32", "big", [0xFFFF, 0xFFFF], None, 2**32 - 1),
    ("int64 big", "int64", "big", [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE], None, -2),
    ("int64 little", "int64", "little", [0xFFFE, 0xFFFF, 0xFFFF, 0xFFFF], None, -2),
    ("uint64 big", "uint64", "big", [0x0000, 0x0001, 0x0000, 0x0000], None, 2**32),
    ("uint64 little", "uint64", "little", [0x0000, 0x0000, 0x0001, 0x0000], None, 2**32),
    ("uint64 at int64 max", "uint64", "big", [0x7FFF, 0xFFFF, 0xFFFF, 0xFFFF], None, 2**63 - 1),
    ("float32 big", "float32", "big", [0x3FC0, 0x0000], None, 1.5),
    ("float32 little", "float32", "little", [0x0000, 0x3FC0], None, 1.5),
    ("float32 negative", "float32", "big", [0xC2F7, 0x0000], None, -123.5),
    ("float64 big", "float64", "big", [0x4009, 0x21FB, 0x5444, 0x2D18], None, math.pi),
    ("float64 little", "float64", "little", [0x2D18, 0x5444, 0x21FB, 0x4009], None, math.pi),
    ("string", "string", "big", [0x4142, 0x4344, 0x4500], None, "ABCDE"),
    ("string drops trailing NULs", "string", "big", [0x4F4B, 0x0000, 0x0000], None, "OK"),
    ("string little reverses registers", "string", "little", [0x0000, 0x4344, 0x4142], None, "ABCD"),
    ("int16 scaled", "int16", "big", [0xFFF6], 0.1, -1.0),
    ("uint16 scaled", "uint16", "big", [1234], 0.5, 617.0),
    ("uint32 little scaled", "uint32", "little", [0x0002, 0x0001], 2.0, 131076.0),
    ("float32 scaled", "float32", "big", [0x3FC0, 0x0000], -2.0, -3.0),
]


@pytest.mark.parametrize(("data_type", "word_order", "registers", "scale", "expected"),
                         [c[1:] for c in DECODE_CASES], ids=[c[0] for c in DECODE_CASES])
def test_decode(data_type: str, word_order: str, registers: list[int], scale: float | None, expected: Any) -> None:
    value = decode_registers(registers, data_type, word_order, scale)
    assert type(value) is type(expected)
    assert value == pytest.approx(expected) if isinstance(expected, float) else value == expected


@pytest.mark.parametrize(
    ("data_type", "registers", "words"),
    [("uint64", [0x8000, 0, 0, 0], "does not fit the integer column"),
     ("string", [0xFFFE], "cannot decode string"),
     ("float32", [0x3FC0], "cannot decode float32")],
    ids=["uint64 past int64", "string not utf-8", "too few registers"],
)
def test_decode_refuses(data_type: str, registers: list[int], words: str) -> None:
    with pytest.raises(DecodeError, match=words):
        decode_registers(registers, data_type)


@pytest.mark.parametrize(
    ("kw", "column"),
    [({"type": "int16"}, "integer"), ({"type": "uint64"}, "integer"), ({"type": "float32"}, "double"),
     ({"type": "int32", "scale": 0.1}, "double"), ({"type": "string", "length": 2}, "string"),
     ({"type": "bool", "table": "coil"}, "boolean")],
    ids=["int16", "uint64", "float32", "scaled int", "string", "bool"],
)
def test_column_of(kw: dict[str, Any], column: str) -> None:
    assert column_of(ModbusTag(alias="/x", address=0, **{"table": "holding", **kw})) == column


# --- the simulator's map ---------------------------------------------------------------


def test_example_tags_cover_every_register_and_coil_signal() -> None:
    tags = [ModbusTag(**t) for t in example_tags("/p")]
    signals = len(plant.REGISTER_MAP) + len(plant.COIL_MAP)
    assert len(tags) == len(plant.MACHINES) * signals == len({t.alias for t in tags})
    assert ModbusTag(**example_tags("/p")[0]).alias == "/p/press1/speed"
    assert {r["table"] for r in register_table()} == {"holding", "input", "coil", "discrete"}


# --- the connector against real servers -------------------------------------------------

# Every register type in both word orders at its own address, with holes between them; the words
# are those of the decode table, so the server's contents are independent of the code under test.
FIXED_TAGS = [(10 * k, c) for k, c in enumerate(DECODE_CASES)]


async def test_poll_decodes_every_type_from_a_server() -> None:
    holding = {address: c[3] for address, c in FIXED_TAGS}
    tags = [{"alias": f"/fixed/{c[0]}", "table": "holding", "address": address, "type": c[1], "word_order": c[2],
             **({"length": len(c[3])} if c[1] == "string" else {}), **({"scale": c[4]} if c[4] else {})}
            for address, c in FIXED_TAGS]
    tags += [{"alias": "/fixed/coil0", "table": "coil", "address": 3, "type": "bool"},
             {"alias": "/fixed/coil1", "table": "coil", "address": 4, "type": "bool"}]
    async with fixed_server(holding, {3: [True, False]}) as port:
        conn = ModbusConnector(ModbusSource(**source(port, tags)))
        assert len(conn.requests) == 3  # 250 registers (two requests of <= 125) and one of coils
        await conn.open()
        try:
            before = time.time_ns()
            batch = await conn.poll()
            after = time.time_ns()
        finally:
            await conn.close()
    assert batch.schema == SCHEMA
    got = rows(batch)
    assert list(got) == [t["alias"] for t in tags]  # one row per tag, in configuration order
    for _, (name, data_type, _, _, scale, expected) in FIXED_TAGS:
        row = got[f"/fixed/{name}"]
        assert row["quality"] == Quality.GOOD
        column = "double" if scale or data_type.startswith("float") else "string" if data_type == "string" \
            else "integer"
        assert row[column] == (pytest.approx(expected) if isinstance(expected, float) else expected), name
        assert value_of(row) == row[column]
    assert (got["/fixed/coil0"]["boolean"], got["/fixed/coil1"]["boolean"]) == (True, False)
    assert len({r["time"] for r in got.values()}) == 1
    assert before <= batch.column("time").cast(pa.int64())[0].as_py() <= after
    assert conn.status.tag_errors == {}
    assert conn.status.values_read == len(tags) and conn.status.batches_read == 1


async def test_poll_reads_the_plant_simulator(simulator: ModbusSimulator) -> None:
    conn = ModbusConnector(ModbusSource(**source(simulator.port, example_tags())))
    await conn.open()
    try:
        assert conn.status.last_error is None
        batch = await conn.poll()
    finally:
        await conn.close()
    got = rows(batch)
    assert set(got) == {t["alias"] for t in example_tags()}
    assert all(r["quality"] == Quality.GOOD for r in got.values())
    expected_column = {float: "double", int: "integer", bool: "boolean"}
    snapshot = simulator.snapshot()
    for machine in plant.MACHINES:
        v = {signal: value_of(got[plant.alias(machine, signal)]) for signal in
             (*plant.REGISTER_MAP, *plant.COIL_MAP)}
        for signal, py_type in plant.SIGNALS:
            if signal in v:
                row = got[plant.alias(machine, signal)]
                assert row[expected_column[py_type]] is not None, (machine, signal)
        assert abs(v["TemperatureX10"] - v["Temperature"] * 10) <= 0.51
        assert v["State"] in plant.STATUS_TEXT
        assert v["GoodCount"] >= 0 and v["BadCount"] >= 0
        assert v["Running"] == (v["State"] == plant.RUNNING) and v["Fault"] == (v["State"] == plant.FAULT)
        # the simulator does not update during this test: what it wrote is what was read
        for signal, written in snapshot[machine].items():
            if signal in v:
                assert v[signal] == (pytest.approx(written, rel=1e-6) if isinstance(written, float) else written)


async def test_simulator_updates_its_registers() -> None:
    sim = ModbusSimulator(port=0, update_interval=0.02)
    await sim.start()
    conn = ModbusConnector(ModbusSource(**source(sim.port, example_tags())))
    try:
        await conn.open()
        first = await conn.poll()
        start_count = sim.snapshot()["Press1"]["GoodCount"]
        async with asyncio.timeout(5):
            while sim.snapshot()["Press1"]["GoodCount"] == start_count:
                await sim.next_update()
        second = await conn.poll()
    finally:
        await conn.close()
        await sim.stop()
    alias = plant.alias("Press1", "GoodCount")
    assert rows(second)[alias]["integer"] > rows(first)[alias]["integer"]


async def test_unmapped_addresses_are_bad_and_the_rest_good(simulator: ModbusSimulator) -> None:
    tags = [*example_tags(),
            {"alias": "/unmapped/alone", "table": "holding", "address": 150},  # own request
            {"alias": "/unmapped/next-to-press1", "table": "input", "address": 112, "type": "uint16"},
            {"alias": "/mapped/press1-state", "table": "input", "address": 106}]  # merged with 112
    conn = ModbusConnector(ModbusSource(**source(simulator.port, tags)))
    merged = [r for r in conn.requests if r.table == "input"]
    assert [(r.address, r.count) for r in merged] == [(106, 7)]
    await conn.open()
    try:
        for _ in range(2):  # the second poll reads the split requests directly
            got = rows(await conn.poll())
            bad = {a for a, r in got.items() if r["quality"] == Quality.BAD}
            assert bad == {"/unmapped/alone", "/unmapped/next-to-press1"}
            assert all(value_of(got[a]) is None for a in bad)
            assert got["/mapped/press1-state"]["integer"] in plant.STATUS_TEXT
            assert conn.status.tag_errors == {
                "/unmapped/alone": "illegal data address (exception 2) reading holding register 150 of unit 1",
                "/unmapped/next-to-press1": "illegal data address (exception 2) reading input register 112 of unit 1",
            }
        assert [(r.address, r.count) for r in conn.requests if r.table == "input"] == [(106, 1), (112, 1)]
        assert conn.status.last_error is None and conn.status.batches_read == 2
    finally:
        await conn.close()


async def test_an_absent_unit_makes_every_tag_bad(simulator: ModbusSimulator) -> None:
    conn = ModbusConnector(ModbusSource(**source(simulator.port, example_tags()[:2], unit_id=7)))
    await conn.open()
    try:
        got = rows(await conn.poll())
    finally:
        await conn.close()
    assert {r["quality"] for r in got.values()} == {Quality.BAD}
    assert set(conn.status.tag_errors.values()) == {
        "gateway target device failed to respond (exception 11) reading holding registers 100..103 of unit 7"
    }


async def test_a_tag_error_clears_when_the_device_answers_again() -> None:
    busy = True

    async def action(*_args: Any) -> ExcCodes | None:
        return ExcCodes.DEVICE_BUSY if busy else None

    tags = [{"alias": "/a", "table": "holding", "address": 0}, {"alias": "/b", "table": "holding", "address": 1}]
    async with fixed_server({0: [7, 8]}, action=action) as port:
        conn = ModbusConnector(ModbusSource(**source(port, tags)))
        await conn.open()
        try:
            got = rows(await conn.poll())
            assert [r["quality"] for r in got.values()] == [Quality.BAD, Quality.BAD]
            assert conn.status.tag_errors["/a"] == \
                "server device busy (exception 6) reading holding registers 0..1 of unit 1"
            assert len(conn.requests) == 1  # busy is not a reason to split
            busy = False
            got = rows(await conn.poll())
        finally:
            await conn.close()
    assert [(r["integer"], r["quality"]) for r in got.values()] == [(7, Quality.GOOD), (8, Quality.GOOD)]
    assert conn.status.tag_errors == {}


async def test_open_fails_fast_when_nothing_listens() -> None:
    port = free_port()
    conn = ModbusConnector(ModbusSource(**source(port, example_tags()[:1], timeout=1.0)))
    async with asyncio.timeout(3):
        with pytest.raises(ConnectorError) as err:
            await conn.open()
    assert f"modbus source 'press-line': cannot connect to {HOST}:{port}" in str(err.value)
    assert (err.value.source, err.value.endpoint) == ("press-line", f"{HOST}:{port}")
    assert conn.status.last_error == str(err.value)
    await conn.close()


async def test_poll_fails_when_the_server_stops_and_works_after_reopen(simulator: ModbusSimulator) -> None:
    conn = ModbusConnector(ModbusSource(**source(simulator.port, example_tags(), timeout=5.0)))
    await conn.open()
    try:
        await conn.poll()
        await simulator.stop()
        async with asyncio.timeout(2):  # well before the 5 s timeout: the lost connection is seen at once
            with pytest.raises(ConnectorError, match=f"connection to {HOST}:{simulator.port} lost") as err:
                await conn.poll()
        assert conn.status.last_error == str(err.value)
        await conn.close()
        await simulator.start()  # same port
        await conn.open()
        batch = await conn.poll()
    finally:
        await conn.close()
    assert batch.num_rows == len(example_tags())
    assert conn.status.last_error is None and conn.status.batches_read == 2


async def _hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1)
    writer.close()


async def _say_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while await reader.read(256):
        pass


@pytest.mark.parametrize(
    ("handler", "answer_timeout", "words"),
    [(_hang_up, 5.0, "lost reading holding registers 100..111"),
     (_say_nothing, 0.2, "holding registers 100..111 of unit 1: ")],
    ids=["device hangs up mid-request", "device never answers"],
)
async def test_poll_fails_on_a_broken_device(
    handler: Handler, answer_timeout: float, words: str
) -> None:
    async with raw_server(handler) as port:
        conn = ModbusConnector(ModbusSource(**source(port, example_tags(), timeout=answer_timeout)))
        await conn.open()
        try:
            async with asyncio.timeout(2):
                with pytest.raises(ConnectorError, match=words) as err:
                    await conn.poll()
        finally:
            await conn.close()
    assert conn.status.last_error == str(err.value)


async def test_close_never_raises_and_poll_needs_open() -> None:
    conn = ModbusConnector(ModbusSource(**source(free_port(), example_tags()[:1])))
    await conn.close()
    with pytest.raises(ConnectorError, match="poll\\(\\) before open\\(\\)"):
        await conn.poll()
    await conn.close()
    assert conn.interval == 1.0 and conn.name == "press-line"


async def test_simulator_refuses_a_busy_port(simulator: ModbusSimulator) -> None:
    with pytest.raises(RuntimeError, match=f"cannot listen on {HOST}:{simulator.port}"):
        await ModbusSimulator(port=simulator.port).start()


def test_readme_shows_every_setting() -> None:
    readme = (Path(__file__).parents[2] / "connectors" / "modbus" / "README.md").read_text(encoding="utf-8")
    for field in (*ModbusSource.model_fields, *ModbusTag.model_fields):
        assert re.search(rf"\s{field}:\s", readme), f"connectors/modbus/README.md does not show the setting {field!r}"
