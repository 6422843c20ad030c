"""Modbus: addressing, request planning and decoding (pure tables), then the connector against real servers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import struct
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import yaml
from pymodbus import FramerType
from pymodbus.constants import ExcCodes

from connectors.modbus import ModbusConnector
from connectors.modbus.config import MAX_BITS, MAX_REGISTERS, ModbusSource, ModbusTag, parse_modicon
from connectors.modbus.decode import DecodeError, column_of, decode_registers
from connectors.modbus.plan import bisect, plan_requests, plan_source, rejoin
from connectors.modbus.report import ReportFilter
from sitewise_edge.config import parse_config
from sitewise_edge.errors import ConfigError, ConnectorError
from sitewise_edge.samples import SCHEMA, Quality
from sitewise_edge.simulators import plant
from sitewise_edge.simulators.modbus import ModbusSimulator, example_tags, register_table
from tests.modbus.servers import HOST, RequestLog, Unit, free_port, hang_until, serial_line, serial_server, tcp_server

CASES = Path(__file__).parent / "cases"


def source(port: int, tags: Sequence[Mapping[str, Any]] = (), **overrides: Any) -> ModbusSource:
    """A source for a local server; ``tags`` for the one-device form."""
    doc: dict[str, Any] = {"name": "press-line", "type": "modbus", "host": HOST, "port": port, "timeout": 1.0,
                           "interval": 0.05, **overrides}
    if tags:
        doc["tags"] = list(tags)
    return ModbusSource.model_validate(doc)


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


async def read_batches(conn: ModbusConnector, count: int, within: float = 10.0) -> list[pa.RecordBatch]:
    """The first ``count`` batches of an open connector's stream."""
    out: list[pa.RecordBatch] = []
    async with asyncio.timeout(within):
        async for batch in conn.stream():
            out.append(batch)
            if len(out) == count:
                break
    return out


async def one_round(conn: ModbusConnector) -> dict[str, dict[str, Any]]:
    """The rows of one poll of every group, by alias."""
    got: dict[str, dict[str, Any]] = {}
    for g in conn.groups:
        for batch in await conn.poll_group(g):
            got.update(rows(batch))
    return got


async def poll_once(units: Sequence[Unit], tags: Sequence[Mapping[str, Any]] = (),
                    framer: FramerType = FramerType.SOCKET, **overrides: Any) -> tuple[ModbusConnector, dict[str, Any]]:
    """One round of polls of a connector on a server for ``units``: the connector, and its rows by alias."""
    async with tcp_server(*units, framer=framer) as port:
        conn = ModbusConnector(source(port, tags, **overrides))
        await conn.open()
        try:
            return conn, await one_round(conn)
        finally:
            await conn.close()


# --- addressing ------------------------------------------------------------------------

MODICON = [
    ("00001", "coil", 0), ("09999", "coil", 9998), ("000001", "coil", 0), ("065536", "coil", 65535),
    (10001, "discrete", 0), (30001, "input", 0), (30101, "input", 100), (40001, "holding", 0),
    (40101, "holding", 100), ("49999", "holding", 9998), (400001, "holding", 0), (465536, "holding", 65535),
    ("340101", "input", 40100),
]


@pytest.mark.parametrize(("address", "table", "zero_based"), MODICON, ids=[str(m[0]) for m in MODICON])
def test_modicon_addresses(address: int | str, table: str, zero_based: int) -> None:
    assert parse_modicon(address) == (table, zero_based)
    t = ModbusTag(alias="/x", address=address)
    assert t.location() == (table, zero_based)
    assert t.type == ("bool" if table in ("coil", "discrete") else "uint16")


@pytest.mark.parametrize(
    ("tag_doc", "words"),
    [({"address": 100}, "address 100 has no table: give table"),
     ({"address": 50001}, "starts with 5: expected 0 (coil), 1 (discrete input), 3 (input register) or 4"),
     ({"address": 465537}, "Modicon address 465537 is out of range"),
     ({"address": 40000}, "Modicon address 40000 is out of range"),
     ({"address": "4x0001"}, "is not a number"),
     ({"address": 40101, "table": "holding"},
      "address 40101 with table holding is ambiguous: Modicon 40101 is holding register address 100; for that, "
      "drop table. For zero-based address 40101 write it in six digits: address: 440102"),
     ({"address": "30001", "table": "holding"}, "Modicon address 30001 is a input register, not table holding"),
     ({"address": 70000, "table": "holding"}, "address 70000 is out of range: zero-based addresses are 0..65535"),
     ({"address": 465536, "type": "float32"},
      "float32 at holding register address 65535 needs addresses up to 65536, past the last address 65535"),
     ({"address": 40001, "type": "bool"}, "type bool in table holding needs bit (0..15)"),
     ({"address": 40001, "type": "bool", "bit": 16}, "less than or equal to 15"),
     ({"address": 40001, "bit": 3}, "bit selects one bit of a register"),
     ({"address": "00001", "type": "int16"}, "table coil holds bits: type must be bool, not int16"),
     ({"address": 40001, "byte_order": "CDAB"}, "byte order CDAB swaps words: a uint16 has one register"),
     ({"address": 40001, "type": "string"}, "type string needs length"),
     ({"address": 40001, "length": 2}, "length is for type string"),
     ({"address": 40001, "type": "string", "length": 2, "scale": 2}, "scale and offset need a number type"),
     ({"address": 40001, "word_order": "big", "byte_order": "ABCD"}, "word_order and byte_order both set")],
    ids=["no-table", "table-digit", "past-six-digits", "zero-register", "not-a-number", "ambiguous", "wrong-table",
         "past-65535", "value-past-65535", "bool-needs-bit", "bit-16", "bit-without-bool", "coil-int16",
         "word-swap-16-bit", "string-length", "length-not-string", "scaled-string", "both-orders"],
)
def test_tag_refused_with_the_reason(tag_doc: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        ModbusTag.model_validate({"alias": "/x", **tag_doc})


@pytest.mark.parametrize(
    ("doc", "expected"),
    [({"tags": [{"alias": "/a", "address": 465535, "type": "float64"}]},
      "sources[0].tags[0]: float64 at holding register address 65534 needs addresses up to 65537, past the last "
      "address 65535"),
     ({"devices": [{"name": "a", "tags": [{"alias": "/x", "address": 40001}]},
                   {"name": "b", "unit_id": 2, "tags": [{"alias": "/x", "address": 40002}]}]},
      "sources[0].devices[1].tags[0].alias: alias '/x' is already used by devices[0].tags[0]"),
     ({"devices": [{"name": "a", "tags": [{"alias": "/x", "address": 40001}]},
                   {"name": "b", "tags": [{"alias": "/y", "address": 40002}]}]},
      "sources[0].devices[1].unit_id: unit 1 is already devices[0]"),
     ({"tags": [{"alias": "/a", "address": 40001, "group": "fast"}]},
      "sources[0].tags[0].group: unknown poll group 'fast'; defined: default"),
     ({"tags": [{"alias": "/a", "address": 40001}], "devices": [{"name": "d", "tags": [{"alias": "/b",
                                                                                         "address": 40001}]}]},
      "sources[0]: tags and devices both set: put the tags into their device"),
     ({"transport": "serial", "tags": [{"alias": "/a", "address": 40001}]},
      "sources[0]: transport serial needs serial (port, baudrate, ...)"),
     ({"transport": "rtu", "tags": [{"alias": "/a", "address": 40001}]},
      "sources[0].transport: unknown transport 'rtu'; expected one of tcp, rtu_over_tcp, serial"),
     ({"max_registers": 126, "tags": [{"alias": "/a", "address": 40001}]},
      "sources[0].max_registers: Input should be less than or equal to 125 (got 126)"),
     ({"poll_groups": [{"name": "f", "interval": "1s", "heartbeat": "10s"}], "tags": [{"alias": "/a",
                                                                                       "address": 40001}]},
      "sources[0].poll_groups[0]: heartbeat of poll group 'f' needs a deadband (without one, every poll is "
      "reported)")],
    ids=["past-the-end", "duplicate-alias", "duplicate-unit", "unknown-group", "tags-and-devices", "serial-port",
         "transport", "max-registers", "heartbeat-without-deadband"],
)
def test_config_errors_name_the_key_path(doc: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"sources": [{"name": "plc", "type": "modbus", "host": HOST, **doc}]}, env={})
    assert [str(i) for i in err.value.issues] == [expected]


