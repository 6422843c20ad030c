"""Pure converters from Modbus registers and bits to the columns of a sample batch.

The answers of one poll group are laid side by side in one array of registers and one of
bits; :class:`Decoder`, built once per plan, holds for every (type, byte order) an index
matrix into them and converts all tags of that kind with a few numpy operations (no Python
loop per value), strings too (as fixed-width byte strings, checked as UTF-8 by pyarrow; pymodbus's
``convert_from_registers`` only for the one that is not valid UTF-8).

==========================================  ==========
tag                                         column
==========================================  ==========
int16 … uint64 without scale or offset      integer (int64; a uint64 past 2**63-1 is BAD)
float32, float64, or with scale / offset    double
string                                      string
bool (coil, discrete input, bit)            boolean
==========================================  ==========

Byte orders name the bytes of a value as the device sends them, A the most significant:
ABCD big-endian, CDAB words swapped, BADC bytes swapped within each word, DCBA both.
For a string, BADC (and DCBA) swap the two characters of every register; CDAB and DCBA
reverse the order of the registers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pymodbus.client.mixin import ModbusClientMixin
from pymodbus.exceptions import ModbusException

from connectors.modbus.config import ModbusTag
from connectors.modbus.plan import ReadRequest, TagSlot

Value = int | float | str | bool
INT64_MAX = 2**63 - 1

_NUMPY_TYPE = {"int16": ">i2", "uint16": ">u2", "int32": ">i4", "uint32": ">u4", "int64": ">i8", "uint64": ">u8",
               "float32": ">f4", "float64": ">f8"}


class DecodeError(ValueError):
    """Registers that do not make a value of the tag's column (the tag gets BAD quality)."""


def column_of(tag: ModbusTag) -> str:
    """The sample batch column a tag's values go to."""
    if tag.type == "bool":
        return "boolean"
    if tag.type == "string":
        return "string"
    if tag.scale is not None or tag.offset is not None or tag.type.startswith("float"):
        return "double"
    return "integer"


def order_registers(registers: np.ndarray, byte_order: str) -> np.ndarray:
    """Registers (rows of one value each, uint16) put into ABCD order: swap bytes and words as named."""
    out = registers
    if byte_order in ("BADC", "DCBA"):
        out = ((out >> 8) | (out << 8)).astype(np.uint16)
    if byte_order in ("CDAB", "DCBA"):
        out = out[..., ::-1]
    return out


def decode_registers(
    registers: Sequence[int], data_type: str, byte_order: str = "ABCD", scale: float | None = None,
    offset: float | None = None,
) -> Value:
    """The registers of one value -> an int, float or str; ``scale`` or ``offset`` make it a float."""
    regs = order_registers(np.asarray(registers, dtype=np.uint16)[None, :], byte_order)[0]
    if data_type == "string":
        try:
            text = ModbusClientMixin.convert_from_registers([int(r) for r in regs], ModbusClientMixin.DATATYPE.STRING)
        except (ModbusException, UnicodeDecodeError) as exc:
            raise DecodeError(f"cannot decode string from registers {list(registers)}: {exc}") from None
        return str(text)
    width = int(_NUMPY_TYPE[data_type][2:]) // 2
    if len(regs) != width:
        raise DecodeError(f"cannot decode {data_type} from registers {list(registers)}: needs {width}")
    value = np.frombuffer(regs.astype(">u2").tobytes(), dtype=_NUMPY_TYPE[data_type])[0].item()
    if scale is not None or offset is not None:
        return float(value) * (1.0 if scale is None else scale) + (offset or 0.0)
    if isinstance(value, int) and value > INT64_MAX:
        raise DecodeError(f"{data_type} value {value} does not fit the integer column (64-bit signed)")
    return value


@dataclass(frozen=True, slots=True)
class _Kind:
    """Tags of one conversion: rows in the batch, and where their registers or bits are."""

    rows: np.ndarray
    index: np.ndarray
    """(tags, registers) into the register buffer, or (tags,) into the bit buffer."""
    data_type: str
    byte_order: str
    column: str
    scale: np.ndarray | None
    offset: np.ndarray | None
    bit: np.ndarray | None = None


@dataclass(slots=True)
class Decoded:
    """The value columns of one poll group's batch, and which rows could not be decoded (and why)."""

    double: pa.Array
    integer: pa.Array
    string: pa.Array
    boolean: pa.Array
    errors: dict[int, str]


