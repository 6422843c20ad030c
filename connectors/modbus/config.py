"""The ``type: modbus`` source section (sample: ``sample.yaml`` next to this file).

    source = ModbusSource.model_validate({"name": "plc", "type": "modbus", "host": "10.0.0.7",
                                          "tags": [{"alias": "/s", "address": 40101}]})

One source is one connection (a TCP socket, or a serial line); ``devices`` lists the units
behind it, each with its tags. A source with ``tags`` (and ``unit_id``) at its top level is one
device, named after the source: the form of earlier versions, still accepted as it was.

Addresses are zero-based with a ``table``, or Modicon notation without one (``40101`` is holding
register address 100, ``400101`` the same in six digits, ``"00001"`` the first coil). Everything a
configuration can get wrong is refused here, at load, with the key path (``sitewise-edge validate``
shows it): an address past 65535, a value that runs past it, a bit past 15, a byte order that a
type cannot have, an alias used twice, a poll group nobody defined.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from sitewise_edge.config import Aliased, Duration, Port, SourceConfig, _Model, closed

Table = Literal["holding", "input", "coil", "discrete"]
DataType = Literal["int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "bool", "string"]
ByteOrder = Literal["ABCD", "CDAB", "BADC", "DCBA"]
Transport = Literal["tcp", "rtu_over_tcp", "serial"]

BYTE_ORDER_ALIASES = {
    "big": "ABCD", "big-endian": "ABCD", "noSwap": "ABCD",
    "little": "CDAB", "little-endian": "CDAB", "wordSwap": "CDAB",
    "byteSwap": "BADC", "byteWordSwap": "DCBA",
}
"""Other spellings of a byte order (``word_order`` of earlier versions, SiteWise's swap modes),
normalised once at load so that later code sees one form."""

REGISTERS_OF_TYPE = {
    "int16": 1, "uint16": 1, "bool": 1,
    "int32": 2, "uint32": 2, "float32": 2,
    "int64": 4, "uint64": 4, "float64": 4,
}
LAST_ADDRESS = 65535
MAX_REGISTERS = 125
"""Registers in one read of holding or input registers (function codes 3 and 4)."""
MAX_BITS = 2000
"""Bits in one read of coils or discrete inputs (function codes 1 and 2)."""
BIT_TABLES = ("coil", "discrete")
MODICON_TABLES = {"0": "coil", "1": "discrete", "3": "input", "4": "holding"}
TABLE_DIGIT = {t: d for d, t in MODICON_TABLES.items()}
TABLE_NAMES = {"holding": "holding register", "input": "input register", "coil": "coil", "discrete": "discrete input"}
DEFAULT_GROUP = "default"


def _byte_order_alias(value: Any) -> Any:
    return BYTE_ORDER_ALIASES.get(value, value) if isinstance(value, str) else value


ByteOrderField = Annotated[ByteOrder, closed("byte order", ByteOrder), BeforeValidator(_byte_order_alias)]


def parse_modicon(address: int | str) -> tuple[str, int]:
    """A Modicon address (``40101``, ``400101``, ``"00001"``) -> (table, zero-based address).

    Five digits: the first names the table, the other four the register, counted from 1
    (``40001`` .. ``49999``). Six digits reach every address (``400001`` .. ``465536``).
    """
    text = str(address).strip()
    if not text.isdigit():
        raise ValueError(f"address {address!r} is not a number")
    if len(text) not in (5, 6):
        raise ValueError(
            f"address {address!r} has no table: give table (and a zero-based address) or a Modicon address "
            "of 5 or 6 digits such as 40101, 400101 or \"00001\" (quoted: a number loses its leading zeros)"
        )
    table = MODICON_TABLES.get(text[0])
    if table is None:
        raise ValueError(f"Modicon address {text} starts with {text[0]}: expected 0 (coil), 1 (discrete input), "
                         "3 (input register) or 4 (holding register)")
    number = int(text[1:])
    if not 1 <= number <= LAST_ADDRESS + 1:
        raise ValueError(f"Modicon address {text} is out of range: registers count from {text[0]}"
                         f"{'1'.zfill(len(text) - 1)} up to {text[0]}{LAST_ADDRESS + 1 if len(text) == 6 else 9999}")
    if len(text) == 5 and number > 9999:  # impossible with 4 digits; kept for clarity
        raise ValueError(f"Modicon address {text} is out of range")
    return table, number - 1


class ModbusTag(_Model):
    alias: str
    table: Annotated[Table, closed("register table", Table, optional=True)] | None = None
    """``holding``, ``input``, ``coil`` or ``discrete``; without it ``address`` is a Modicon address."""
    address: int | str
    """Zero-based with ``table``; Modicon (``40101``, ``400101``, ``"00001"``) without. Read :attr:`start`."""
    type: Annotated[DataType, closed("data type", DataType)] = "uint16"
    bit: int | None = Field(default=None, ge=0, le=15)
    """For ``type: bool`` in a register table: the bit of the register, 0 (least significant) .. 15."""
    byte_order: ByteOrderField | None = None
    """ABCD (big-endian), CDAB (word swap), BADC (byte swap), DCBA (both); default: the device's."""
    length: int | None = Field(default=None, ge=1, le=MAX_REGISTERS)
    """Registers holding a ``string`` tag (2 characters each)."""
    scale: float | None = None
    """Multiply the raw value (the result is stored as a double)."""
    offset: float | None = None
    """Add to the (scaled) value (the result is stored as a double)."""
    group: str | None = None
    """The poll group that reads this tag (``poll_groups``); default: the source's ``interval``."""
    deadband: float | None = Field(default=None, ge=0)
    """Report a new value only when it moved more than this from the last reported; default: the group's."""

    @model_validator(mode="before")
    @classmethod
    def _migrate(cls, data: Any) -> Any:
        """``word_order`` (earlier versions: big, little) is ``byte_order`` now; coils default to bool."""
        if isinstance(data, dict) and "word_order" in data:
            data = dict(data)
            if "byte_order" in data:
                raise ValueError("word_order and byte_order both set: keep byte_order (word_order is its old name)")
            data["byte_order"] = data.pop("word_order")
        if isinstance(data, dict) and "type" not in data:  # a coil or discrete input is a bool
            table = data.get("table")
            if table is None and isinstance(data.get("address"), int | str):
                try:
                    table = parse_modicon(data["address"])[0]
                except ValueError:
                    return data  # refused with its message by the checks below
            if table in BIT_TABLES:
                data = {**data, "type": "bool"}
        return data

    @model_validator(mode="after")
    def _fits_table(self) -> ModbusTag:
        table, start = self.location()
        if table in BIT_TABLES and self.type != "bool":
            raise ValueError(f"table {table} holds bits: type must be bool, not {self.type}")
        if self.bit is not None and (self.type != "bool" or table in BIT_TABLES):
            raise ValueError("bit selects one bit of a register: it needs type bool and a register table")
        if table not in BIT_TABLES and self.type == "bool" and self.bit is None:
            raise ValueError(f"type bool in table {table} needs bit (0..15), or a coil or discrete input address")
        if self.type == "string" and not self.length:
            raise ValueError("type string needs length (the number of registers)")
        if self.length is not None and self.type != "string":
            raise ValueError(f"length is for type string; {self.type} has a fixed size")
        if self.byte_order in ("CDAB", "DCBA") and self.type in ("int16", "uint16", "bool"):
            raise ValueError(f"byte order {self.byte_order} swaps words: a {self.type} has one register "
                             "(use ABCD or BADC)")
        if (self.scale is not None or self.offset is not None) and self.type in ("bool", "string"):
            raise ValueError(f"scale and offset need a number type, not {self.type}")
        last = start + self.count() - 1
        if last > LAST_ADDRESS:
            raise ValueError(f"{self.type} at {TABLE_NAMES[table]} address {start} needs addresses up to {last}, "
                             f"past the last address {LAST_ADDRESS}")
        return self

    def location(self) -> tuple[str, int]:
        """(table, zero-based address) of the first register or bit."""
        if self.table is None:
            return parse_modicon(self.address)
        if isinstance(self.address, str):
            table, start = parse_modicon(self.address)
            if table != self.table:
                raise ValueError(f"Modicon address {self.address} is a {TABLE_NAMES[table]}, not table {self.table}")
            return table, start
        if not 0 <= self.address <= LAST_ADDRESS:
            raise ValueError(f"address {self.address} is out of range: zero-based addresses are 0..{LAST_ADDRESS}")
        digit = TABLE_DIGIT[self.table]
        if int(digit) > 0 and int(digit) * 10000 < self.address < (int(digit) + 1) * 10000:
            raise ValueError(
                f"address {self.address} with table {self.table} is ambiguous: Modicon {self.address} is "
                f"{TABLE_NAMES[self.table]} address {self.address - int(digit) * 10000 - 1}; for that, drop table. "
                f"For zero-based address {self.address} write it in six digits: address: {digit}{self.address + 1:05d}"
            )
        return self.table, self.address

    def count(self) -> int:
        """Registers (or bits) that hold one value."""
        return int(self.length or 0) if self.type == "string" else REGISTERS_OF_TYPE[self.type]


class PollGroup(_Model):
    name: str
    interval: Duration
    deadband: float | None = Field(default=None, ge=0)
    """Report-by-exception: a value is reported when it moved more than this (0: when it changed at all)."""
    heartbeat: Duration | None = None
    """With a deadband: report an unchanged value at least this often."""

    @model_validator(mode="after")
    def _positive(self) -> PollGroup:
        if self.interval <= 0:
            raise ValueError(f"interval of poll group {self.name!r} must be positive")
        if self.heartbeat is not None and self.deadband is None:
            raise ValueError(f"heartbeat of poll group {self.name!r} needs a deadband (without one, every poll "
                             "is reported)")
        return self


class SerialLine(_Model):
    port: str
    """The serial device: ``/dev/ttyUSB0``, ``/dev/ttyS1``, ``COM3``."""
    baudrate: int = Field(default=9600, gt=0)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8


class _DeviceSettings(_Model):
    """What a device may set and otherwise takes from its source."""

    byte_order: ByteOrderField | None = None
    max_registers: int | None = Field(default=None, ge=1, le=MAX_REGISTERS)
    """Registers per read request, for devices that accept fewer than 125."""
    max_bits: int | None = Field(default=None, ge=1, le=MAX_BITS)
    max_gap: int | None = Field(default=None, ge=0, le=MAX_REGISTERS - 2)
    """Unused registers a request may read to join two tags."""
    max_gap_bits: int | None = Field(default=None, ge=0, le=MAX_BITS - 2)
    pause: Duration | None = None
    """At least this long between the end of one request to the device and the start of the next."""


class ModbusDevice(_DeviceSettings):
    name: str
    unit_id: int = Field(default=1, ge=0, le=255)
    tags: list[ModbusTag] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class Device:
    """A device with every setting resolved (its own, else its source's, else the default)."""

    name: str
    unit_id: int
    byte_order: str
    max_registers: int
    max_bits: int
    max_gap: int
    max_gap_bits: int
    pause: float
    tags: tuple[ModbusTag, ...]
    path: str
    """Key path of the device's tags in the configuration: ``tags`` or ``devices[1].tags``."""


class ModbusSource(SourceConfig, _DeviceSettings):
    type: Literal["modbus"]
    transport: Annotated[Transport, closed("transport", Transport)] = "tcp"
    host: str | None = None
    port: Port = 502
    serial: SerialLine | None = None
    unit_id: int = Field(default=1, ge=0, le=255)
    """The unit of the single device of a source with top-level ``tags``."""
    interval: Duration = 1.0
    """Poll period of the tags in no poll group."""
    timeout: Duration = 3.0
    """Connect timeout, and how long one request waits for its answer."""
    retries: int = Field(default=1, ge=0, le=5)
    """Requests sent again after a timeout before the device counts as down."""
    max_backoff: Duration = 60.0
    """A device that keeps failing is polled at most this rarely until it answers again (doubling from interval)."""
    poll_groups: list[PollGroup] = Field(default_factory=list)
    tags: list[ModbusTag] = Field(default_factory=list)
    devices: list[ModbusDevice] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> ModbusSource:
        if self.transport == "serial":
            if self.serial is None:
                raise ValueError("transport serial needs serial (port, baudrate, ...)")
        elif not self.host:
            raise ValueError(f"transport {self.transport} needs host")
        if self.tags and self.devices:
            raise ValueError("tags and devices both set: put the tags into their device")
        if not self.tags and not self.devices:
            raise ValueError("no tags: give tags (one device) or devices")
        if self.interval <= 0:
            raise ValueError("interval must be positive")
        groups = {DEFAULT_GROUP}
        defined: set[str] = set()
        for i, g in enumerate(self.poll_groups):
            if g.name in defined:
                raise ValueError(f"poll_groups[{i}].name: poll group {g.name!r} is defined twice")
            defined.add(g.name)
        groups |= defined
        names: dict[str, int] = {}
        units: dict[int, int] = {}
        seen: dict[str, str] = {}
        for d, device in enumerate(self.devices):
            if device.name in names:
                raise ValueError(f"devices[{d}].name: device {device.name!r} is already devices[{names[device.name]}]")
            names[device.name] = d
            if device.unit_id in units:
                raise ValueError(f"devices[{d}].unit_id: unit {device.unit_id} is already "
                                 f"devices[{units[device.unit_id]}]")
            units[device.unit_id] = d
        for resolved in self.device_list():
            for t, tag in enumerate(resolved.tags):
                where = f"{resolved.path}[{t}]"
                if tag.group is not None and tag.group not in groups:
                    raise ValueError(f"{where}.group: unknown poll group {tag.group!r}; defined: "
                                     f"{', '.join(sorted(groups))}")
                if tag.alias in seen:
                    raise ValueError(f"{where}.alias: alias {tag.alias!r} is already used by {seen[tag.alias]}")
                seen[tag.alias] = where
        return self

    def device_list(self) -> list[Device]:
        """Every device with its settings resolved; a source with top-level ``tags`` is one device."""
        if self.tags:
            return [self._resolve(self.name, self.unit_id, None, self.tags, "tags")]
        return [self._resolve(d.name, d.unit_id, d, d.tags, f"devices[{i}].tags") for i, d in enumerate(self.devices)]

    def _resolve(self, name: str, unit_id: int, own: _DeviceSettings | None, tags: Sequence[ModbusTag],
                 path: str) -> Device:
        def pick(key: str, default: Any) -> Any:
            for settings in (own, self):
                value = getattr(settings, key, None) if settings is not None else None
                if value is not None:
                    return value
            return default

        return Device(name, unit_id, pick("byte_order", "ABCD"), pick("max_registers", MAX_REGISTERS),
                      pick("max_bits", MAX_BITS), pick("max_gap", 10), pick("max_gap_bits", 64),
                      float(pick("pause", 0.0)), tuple(tags), path)

    def groups(self) -> dict[str, PollGroup]:
        """Every poll group by name; ``default`` is the source's ``interval`` unless redefined."""
        out = {DEFAULT_GROUP: PollGroup(name=DEFAULT_GROUP, interval=self.interval)}
        out.update({g.name: g for g in self.poll_groups})
        return out

    def endpoint(self) -> str:
        """``host:port`` or the serial port: what messages name."""
        if self.transport == "serial" and self.serial is not None:
            return self.serial.port
        return f"{self.host}:{self.port}"

    def exclusive_line(self) -> str | None:
        """A serial port: two sources on one line would interleave their frames."""
        return f"serial port {self.serial.port}" if self.transport == "serial" and self.serial else None

    def plan_lines(self) -> list[str]:
        from connectors.modbus.plan import describe, plan_source

        return describe(plan_source(self), {n: g.interval for n, g in self.groups().items()})

    def aliased_items(self) -> tuple[str, Sequence[Aliased]]:
        return "tags", [t for d in self.device_list() for t in d.tags]