def test_one_source_per_serial_line() -> None:
    line = {"type": "modbus", "transport": "serial", "serial": {"port": "/dev/ttyUSB0"}}
    with pytest.raises(ConfigError) as err:
        parse_config({"sources": [{"name": "a", **line, "tags": [{"alias": "/a", "address": 40001}]},
                                  {"name": "b", **line, "tags": [{"alias": "/b", "address": 40001}]}]}, env={})
    assert [str(i) for i in err.value.issues] == [
        "sources[1]: serial port /dev/ttyUSB0 is already used by sources[0]: one source per line (put its devices "
        "into that source)"]


def test_earlier_configurations_still_load() -> None:
    """``table`` + zero-based ``address``, ``word_order`` big/little, ``unit_id`` and ``tags`` at the top."""
    src = source(502, [{"alias": "/a", "table": "holding", "address": 100, "type": "float32", "word_order": "little"},
                       {"alias": "/b", "table": "coil", "address": 3, "type": "bool"}], unit_id=7)
    (device,) = src.device_list()
    assert (device.name, device.unit_id, device.path) == ("press-line", 7, "tags")
    assert [t.location() for t in device.tags] == [("holding", 100), ("coil", 3)]
    assert device.tags[0].byte_order == "CDAB"


# --- planning --------------------------------------------------------------------------

PLAN_CASES = [
    # (id, tags, planner options, expected requests as (table, address, count, addresses of the tags served))
    ("one uint16", [tag(100)], {}, [("holding", 100, 1, [100])]),
    ("adjacent float32s merge", [tag(100, "float32"), tag(102, "float32")], {}, [("holding", 100, 4, [100, 102])]),
    ("register counts per type",
     [tag(0, "int16"), tag(1, "int32"), tag(3, "uint64"), tag(7, "float64"), tag(11, "string", length=5)], {},
     [("holding", 0, 16, [0, 1, 3, 7, 11])]),
    ("hole of 10 registers is read", [tag(100), tag(111)], {}, [("holding", 100, 12, [100, 111])]),
    ("hole of 11 registers splits", [tag(100), tag(112)], {},
     [("holding", 100, 1, [100]), ("holding", 112, 1, [112])]),
    ("max_gap 11 bridges it", [tag(100), tag(112)], {"max_gap_registers": 11}, [("holding", 100, 13, [100, 112])]),
    ("max_gap 0 joins only touching tags", [tag(0), tag(1), tag(3)], {"max_gap_registers": 0},
     [("holding", 0, 2, [0, 1]), ("holding", 3, 1, [3])]),
    ("config order does not matter", [tag(104, "float32"), tag(100, "float32")], {},
     [("holding", 100, 6, [100, 104])]),
    ("overlapping tags share a request", [tag(100, "uint32"), tag(101)], {}, [("holding", 100, 2, [100, 101])]),
    ("bits of one register share it", [tag(5, "bool", bit=0), tag(5, "bool", bit=15)], {},
     [("holding", 5, 1, [5, 5])]),
    ("125 registers fit one request", [tag(0, "string", length=123), tag(123, "uint32")], {},
     [("holding", 0, MAX_REGISTERS, [0, 123])]),
    ("126 registers do not", [tag(0, "string", length=123), tag(123, "float64")], {},
     [("holding", 0, 123, [0]), ("holding", 123, 4, [123])]),
    ("a lower device limit", [tag(0), tag(5), tag(10)], {"max_registers": 6},
     [("holding", 0, 6, [0, 5]), ("holding", 10, 1, [10])]),
    ("tables never mix", [tag(100, table="input"), tag(100), tag(101, "bool", "coil"), tag(101, "bool", "discrete")],
     {}, [("holding", 100, 1, [100]), ("input", 100, 1, [100]), ("coil", 101, 1, [101]),
          ("discrete", 101, 1, [101])]),
    ("bits merge across 64 unused bits", [tag(0, "bool", "coil"), tag(65, "bool", "coil")], {},
     [("coil", 0, 66, [0, 65])]),
    ("bits split past 64", [tag(0, "bool", "coil"), tag(66, "bool", "coil")], {},
     [("coil", 0, 1, [0]), ("coil", 66, 1, [66])]),
    ("plant simulator: one request per machine and table",
     [ModbusTag(**t) for t in example_tags()], {},
     [("holding", 100, 12, [100, 102, 104, 106, 107, 109, 111]),
      ("holding", 200, 12, [200, 202, 204, 206, 207, 209, 211]),
      ("holding", 300, 12, [300, 302, 304, 306, 307, 309, 311]),
      ("coil", 100, 2, [100, 101]), ("coil", 200, 2, [200, 201]), ("coil", 300, 2, [300, 301])]),
]