class Decoder:
    """Converts the answers to a list of requests into batch columns; one per poll group and plan."""

    def __init__(self, tags: Sequence[ModbusTag], requests: Sequence[ReadRequest], default_order: str) -> None:
        self.n = len(tags)
        self.requests = tuple(requests)
        reg_base, bit_base = {}, {}
        registers = bits = 0
        for k, r in enumerate(self.requests):
            if r.is_bits:
                bit_base[k], bits = bits, bits + r.count
            else:
                reg_base[k], registers = registers, registers + r.count
        self.registers, self.bits = registers, bits
        self.base = [bit_base.get(k, reg_base.get(k, 0)) for k in range(len(self.requests))]
        """Where the answer of each request starts in its buffer."""
        position = {s.index: (k, s) for k, r in enumerate(self.requests) for s in r.slots}
        groups: dict[tuple[str, str, str, bool], list[int]] = {}
        for row, tag in enumerate(tags):
            k, _ = position[row]
            in_bits = self.requests[k].is_bits
            order = tag.byte_order or default_order
            if tag.type in ("int16", "uint16", "bool"):
                order = "BADC" if order in ("BADC", "DCBA") else "ABCD"
            groups.setdefault((tag.type, order, column_of(tag), in_bits), []).append(row)
        self.kinds: list[_Kind] = []
        self.strings: list[_Kind] = []
        """Strings, one kind per byte order and length."""
        for (data_type, order, column, in_bits), all_rows in groups.items():
            by_width: dict[int, list[int]] = {}
            for row in all_rows:
                by_width.setdefault(tags[row].count(), []).append(row)
            for width, rows in by_width.items():
                self._add(tags, rows, position, data_type, order, column, in_bits, width)

    def _add(self, tags: Sequence[ModbusTag], rows: list[int], position: dict[int, tuple[int, TagSlot]],
             data_type: str, order: str, column: str, in_bits: bool, width: int) -> None:
        starts = np.array([self.base[position[r][0]] + position[r][1].offset for r in rows], dtype=np.int64)
        members = [tags[r] for r in rows]
        if data_type == "string":
            self.strings.append(_Kind(np.array(rows, dtype=np.int64), starts[:, None] + np.arange(width), data_type,
                                      order, column, None, None))
            return
        index = starts if in_bits else starts[:, None] + np.arange(width)
        scaled = (column == "double" and not data_type.startswith("float")) or any(
            t.scale is not None or t.offset is not None for t in members)
        self.kinds.append(_Kind(
            np.array(rows, dtype=np.int64), index, data_type, order, column,
            np.array([1.0 if t.scale is None else t.scale for t in members]) if scaled else None,
            np.array([t.offset or 0.0 for t in members]) if scaled else None,
            np.array([t.bit or 0 for t in members], dtype=np.uint16) if data_type == "bool" and not in_bits
            else None,
        ))

    def decode(self, registers: np.ndarray, bits: np.ndarray, failed: np.ndarray) -> Decoded:
        """Columns for the buffers of one poll (uint16 registers, bool bits); ``failed`` rows stay null."""
        n = self.n
        values = {"double": np.zeros(n, np.float64), "integer": np.zeros(n, np.int64),
                  "boolean": np.zeros(n, np.bool_)}
        valid = {c: np.zeros(n, np.bool_) for c in (*values, "string")}
        errors: dict[int, str] = {}
        for kind in self.kinds:
            rows = kind.rows
            if kind.data_type == "bool":
                got = bits[kind.index] if kind.bit is None else (registers[kind.index[:, 0]] >> kind.bit) & 1
                values["boolean"][rows] = got.astype(np.bool_)
            else:
                regs = order_registers(registers[kind.index], kind.byte_order)
                raw = np.frombuffer(np.ascontiguousarray(regs).astype(">u2").tobytes(),
                                    dtype=_NUMPY_TYPE[kind.data_type])
                if kind.column == "double":
                    number = raw.astype(np.float64)
                    if kind.scale is not None and kind.offset is not None:
                        number = number * kind.scale + kind.offset
                    values["double"][rows] = number
                else:
                    if kind.data_type == "uint64":
                        too_big = raw > INT64_MAX
                        for r, v in zip(rows[too_big], raw[too_big], strict=True):
                            errors[int(r)] = f"uint64 value {int(v)} does not fit the integer column (64-bit signed)"
                    values["integer"][rows] = raw.astype(np.int64)
            valid[kind.column][rows] = True
        texts = np.full(n, "", dtype=object)
        for kind in self.strings:
            regs = np.ascontiguousarray(order_registers(registers[kind.index], kind.byte_order)).astype(">u2")
            raw = regs.view(f"S{2 * kind.index.shape[1]}").ravel()  # fixed-width bytes drop trailing NULs
            try:
                texts[kind.rows] = pc.cast(pa.array(raw, pa.binary()), pa.string()).to_numpy(zero_copy_only=False)
            except pa.ArrowInvalid:  # some are not UTF-8: find which, one by one
                for row, index in zip(kind.rows, kind.index, strict=True):
                    try:
                        texts[row] = decode_registers(registers[index], "string", kind.byte_order)
                    except DecodeError as exc:
                        errors[int(row)] = str(exc)
            valid["string"][kind.rows] = True
        bad = failed.copy()
        if errors:
            bad[list(errors)] = True
        return Decoded(
            pa.array(values["double"], pa.float64(), mask=~valid["double"] | bad),
            pa.array(values["integer"], pa.int64(), mask=~valid["integer"] | bad),
            pa.array(texts, pa.string(), mask=~valid["string"] | bad),
            pa.array(values["boolean"], pa.bool_(), mask=~valid["boolean"] | bad),
            errors,
        )
