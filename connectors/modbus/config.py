"""The ``type: modbus`` source section (sample: ``sample.yaml`` next to this file).

    source = ModbusSource.model_validate({"name": "plc", "type": "modbus", "host": "10.0.0.7",
                                          "tags": [{"alias": "/s", "table": "holding", "address": 100}]})

What a single tag cannot show (a value past the last address, an alias used twice in one
source) is checked by the request planner (``plan.check_tags``) when the connector is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from sitewise_edge.config import Aliased, Duration, Port, SourceConfig, _Model, closed

Table = Literal["holding", "input", "coil", "discrete"]
DataType = Literal["int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "bool", "string"]
WordOrder = Literal["big", "little"]

WORD_ORDER_ALIASES = {"ABCD": "big", "CDAB": "little", "big-endian": "big", "little-endian": "little"}
"""Other spellings of ``word_order``, normalised once at load so that later code sees one form."""


def _word_order_alias(value: Any) -> Any:
    return WORD_ORDER_ALIASES.get(value, value) if isinstance(value, str) else value


class ModbusTag(_Model):
    alias: str
    table: Annotated[Table, closed("register table", Table)]
    address: int = Field(ge=0, le=65535)
    type: Annotated[DataType, closed("data type", DataType)] = "uint16"
    # validators run right to left: the alias is normalised before the check
    word_order: Annotated[WordOrder, closed("word order", WordOrder), BeforeValidator(_word_order_alias)] = "big"
    """Order of the 16-bit words of a multi-register value: ``big`` (ABCD) or ``little`` (CDAB)."""
    length: int | None = Field(default=None, ge=1, le=123)
    """Registers holding a ``string`` tag."""
    scale: float | None = None
    """Multiply the raw value (the result is stored as a double)."""

    @model_validator(mode="after")
    def _fits_table(self) -> ModbusTag:
        bit_table = self.table in ("coil", "discrete")
        if bit_table and self.type != "bool":
            raise ValueError(f"table {self.table} holds bits: type must be bool, not {self.type}")
        if not bit_table and self.type == "bool":
            raise ValueError(f"type bool needs table coil or discrete, not {self.table}")
        if self.type == "string" and not self.length:
            raise ValueError("type string needs length (the number of registers)")
        return self


class ModbusSource(SourceConfig):
    type: Literal["modbus"]
    host: str
    port: Port = 502
    unit_id: int = Field(default=1, ge=0, le=255)
    interval: Duration = 1.0
    timeout: Duration = 3.0
    tags: list[ModbusTag] = Field(min_length=1)

    def aliased_items(self) -> tuple[str, Sequence[Aliased]]:
        return "tags", self.tags