@pytest.mark.parametrize(("tags", "options", "expected"), [c[1:] for c in PLAN_CASES], ids=[c[0] for c in PLAN_CASES])
def test_plan(tags: list[ModbusTag], options: dict[str, int], expected: list[tuple[str, int, int, list[int]]]) -> None:
    plan = plan_requests(tags, **options)
    got = [(r.table, r.address, r.count, [s.address for s in r.slots]) for r in plan]
    assert got == expected
    for r in plan:
        for s in r.slots:  # each slot points back at its tag and into its request
            assert tags[s.index] is s.tag
            assert r.address + s.offset == s.address == s.tag.location()[1]
            assert s.offset + s.count <= r.count


def test_plan_respects_the_bit_limit() -> None:
    tags = [tag(0, "bool", "coil"), tag(MAX_BITS - 1, "bool", "coil"), tag(MAX_BITS, "bool", "coil")]
    plan = plan_requests(tags, max_gap_bits=MAX_BITS)
    assert [(r.address, r.count) for r in plan] == [(0, MAX_BITS), (MAX_BITS, 1)]


def optimal_requests(starts: Sequence[int], width: int, max_gap: int, limit: int = MAX_REGISTERS) -> int:
    """The fewest requests, by dynamic programming over every way to cut the sorted tags into runs."""
    best = [0] + [math.inf] * len(starts)
    for end in range(1, len(starts) + 1):
        for begin in range(end - 1, -1, -1):
            gaps_ok = all(starts[k + 1] - starts[k] - width <= max_gap for k in range(begin, end - 1))
            if not gaps_ok or starts[end - 1] + width - starts[begin] > limit:
                break
            best[end] = min(best[end], best[begin] + 1)
    return int(best[-1])


@pytest.mark.parametrize(("spacing", "width", "max_gap"), [(12, 1, 10), (12, 1, 11), (7, 2, 5), (3, 2, 0), (40, 4, 36)])
def test_plan_is_optimal(spacing: int, width: int, max_gap: int) -> None:
    types = {1: "uint16", 2: "float32", 4: "float64"}
    tags = [tag(spacing * k, types[width], alias=f"/t{k}") for k in range(100)]
    plan = plan_requests(tags, max_gap_registers=max_gap)
    assert len(plan) == optimal_requests([spacing * k for k in range(100)], width, max_gap)


def test_bisect_and_rejoin() -> None:
    tags = [tag(k, alias=f"/t{k}") for k in range(11)]
    (merged,) = plan_requests(tags)
    left, right = bisect(merged)
    assert [(r.address, r.count) for r in (left, right)] == [(0, 5), (5, 6)]
    assert bisect(plan_requests(tags[:1])[0]) == plan_requests(tags[:1])
    # the answers: 0..4 good, then 5 refused, 6..7 and 8..10 good -> three requests
    parts = [(left, True), *[(r, r.address != 5) for r in (*bisect(bisect(right)[0]), bisect(right)[1])]]
    assert [(r.address, r.count) for r in rejoin(parts)] == [(0, 5), (5, 1), (6, 5)]


# --- decoding --------------------------------------------------------------------------

# Hand-computed words: the reference is the Modbus byte layout, not the library under test.
DECODE_CASES = [
    # (id, type, byte order, registers, scale, expected value)
    ("int16", "int16", "ABCD", [0xFFFE], None, -2),
    ("uint16", "uint16", "ABCD", [0xFFFE], None, 65534),
    ("uint16 BADC", "uint16", "BADC", [0x3412], None, 0x1234),
    ("int32 ABCD", "int32", "ABCD", [0xFFFF, 0xFFFE], None, -2),
    ("int32 CDAB", "int32", "CDAB", [0xFFFE, 0xFFFF], None, -2),
    ("int32 BADC", "int32", "BADC", [0xFFFF, 0xFEFF], None, -2),
    ("int32 DCBA", "int32", "DCBA", [0xFEFF, 0xFFFF], None, -2),
    ("uint32 ABCD", "uint32", "ABCD", [0x0001, 0x0002], None, 65538),
    ("uint32 max", "uint32", "ABCD", [0xFFFF, 0xFFFF], None, 2**32 - 1),
    ("int64 CDAB", "int64", "CDAB", [0xFFFE, 0xFFFF, 0xFFFF, 0xFFFF], None, -2),
    ("uint64 ABCD", "uint64", "ABCD", [0x0000, 0x0001, 0x0000, 0x0000], None, 2**32),
    ("uint64 at int64 max", "uint64", "ABCD", [0x7FFF, 0xFFFF, 0xFFFF, 0xFFFF], None, 2**63 - 1),
    ("float32 ABCD", "float32", "ABCD", [0x3FC0, 0x0000], None, 1.5),
    ("float32 CDAB", "float32", "CDAB", [0x0000, 0x3FC0], None, 1.5),
    ("float32 BADC", "float32", "BADC", [0xC03F, 0x0000], None, 1.5),
    ("float32 DCBA", "float32", "DCBA", [0x0000, 0xC03F], None, 1.5),
    ("float64 ABCD", "float64", "ABCD", [0x4009, 0x21FB, 0x5444, 0x2D18], None, math.pi),
    ("float64 DCBA", "float64", "DCBA", [0x182D, 0x4454, 0xFB21, 0x0940], None, math.pi),
    ("string", "string", "ABCD", [0x4142, 0x4344, 0x4500], None, "ABCDE"),
    ("string BADC", "string", "BADC", [0x4241, 0x4443], None, "ABCD"),
    ("string drops trailing NULs", "string", "ABCD", [0x4F4B, 0x0000, 0x0000], None, "OK"),
    ("string CDAB reverses registers", "string", "CDAB", [0x0000, 0x4344, 0x4142], None, "ABCD"),
    ("int16 scaled", "int16", "ABCD", [0xFFF6], 0.1, -1.0),
    ("uint32 CDAB scaled", "uint32", "CDAB", [0x0002, 0x0001], 2.0, 131076.0),
]


@pytest.mark.parametrize(("data_type", "order", "registers", "scale", "expected"),
                         [c[1:] for c in DECODE_CASES], ids=[c[0] for c in DECODE_CASES])
