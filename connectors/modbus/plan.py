"""Request planning: group the tags of one source into as few read requests as possible.

Pure and computed once, when the connector is built. Tags of one table are sorted by
address and merged while the merged request stays within the protocol limit (125
registers, 2000 bits) and the hole between two tags is small: reading a few unused
registers costs less than another round trip. Overlapping tags share a request.

A device that refuses the holes (exception 2 on a merged request) is handled by the
connector, which falls back to :func:`split` for that request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from connectors.modbus.config import ModbusTag
from sitewise_edge.errors import ConfigError, ConfigIssue

MAX_REGISTERS = 125
"""Registers in one read of holding or input registers (function codes 3 and 4)."""
MAX_BITS = 2000
"""Bits in one read of coils or discrete inputs (function codes 1 and 2)."""
MAX_GAP_REGISTERS = 10
"""Unused registers a request may read to join two tags."""
MAX_GAP_BITS = 64
"""Unused bits a request may read to join two tags (bits are cheap: 8 per byte)."""

BIT_TABLES = ("coil", "discrete")
TABLE_ORDER = ("holding", "input", "coil", "discrete")
TABLE_NAMES = {
    "holding": "holding register",
    "input": "input register",
    "coil": "coil",
    "discrete": "discrete input",
}
REGISTERS_OF_TYPE = {
    "int16": 1, "uint16": 1,
    "int32": 2, "uint32": 2, "float32": 2,
    "int64": 4, "uint64": 4, "float64": 4,
    "bool": 1,
}
LAST_ADDRESS = 65535


def register_count(tag: ModbusTag) -> int:
    """Registers (or bits, for a bool) that hold one value of ``tag``."""
    if tag.type == "string":
        return int(tag.length or 0)
    return REGISTERS_OF_TYPE[tag.type]


@dataclass(frozen=True, slots=True)
class TagSlot:
    """Where one tag's value sits in a request's answer."""

    index: int
    """Position of the tag in the source's configuration (and of its row in a batch)."""
    tag: ModbusTag
    offset: int
    """First register (or bit) of the value, counted from the request's address."""
    count: int


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One Modbus read: a table, a start address and a count, and the tags it serves."""

    table: str
    address: int
    count: int
    slots: tuple[TagSlot, ...]

    @property
    def last(self) -> int:
        return self.address + self.count - 1

    @property
    def is_bits(self) -> bool:
        return self.table in BIT_TABLES

    def describe(self) -> str:
        """``holding registers 100..111``: the words an operator reads in an error message."""
        name = TABLE_NAMES[self.table]
        if self.count == 1:
            return f"{name} {self.address}"
        return f"{name}s {self.address}..{self.last}"


def check_tags(tags: Sequence[ModbusTag]) -> list[ConfigIssue]:
    """What the configuration models cannot see alone: values past the last address, duplicate aliases."""
    issues: list[ConfigIssue] = []
    seen: dict[str, int] = {}
    for i, tag in enumerate(tags):
        last = tag.address + register_count(tag) - 1
        if last > LAST_ADDRESS:
            issues.append(ConfigIssue(
                f"tags[{i}].address",
                f"{tag.type} at {tag.address} needs {TABLE_NAMES[tag.table]}s up to {last}, "
                f"past the last address {LAST_ADDRESS}",
            ))
        if tag.alias in seen:
            issues.append(ConfigIssue(
                f"tags[{i}].alias", f"alias {tag.alias!r} is already used by tags[{seen[tag.alias]}]"
            ))
        else:
            seen[tag.alias] = i
    return issues


def plan_requests(
    tags: Sequence[ModbusTag],
    *,
    max_gap_registers: int = MAX_GAP_REGISTERS,
    max_gap_bits: int = MAX_GAP_BITS,
    source: str = "",
) -> tuple[ReadRequest, ...]:
    """The read requests that fetch every tag, by table then address.

    Raises :class:`~sitewise_edge.errors.ConfigError` for tags that cannot be read.
    """
    issues = check_tags(tags)
    if issues:
        raise ConfigError(issues, source)
    requests: list[ReadRequest] = []
    for table in TABLE_ORDER:
        bits = table in BIT_TABLES
        limit = MAX_BITS if bits else MAX_REGISTERS
        max_gap = max_gap_bits if bits else max_gap_registers
        members = sorted(
            ((i, t) for i, t in enumerate(tags) if t.table == table),
            key=lambda it: (it[1].address, it[0]),
        )
        group: list[tuple[int, ModbusTag]] = []
        start = end = 0  # end is exclusive
        for i, tag in members:
            tag_end = tag.address + register_count(tag)
            if group and tag.address - end <= max_gap and max(end, tag_end) - start <= limit:
                group.append((i, tag))
                end = max(end, tag_end)
                continue
            if group:
                requests.append(_request(table, start, end, group))
            group, start, end = [(i, tag)], tag.address, tag_end
        if group:
            requests.append(_request(table, start, end, group))
    return tuple(requests)


def split(request: ReadRequest, *, per_tag: bool = False) -> tuple[ReadRequest, ...]:
    """The fallback for a device that refuses a merged request.

    First into runs of tags with no unused register between them (a device that refuses to
    read the holes); with ``per_tag``, or when there are no holes, into one request per tag.
    """
    members = sorted(((s.index, s.tag) for s in request.slots), key=lambda it: (it[1].address, it[0]))
    if not per_tag:
        runs = plan_requests([t for _, t in members], max_gap_registers=0, max_gap_bits=0)
        if len(runs) > 1:
            return tuple(_reindex(run, members) for run in runs)
    return tuple(_request(request.table, t.address, t.address + register_count(t), [(i, t)]) for i, t in members)


def _reindex(run: ReadRequest, members: Sequence[tuple[int, ModbusTag]]) -> ReadRequest:
    """Give the slots of a request planned over ``members`` their indexes in the source."""
    return ReadRequest(run.table, run.address, run.count, tuple(
        TagSlot(members[s.index][0], s.tag, s.offset, s.count) for s in run.slots
    ))


def _request(table: str, start: int, end: int, group: Sequence[tuple[int, ModbusTag]]) -> ReadRequest:
    slots = tuple(TagSlot(i, t, t.address - start, register_count(t)) for i, t in group)
    return ReadRequest(table, start, end - start, slots)
