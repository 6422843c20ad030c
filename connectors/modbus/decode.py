"""Pure converters from Modbus registers and bits to the values of a sample batch.

The byte-level work is pymodbus's own ``convert_from_registers``; this module picks the
data type, applies the scale and decides the SiteWise column of each tag:

==========================================  ==========
tag                                         column
==========================================  ==========
int16 … uint64 without ``scale``            integer (int64; a uint64 past 2**63-1 is refused)
float32, float64, or any type with scale    double
string                                      string
bool (coil, discrete input)                 boolean
==========================================  ==========
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pymodbus.client.mixin import ModbusClientMixin
from pymodbus.exceptions import ModbusException

from connectors.modbus.config import ModbusTag
from connectors.modbus.plan import ReadRequest, TagSlot

Value = int | float | str | bool
WordOrder = Literal["big", "little"]

_DT = ModbusClientMixin.DATATYPE
DATATYPES: dict[str, ModbusClientMixin.DATATYPE] = {
    "int16": _DT.INT16,
    "uint16": _DT.UINT16,
    "int32": _DT.INT32,
    "uint32": _DT.UINT32,
    "int64": _DT.INT64,
    "uint64": _DT.UINT64,
    "float32": _DT.FLOAT32,
    "float64": _DT.FLOAT64,
    "string": _DT.STRING,
}
INT64_MAX = 2**63 - 1


class DecodeError(ValueError):
    """Registers that do not make a value of the tag's column (the tag gets BAD quality)."""


def column_of(tag: ModbusTag) -> str:
    """The sample batch column a tag's values go to."""
    if tag.type == "bool":
        return "boolean"
    if tag.type == "string":
        return "string"
    if tag.scale is not None or tag.type.startswith("float"):
        return "double"
    return "integer"


def decode_registers(
    registers: Sequence[int],
    data_type: str,
    word_order: str = "big",
    scale: float | None = None,
) -> Value:
    """Registers of one value -> an int, float or str; ``scale`` makes it a float.

    ``word_order`` is the order of the 16-bit words (``big``: ABCD, ``little``: CDAB); bytes
    within a word are always big-endian, as Modbus sends them.
    """
    order: WordOrder = "little" if word_order == "little" else "big"
    try:
        value = ModbusClientMixin.convert_from_registers(list(registers), DATATYPES[data_type], word_order=order)
    except (ModbusException, UnicodeDecodeError) as exc:
        raise DecodeError(f"cannot decode {data_type} from registers {list(registers)}: {exc}") from None
    if isinstance(value, list):  # convert_from_registers returns a list when given several values
        raise DecodeError(f"{len(registers)} registers hold several {data_type} values, expected one")
    if isinstance(value, str):
        return value
    if scale is not None:
        return float(value) * scale
    if isinstance(value, int) and value > INT64_MAX:
        raise DecodeError(f"{data_type} value {value} does not fit the integer column (64-bit signed)")
    return value


def decode_slot(slot: TagSlot, data: Sequence[int] | Sequence[bool]) -> Value:
    """The value of one tag out of the answer to the request that holds it."""
    tag = slot.tag
    if tag.type == "bool":
        return bool(data[slot.offset])
    regs = data[slot.offset : slot.offset + slot.count]
    return decode_registers([int(r) for r in regs], tag.type, tag.word_order, tag.scale)


def check_answer(request: ReadRequest, data: Sequence[int] | Sequence[bool]) -> None:
    """A short answer would shift every value: refuse it before decoding anything."""
    if len(data) < request.count:
        raise DecodeError(f"device answered {len(data)} values for {request.describe()}, expected {request.count}")