def test_decode(data_type: str, order: str, registers: list[int], scale: float | None, expected: Any) -> None:
    value = decode_registers(registers, data_type, order, scale)
    assert type(value) is type(expected)
    assert value == pytest.approx(expected) if isinstance(expected, float) else value == expected


def test_decode_offset() -> None:
    assert decode_registers([1000], "int16", scale=0.1, offset=-40.0) == pytest.approx(60.0)


@pytest.mark.parametrize(
    ("data_type", "registers", "words"),
    [("string", [0xFFFE], "cannot decode string"), ("float32", [0x3FC0], "cannot decode float32")],
    ids=["string not utf-8", "too few registers"],
)
def test_decode_refuses(data_type: str, registers: list[int], words: str) -> None:
    with pytest.raises(DecodeError, match=words):
        decode_registers(registers, data_type)


@pytest.mark.parametrize(
    ("kw", "column"),
    [({"type": "int16"}, "integer"), ({"type": "uint64"}, "integer"), ({"type": "float32"}, "double"),
     ({"type": "int32", "scale": 0.1}, "double"), ({"type": "int16", "offset": 1}, "double"),
     ({"type": "string", "length": 2}, "string"), ({"type": "bool", "table": "coil"}, "boolean"),
     ({"type": "bool", "bit": 3}, "boolean")],
    ids=["int16", "uint64", "float32", "scaled int", "offset", "string", "bool", "bit"],
)
def test_column_of(kw: dict[str, Any], column: str) -> None:
    assert column_of(ModbusTag(alias="/x", address=0, **{"table": "holding", **kw})) == column


# --- report by exception ---------------------------------------------------------------


def test_report_filter_deadband_quality_and_heartbeat() -> None:
    f = ReportFilter([1.0, None, 0.0], heartbeat=10.0)

    def select(values: list[float | None], quality: list[int], now: float) -> list[bool]:
        double = pa.array(values, pa.float64())
        nulls = [pa.nulls(3, t) for t in (pa.int64(), pa.string(), pa.bool_())]
        return f.select(double, *nulls, np.array(quality, dtype=np.int8), now).tolist()

    assert select([10.0, 1.0, 5.0], [0, 0, 0], 0.0) == [True, True, True]  # the first poll reports everything
    assert select([10.9, 1.0, 5.0], [0, 0, 0], 1.0) == [False, True, False]  # within the deadband; no deadband
    assert select([11.1, 1.0, 5.0], [0, 0, 0], 2.0) == [True, True, False]  # moved 1.1 from the last reported
    assert select([11.1, 1.0, 5.5], [0, 0, 0], 3.0) == [False, True, True]  # deadband 0: any change
    assert select([None, 1.0, 5.5], [1, 0, 0], 4.0) == [True, True, False]  # quality went BAD
    assert select([11.1, 1.0, 5.5], [0, 0, 0], 5.0) == [True, True, False]  # and back
    assert select([11.1, 1.0, 5.5], [0, 0, 0], 14.0) == [False, True, True]  # heartbeat of the third
    assert select([11.1, 1.0, 5.5], [0, 0, 0], 15.0) == [True, True, False]  # and of the first


# --- the simulator's map ---------------------------------------------------------------


def test_example_tags_cover_every_register_and_coil_signal() -> None:
    tags = [ModbusTag(**t) for t in example_tags("/p")]
    signals = len(plant.REGISTER_MAP) + len(plant.COIL_MAP)
    assert len(tags) == len(plant.MACHINES) * signals == len({t.alias for t in tags})
    assert ModbusTag(**example_tags("/p")[0]).alias == "/p/press1/speed"
    assert {r["table"] for r in register_table()} == {"holding", "input", "coil", "discrete"}


# --- the connector against real servers -------------------------------------------------

TYPED_VALUES = [("int16", -12345), ("uint16", 54321), ("int32", -123456789), ("uint32", 3_000_000_000),
                ("int64", -(2**40) - 7), ("uint64", 2**62 + 11), ("float32", -1234.5), ("float64", math.e * 1e10)]
ORDERS = ("ABCD", "CDAB", "BADC", "DCBA")
_STRUCT = {"int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "int64": "q", "uint64": "Q", "float32": "f",
           "float64": "d"}


def device_words(value: Any, data_type: str, order: str) -> list[int]:
    """The registers a device sends for ``value`` in ``order``, from the bytes (A = most significant)."""
    b = struct.pack(">" + _STRUCT[data_type], value)
    if order in ("BADC", "DCBA"):
        b = b"".join(b[k + 1 : k + 2] + b[k : k + 1] for k in range(0, len(b), 2))
    words = [int.from_bytes(b[k : k + 2], "big") for k in range(0, len(b), 2)]
    return words[::-1] if order in ("CDAB", "DCBA") else words


async def test_every_type_in_every_byte_order_from_a_server() -> None:
    holding: dict[int, list[int]] = {}
    tags: list[dict[str, Any]] = []
    address = 0
    for data_type, value in TYPED_VALUES:
        for order in ORDERS:
            if order in ("CDAB", "DCBA") and data_type.endswith("16"):
                continue
            holding[address] = device_words(value, data_type, order)
            tags.append({"alias": f"/{data_type}/{order}", "address": 400001 + address, "type": data_type,
                         "byte_order": order})
            address += len(holding[address])
    text = "Zone-7 ok"  # 9 characters: 5 registers, the last NUL-padded
    raw = text.encode() + b"\0"
    holding[address] = [int.from_bytes(raw[k : k + 2], "big") for k in range(0, 10, 2)]
    holding[address + 5] = [int.from_bytes(raw[k + 1 : k + 2] + raw[k : k + 1], "big") for k in range(0, 10, 2)]
    tags += [{"alias": "/string/ABCD", "address": 400001 + address, "type": "string", "length": 5},
             {"alias": "/string/BADC", "address": 400006 + address, "type": "string", "length": 5,
              "byte_order": "BADC"}]
    holding[address + 10] = [0b1000_0000_0000_0101, 1000]
    tags += [{"alias": f"/bit/{b}", "address": 400011 + address, "type": "bool", "bit": b} for b in (0, 1, 2, 15)]
    tags += [{"alias": "/scaled", "address": 400012 + address, "type": "int16", "scale": 0.1, "offset": -40}]
    expected: dict[str, Any] = {f"/{t}/{o}": v for t, v in TYPED_VALUES for o in ORDERS}
    expected |= {"/string/ABCD": text, "/string/BADC": text, "/bit/0": True, "/bit/1": False, "/bit/2": True,
                 "/bit/15": True, "/scaled": 60.0}
    async with tcp_server(Unit(holding=holding)) as port:
        conn = ModbusConnector(source(port, tags))
        await conn.open()
        try:
            before = time.time_ns()
            (batch,) = await conn.poll_group(conn.groups[0])
            after = time.time_ns()
        finally:
            await conn.close()
    assert batch.schema == SCHEMA
    got = rows(batch)
    assert list(got) == [t["alias"] for t in tags]  # one row per tag, in configuration order
    for alias, row in got.items():
        assert row["quality"] == Quality.GOOD, alias
        want = expected[alias]
        assert value_of(row) == (pytest.approx(want, rel=1e-6) if isinstance(want, float) else want), alias
    assert got["/float32/ABCD"]["double"] is not None and got["/uint64/DCBA"]["integer"] == 2**62 + 11
    assert len({r["time"] for r in got.values()}) == 1
    assert before <= batch.column("time").cast(pa.int64())[0].as_py() <= after
    assert conn.status.tag_errors == {}


async def test_values_that_do_not_decode_fail_alone() -> None:
    holding = {0: [0x4F4B, 0xFFFE, 0x4F4B, 0x8000, 0, 0, 0, 0x0001, 0, 0, 5]}
    tags = [{"alias": "/ok-text", "address": 40001, "type": "string", "length": 1},
            {"alias": "/bad-text", "address": 40002, "type": "string", "length": 1},
            {"alias": "/ok-text-2", "address": 40003, "type": "string", "length": 1},
            {"alias": "/too-big", "address": 40004, "type": "uint64"},
            {"alias": "/fits", "address": 40008, "type": "uint64"},
            {"alias": "/plain", "address": 40011}]
    conn, got = await poll_once([Unit(holding=holding)], tags)
    assert {a: value_of(r) for a, r in got.items()} == {
        "/ok-text": "OK", "/bad-text": None, "/ok-text-2": "OK", "/too-big": None, "/fits": 2**48 + 5, "/plain": 5}
    assert {a for a, r in got.items() if r["quality"] == Quality.BAD} == {"/bad-text", "/too-big"}
    assert conn.status.tag_errors["/too-big"] == ("uint64 at holding 3 of unit 1: uint64 value 9223372036854775808 "
                                                  "does not fit the integer column (64-bit signed)")
    assert conn.status.tag_errors["/bad-text"].startswith("string at holding 1 of unit 1: cannot decode string")
    assert conn.status.devices["press-line"].errors["decode"] == 2


async def test_modicon_addresses_of_all_four_tables_from_a_server() -> None:
    unit = Unit(holding={99: [1111, 2222]}, input={99: [3333]}, coils={99: [True, False]},
                discrete={99: [False, True]})
    tags = [{"alias": "/hr", "address": 40100}, {"alias": "/hr6", "address": "400101"},
            {"alias": "/ir", "address": 30100}, {"alias": "/co", "address": "00100"},
            {"alias": "/co2", "address": "00101"},
            {"alias": "/di", "address": 10100}, {"alias": "/di2", "address": "100101"}]
    _, got = await poll_once([unit], tags)
    assert {a: value_of(r) for a, r in got.items()} == {
        "/hr": 1111, "/hr6": 2222, "/ir": 3333, "/co": True, "/co2": False, "/di": False, "/di2": True}


async def test_coalescing_seen_at_the_server() -> None:
    """100 tags with 11 unused registers between them: 100 requests with the default gap, 10 with max_gap 11."""
    holding = {0: list(range(1200))}
    tags = [{"alias": f"/t{k}", "address": 400001 + 12 * k} for k in range(100)]
    for max_gap, requests in ((10, 100), (11, 10)):
        log = RequestLog()
        async with tcp_server(Unit(holding=holding), log=log) as port:
            conn = ModbusConnector(source(port, tags, max_gap=max_gap))
            await conn.open()
            try:
                got = await one_round(conn)
            finally:
                await conn.close()
        assert len(log.requests) == requests == len(conn.requests)
        assert [value_of(got[f"/t{k}"]) for k in range(100)] == [12 * k for k in range(100)]


async def test_an_illegal_address_is_isolated_and_the_rest_stays_merged() -> None:
    """11 adjacent tags, the 6th unmapped: 3 requests per poll once learned (not 11)."""
    unit = Unit(holding={0: [10, 11, 12, 13, 14], 6: [16, 17, 18, 19, 20]})
    tags = [{"alias": f"/t{k}", "address": 40001 + k} for k in range(11)]
    log = RequestLog()
    async with tcp_server(unit, log=log) as port:
        conn = ModbusConnector(source(port, tags))
        assert len(conn.requests) == 1
        await conn.open()
        try:
            first = await one_round(conn)
            log.clear()
            second = await one_round(conn)
        finally:
            await conn.close()
    for got in (first, second):
        assert {a for a, r in got.items() if r["quality"] == Quality.BAD} == {"/t5"}
        assert [value_of(got[f"/t{k}"]) for k in range(11) if k != 5] == [10, 11, 12, 13, 14, 16, 17, 18, 19, 20]
    assert [(r[2], r[3]) for r in log.requests] == [(0, 5), (5, 1), (6, 5)]
    assert conn.status.tag_errors == {"/t5": "illegal data address (exception 2) reading holding register 5 of unit 1"}
    assert conn.status.devices["press-line"].errors["illegal data address"] >= 1


async def test_several_units_on_one_connection() -> None:
    units = [Unit(unit_id=u, holding={0: [u * 100 + k for k in range(4)]}) for u in (1, 2, 17)]
    devices = [{"name": f"meter-{u}", "unit_id": u, "tags": [{"alias": f"/m{u}/a", "address": 40001},
                                                              {"alias": f"/m{u}/b", "address": 40004}]}
               for u in (1, 2, 17)]
    log = RequestLog()
    async with tcp_server(*units, log=log) as port:
        conn = ModbusConnector(source(port, devices=devices, interval=0.06))
        await conn.open()
        # staggered: the three devices' polls start spread over their interval, not all at once
        assert [g.due - conn.groups[0].due for g in conn.groups] == pytest.approx([0.0, 0.02, 0.04])
        try:
            batches = await read_batches(conn, 6)
        finally:
            await conn.close()
    got = {a: value_of(r) for b in batches for a, r in rows(b).items()}
    assert got == {"/m1/a": 100, "/m1/b": 103, "/m2/a": 200, "/m2/b": 203, "/m17/a": 1700, "/m17/b": 1703}
    assert log.per_unit() == {1: 2, 2: 2, 17: 2}  # one request per unit and poll, on one connection
    status = conn.status.as_dict()["devices"]
    assert isinstance(status, dict) and set(status) == {"meter-1", "meter-2", "meter-17"}
    assert status["meter-2"]["connected"] is True and status["meter-2"]["requests"] == 2


async def test_a_hung_unit_goes_bad_and_backs_off_while_its_neighbour_goes_on() -> None:
    release = asyncio.Event()
    units = [Unit(unit_id=1, holding={0: [7]}), Unit(unit_id=2, holding={0: [8]}, action=hang_until(release))]
    devices = [{"name": "fast", "unit_id": 1, "tags": [{"alias": "/fast", "address": 40001}]},
               {"name": "hung", "unit_id": 2, "tags": [{"alias": "/hung", "address": 40001}]}]
    log = RequestLog()
    async with tcp_server(*units, log=log) as port:
        conn = ModbusConnector(source(port, devices=devices, timeout=0.2, retries=0, interval=0.05, max_backoff=30))
        await conn.open()
        try:
            start = time.monotonic()
            batches = await read_batches(conn, 30)
            elapsed = time.monotonic() - start
        finally:
            release.set()
            await conn.close()
    hung = [rows(b)["/hung"] for b in batches if "/hung" in rows(b)]
    fast = [rows(b)["/fast"] for b in batches if "/fast" in rows(b)]
    assert hung and all(r["quality"] == Quality.BAD and value_of(r) is None for r in hung)
    assert all(r["integer"] == 7 and r["quality"] == Quality.GOOD for r in fast)
    # the back-off (0.05 s doubling) keeps the hung unit from taking the line's time: a handful of tries, not
    # one per interval (which would be ~elapsed / 0.25 s)
    assert len(hung) == log.per_unit()[2] <= 2 + math.log2(elapsed / 0.05)
    assert len(fast) == 30 - len(hung)
    device = conn.status.devices["hung"]
    assert device.state == "down" and device.errors["timeout"] == log.per_unit()[2]
    assert device.last_error == "no answer within 0.2 s (1 tries) reading holding register 0 of unit 2"
    assert conn.status.devices["fast"].state == "ok"


async def test_a_device_down_and_back_is_logged_once_each_way(caplog: pytest.LogCaptureFixture) -> None:
    release = asyncio.Event()
    units = [Unit(unit_id=1, holding={0: [7]}), Unit(unit_id=2, holding={0: list(range(50))},
                                                    action=hang_until(release))]
    devices = [{"name": "fast", "unit_id": 1, "tags": [{"alias": "/fast", "address": 40001}]},
               {"name": "meter", "unit_id": 2, "tags": [{"alias": f"/meter/{k}", "address": 40001 + k}
                                                        for k in range(50)]}]
    caplog.set_level(logging.INFO, logger="connectors.modbus.connector")
    async with tcp_server(*units) as port:
        conn = ModbusConnector(source(port, devices=devices, timeout=0.2, retries=0, interval=0.05, max_backoff=0.2))
        await conn.open()
        meter = conn.status.devices["meter"]
        try:
            async with asyncio.timeout(10):
                async for _ in conn.stream():
                    if meter.failures >= 3:
                        release.set()
                    if release.is_set() and meter.state == "ok":
                        break
        finally:
            release.set()
            await conn.close()
    lines = [r.getMessage() for r in caplog.records if "meter" in r.getMessage()]
    assert lines == ["modbus source 'press-line': device 'meter' (unit 2) is down: no answer within 0.2 s (1 tries) "
                     "reading holding registers 0..49 of unit 2; its tags are BAD, next try in 0.05 s",
                     "modbus source 'press-line': device 'meter' (unit 2) answers again"]
    assert conn.status.tag_errors == {} and meter.errors["timeout"] >= 3
    # pymodbus's own ERROR line for each unanswered request is dropped: the device's line says it once
    assert not [r for r in caplog.records if r.name.startswith("pymodbus") and "No response" in r.getMessage()]


async def test_an_absent_unit_behind_a_gateway_is_down() -> None:
    async def absent(*_args: Any) -> ExcCodes:
        return ExcCodes.GATEWAY_NO_RESPONSE

    units = [Unit(unit_id=1, holding={0: [5]}), Unit(unit_id=9, holding={0: [0]}, action=absent)]
    devices = [{"name": "here", "unit_id": 1, "tags": [{"alias": "/here", "address": 40001}]},
               {"name": "gone", "unit_id": 9, "tags": [{"alias": "/gone", "address": 40001}]}]
    conn, got = await poll_once(units, devices=devices)
    assert got["/gone"]["quality"] == Quality.BAD and got["/here"]["integer"] == 5
    assert conn.status.tag_errors == {
        "/gone": "gateway target device failed to respond (exception 11) reading holding register 0 of unit 9"}
    assert conn.status.devices["gone"].state == "down"


async def test_a_busy_answer_fails_its_tags_and_clears() -> None:
    busy = True

    async def action(*_args: Any) -> ExcCodes | None:
        return ExcCodes.DEVICE_BUSY if busy else None

    tags = [{"alias": "/a", "address": 40001}, {"alias": "/b", "address": 40002}]
    async with tcp_server(Unit(holding={0: [7, 8]}, action=action)) as port:
        conn = ModbusConnector(source(port, tags))
        await conn.open()
        try:
            got = await one_round(conn)
            assert [r["quality"] for r in got.values()] == [Quality.BAD, Quality.BAD]
            assert conn.status.tag_errors["/a"] == \
                "server device busy (exception 6) reading holding registers 0..1 of unit 1"
            assert len(conn.requests) == 1  # busy is not a reason to bisect
            device = conn.status.devices["press-line"]
            assert device.state == "ok" and device.last_good_poll is None  # it answers, but no tag is read
            busy = False
            got = await one_round(conn)
        finally:
            await conn.close()
    assert [(r["integer"], r["quality"]) for r in got.values()] == [(7, Quality.GOOD), (8, Quality.GOOD)]
    assert conn.status.tag_errors == {}


async def test_device_down_and_back(simulator: ModbusSimulator) -> None:
    conn = ModbusConnector(source(simulator.port, example_tags(), timeout=5.0))
    await conn.open()
    try:
        (good,) = await read_batches(conn, 1)
        await simulator.stop()
        batches: list[pa.RecordBatch] = []
        async with asyncio.timeout(2):  # well before the 5 s timeout: the lost connection is seen at once
            with pytest.raises(ConnectorError, match=f"connection to {HOST}:{simulator.port} lost") as err:
                async for batch in conn.stream():
                    batches.append(batch)
        (bad,) = batches  # every tag BAD at once, then the error for the runtime
        assert bad.num_rows == len(example_tags()) and set(bad.column("quality").to_pylist()) == {Quality.BAD}
        assert conn.status.last_error == str(err.value)
        assert conn.status.devices["press-line"].state == "disconnected"
        await conn.close()
        await simulator.start()  # same port
        await conn.open()
        (back,) = await read_batches(conn, 1)
    finally:
        await conn.close()
    assert set(good.column("quality").to_pylist()) == set(back.column("quality").to_pylist()) == {Quality.GOOD}
    assert conn.status.devices["press-line"].state == "ok"


async def test_a_silent_device_is_not_connected() -> None:
    """A device that accepts the connection and never answers: tags BAD, then ConnectorError for the runtime."""
    release = asyncio.Event()
    async with tcp_server(Unit(holding={0: [1]}, action=hang_until(release))) as port:
        conn = ModbusConnector(source(port, [{"alias": "/a", "address": 40001}], timeout=0.2, retries=1))
        await conn.open()
        batches: list[pa.RecordBatch] = []
        try:
            async with asyncio.timeout(3):
                with pytest.raises(ConnectorError, match="no device answers on") as err:
                    async for batch in conn.stream():
                        batches.append(batch)
        finally:
            release.set()
            await conn.close()
    assert [rows(b)["/a"]["quality"] for b in batches] == [Quality.BAD]
    assert "no answer within 0.2 s (2 tries) reading holding register 0 of unit 1" in str(err.value)
    assert conn.status.devices["press-line"].as_dict(0)["connected"] is False


async def test_open_fails_fast_when_nothing_listens() -> None:
    port = free_port()
    conn = ModbusConnector(source(port, example_tags()[:1], timeout=1.0))
    async with asyncio.timeout(3):
        with pytest.raises(ConnectorError) as err:
            await conn.open()
    assert f"modbus source 'press-line': cannot connect to {HOST}:{port}" in str(err.value)
    assert (err.value.source, err.value.endpoint) == ("press-line", f"{HOST}:{port}")
    assert conn.status.last_error == str(err.value)
    await conn.close()


async def test_poll_groups_have_their_own_intervals_and_report_by_exception() -> None:
    holding = {0: [100, 5]}
    tags = [{"alias": "/fast", "address": 40001, "group": "fast"},
            {"alias": "/slow", "address": 40002, "group": "slow"}]
    groups = [{"name": "fast", "interval": "20ms", "deadband": 2, "heartbeat": "10s"},
              {"name": "slow", "interval": "400ms"}]
    log = RequestLog()
    async with tcp_server(Unit(holding=holding), log=log) as port:
        conn = ModbusConnector(source(port, tags, poll_groups=groups))
        await conn.open()
        try:
            start = time.monotonic()
            seen: list[str] = []
            async with asyncio.timeout(5):
                async for batch in conn.stream():
                    seen.extend(rows(batch))
                    if len([r for r in log.requests if r[2] == 0]) >= 15:
                        break
            elapsed = time.monotonic() - start
        finally:
            await conn.close()
    fast_requests = len([r for r in log.requests if r[2] == 0])
    slow_requests = len([r for r in log.requests if r[2] == 1])
    assert slow_requests <= 1 + elapsed / 0.4 + 1 and fast_requests >= 15
    assert seen.count("/fast") == 1  # an unchanged value inside its deadband is reported once (no heartbeat yet)
    assert seen.count("/slow") == slow_requests  # no deadband: every poll


async def test_pause_between_requests_to_a_device() -> None:
    tags = [{"alias": "/a", "address": 40001}, {"alias": "/b", "address": 40101}]
    async with tcp_server(Unit(holding={0: [1], 100: [2]})) as port:
        conn = ModbusConnector(source(port, tags, pause="150ms"))
        await conn.open()
        try:
            start = time.monotonic()
            await one_round(conn)
            elapsed = time.monotonic() - start
        finally:
            await conn.close()
    assert len(conn.requests) == 2 and elapsed >= 0.15


async def test_rtu_frames_over_tcp() -> None:
    units = [Unit(unit_id=3, holding={0: device_words(-1.25, "float32", "CDAB")}), Unit(unit_id=4, coils={0: [True]})]
    devices = [{"name": "drive", "unit_id": 3, "byte_order": "CDAB",
                "tags": [{"alias": "/drive/speed", "address": 40001, "type": "float32"}]},
               {"name": "relay", "unit_id": 4, "tags": [{"alias": "/relay/on", "address": "00001"}]}]
    async with tcp_server(*units, framer=FramerType.RTU) as port:
        conn = ModbusConnector(source(port, devices=devices, transport="rtu_over_tcp"))
        await conn.open()
        try:
            got = await one_round(conn)
        finally:
            await conn.close()
    assert {a: value_of(r) for a, r in got.items()} == {"/drive/speed": -1.25, "/relay/on": True}


async def test_serial_rtu_line_with_several_units() -> None:
    log = RequestLog()
    units = [Unit(unit_id=1, holding={0: [11, 12]}), Unit(unit_id=2, input={0: device_words(70000, "uint32", "ABCD")})]
    devices = [{"name": "meter-1", "unit_id": 1, "tags": [{"alias": "/m1", "address": 40002}]},
               {"name": "meter-2", "unit_id": 2, "tags": [{"alias": "/m2", "address": 30001, "type": "uint32"}]}]
    async with serial_line() as (server_end, client_end), serial_server(server_end, *units, log=log):
        conn = ModbusConnector(ModbusSource.model_validate({
            "name": "rs485", "type": "modbus", "transport": "serial", "timeout": 1.0, "interval": 0.05,
            "serial": {"port": client_end, "baudrate": 115200}, "devices": devices}))
        await conn.open()
        try:
            batches = await read_batches(conn, 4)
        finally:
            await conn.close()
    got = {a: value_of(r) for b in batches for a, r in rows(b).items()}
    assert got == {"/m1": 12, "/m2": 70000}
    assert log.per_unit() == {1: 2, 2: 2}


async def test_serial_port_that_does_not_exist(tmp_path: Path) -> None:
    conn = ModbusConnector(ModbusSource.model_validate({
        "name": "rs485", "type": "modbus", "transport": "serial", "serial": {"port": str(tmp_path / "ttyUSB9")},
        "tags": [{"alias": "/a", "address": 40001}]}))
    with pytest.raises(ConnectorError, match=f"cannot connect to {tmp_path / 'ttyUSB9'}"):
        await conn.open()
    await conn.close()


async def test_stream_needs_open() -> None:
    conn = ModbusConnector(source(free_port(), example_tags()[:1]))
    await conn.close()
    with pytest.raises(ConnectorError, match="stream\\(\\) before open\\(\\)"):
        async for _ in conn.stream():
            pass
    await conn.close()


async def test_simulator_refuses_a_busy_port(simulator: ModbusSimulator) -> None:
    with pytest.raises(RuntimeError, match=f"cannot listen on {HOST}:{simulator.port}"):
        await ModbusSimulator(port=simulator.port).start()


# --- golden case folders ----------------------------------------------------------------


def golden_cases() -> list[Path]:
    return sorted(p for p in CASES.iterdir() if p.is_dir())


@pytest.mark.parametrize("case", golden_cases(), ids=lambda p: p.name)
async def test_golden_case(case: Path) -> None:
    """A folder: ``config.yaml`` (a source with a ``server:`` section of unit tables) and either ``expected.yaml``
    (alias -> value, or BAD) or ``error.txt`` (the configuration issues, one a line)."""
    doc = yaml.safe_load((case / "config.yaml").read_text(encoding="utf-8"))
    server = doc.pop("server", {})
    if (case / "error.txt").exists():
        with pytest.raises(ConfigError) as err:
            parse_config({"sources": [doc]}, env={})
        assert [str(i) for i in err.value.issues] == (case / "error.txt").read_text(encoding="utf-8").splitlines()
        return
    expected = yaml.safe_load((case / "expected.yaml").read_text(encoding="utf-8"))
    units = [Unit(unit_id=int(u), holding=t.get("holding", {}), input=t.get("input", {}),
                  coils=t.get("coils", {}), discrete=t.get("discrete", {})) for u, t in server.items()]
    async with tcp_server(*units) as port:
        conn = ModbusConnector(ModbusSource.model_validate({**doc, "host": HOST, "port": port}))
        await conn.open()
        try:
            got = await one_round(conn)
        finally:
            await conn.close()
    shown = {a: "BAD" if r["quality"] == Quality.BAD else value_of(r) for a, r in got.items()}
    assert shown == pytest.approx(expected)


def test_readme_and_sample_show_every_setting() -> None:
    folder = Path(__file__).parents[2] / "connectors" / "modbus"
    readme = (folder / "README.md").read_text(encoding="utf-8")
    from connectors.modbus.config import ModbusDevice, PollGroup, SerialLine

    for model in (ModbusSource, ModbusTag, ModbusDevice, PollGroup, SerialLine):
        for name in model.model_fields:
            assert re.search(rf"\s{name}:\s", readme), f"connectors/modbus/README.md does not show {name!r}"
    sample = yaml.safe_load((folder / "sample.yaml").read_text(encoding="utf-8"))
    cfg = parse_config({"sources": sample["sources"]}, env={})
    assert all(isinstance(s, ModbusSource) for s in cfg.sources) and len(cfg.sources) >= 2
    assert [len(p.requests) for p in plan_source(cfg.sources[0])] == [4, 1, 1]


def test_validate_prints_the_plan_and_refuses_a_bad_address(tmp_path: Path) -> None:
    def validate(sources: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
        path = tmp_path / "gateway.yaml"
        path.write_text(yaml.safe_dump({"gateway": {"name": "t", "data_dir": str(tmp_path / "data")},
                                        "sources": sources}), encoding="utf-8")
        return subprocess.run([sys.executable, "-m", "sitewise_edge", "validate", "-c", str(path)],
                              capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2])

    devices = [{"name": "meter", "unit_id": 4, "tags": [{"alias": f"/m/{k}", "address": 30001 + 2 * k,
                                                          "type": "float32"} for k in range(70)]}]
    out = validate([{"name": "rs485", "type": "modbus", "transport": "serial", "serial": {"port": "/dev/ttyUSB0"},
                     "devices": devices}])
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "source 'rs485':",
        "  device 'meter' (unit 4), group 'default' every 1 s: 70 tags in 2 requests (140 registers)",
        "    input registers 0..123: 62 tags",
        "    input registers 124..139: 8 tags",
        "ok"]
    devices[0]["tags"][69]["address"] = 365536
    out = validate([{"name": "rs485", "type": "modbus", "transport": "serial", "serial": {"port": "/dev/ttyUSB0"},
                     "devices": devices}])
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert ("sources[0].devices[0].tags[69]: float32 at input register address 65535 needs addresses up to 65536, "
            "past the last address 65535") in out.stderr


@pytest.mark.parametrize("transport", ["rtu_over_tcp", "serial"])
async def test_the_simulator_over_rtu(transport: str) -> None:
    async with contextlib.AsyncExitStack() as stack:
        if transport == "serial":
            server_end, client_end = await stack.enter_async_context(serial_line())
            sim = ModbusSimulator(serial_port=server_end, baudrate=115200, update_interval=3600)
            where: dict[str, Any] = {"serial": {"port": client_end, "baudrate": 115200}}
        else:
            sim = ModbusSimulator(port=0, framer="rtu", update_interval=3600)
            where = {"host": HOST}
        await sim.start()
        stack.push_async_callback(sim.stop)
        if transport != "serial":
            where["port"] = sim.port
        conn = ModbusConnector(ModbusSource.model_validate({"name": "sim", "type": "modbus", "transport": transport,
                                                            "timeout": 1.0, "tags": example_tags(), **where}))
        await conn.open()
        stack.push_async_callback(conn.close)
        got = await one_round(conn)
    assert all(r["quality"] == Quality.GOOD for r in got.values()) and len(got) == len(example_tags())
    written = sim.snapshot()["Press1"]["GoodCount"]
    assert got[plant.alias("Press1", "GoodCount")]["integer"] == written
    shown = "serial RTU on /dev/" if transport == "serial" else f"{HOST}:{sim.port} (RTU over TCP)"
    assert sim.where.startswith(shown)
