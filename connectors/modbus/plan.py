"""Request planning: group the tags of each device and poll group into as few reads as possible.

Pure, and computed once, when the connector is built (``sitewise-edge validate`` prints it).
Per device, poll group and table, tags are sorted by address and merged while the merged
request stays within the device's limit (at most 125 registers or 2000 bits) and the hole
between two tags is at most ``max_gap`` registers (``max_gap_bits`` bits): reading a few unused
registers costs less than another round trip. Overlapping tags share a request. Taking each
tag into the open request whenever it fits gives the fewest requests: a request that starts at
the first tag not yet read and reaches as far as the limits allow is never worse than any other
choice for that first request.

A device that refuses a merged request with an illegal-address exception is handled by
:func:`bisect`: the connector reads both halves, and again the half that fails, until the bad
range is one tag; the good halves stay merged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from connectors.modbus.config import (
    BIT_TABLES,
    DEFAULT_GROUP,
    MAX_BITS,
    MAX_REGISTERS,
    TABLE_NAMES,
    Device,
    ModbusSource,
    ModbusTag,
)

TABLE_ORDER = ("holding", "input", "coil", "discrete")


@dataclass(frozen=True, slots=True)
class TagSlot:
    """Where one tag's value sits in a request's answer."""

    index: int
    """Position of the tag in its poll group's batch (the tags of the group in configuration order)."""
    tag: ModbusTag
    address: int
    """Zero-based address of the tag's first register or bit."""
    offset: int
    """First register (or bit) of the value, counted from the request's address."""
    count: int


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One Modbus read: a unit, a table, a start address and a count, and the tags it serves."""

    unit_id: int
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
        """``holding registers 100..111``: the words an operator reads in an error message (zero-based)."""
        name = TABLE_NAMES[self.table]
        if self.count == 1:
            return f"{name} {self.address}"
        return f"{name}s {self.address}..{self.last}"


@dataclass(frozen=True, slots=True)
class GroupPlan:
    """The requests that read one poll group of one device, and the tags (rows) they fill."""

    device: Device
    group: str
    tags: tuple[ModbusTag, ...]
    requests: tuple[ReadRequest, ...]


def plan_requests(
    tags: Sequence[ModbusTag],
    *,
    unit_id: int = 1,
    max_gap_registers: int = 10,
    max_gap_bits: int = 64,
    max_registers: int = MAX_REGISTERS,
    max_bits: int = MAX_BITS,
) -> tuple[ReadRequest, ...]:
    """The fewest read requests that fetch every tag, by table then address (slot index: position in ``tags``)."""
    requests: list[ReadRequest] = []
    located = [(i, t, *t.location()) for i, t in enumerate(tags)]
    for table in TABLE_ORDER:
        bits = table in BIT_TABLES
        limit = max_bits if bits else max_registers
        max_gap = max_gap_bits if bits else max_gap_registers
        members = sorted(((i, t, a) for i, t, tb, a in located if tb == table), key=lambda it: (it[2], it[0]))
        group: list[tuple[int, ModbusTag, int]] = []
        start = end = 0  # end is exclusive
        for i, tag, address in members:
            tag_end = address + tag.count()
            if group and address - end <= max_gap and max(end, tag_end) - start <= limit:
                group.append((i, tag, address))
                end = max(end, tag_end)
                continue
            if group:
                requests.append(_request(unit_id, table, group))
            group, start, end = [(i, tag, address)], address, tag_end
        if group:
            requests.append(_request(unit_id, table, group))
    return tuple(requests)


def plan_source(source: ModbusSource) -> tuple[GroupPlan, ...]:
    """Every device's poll groups, each with its requests; groups with no tags are left out."""
    plans: list[GroupPlan] = []
    for device in source.device_list():
        for group in source.groups():
            tags = tuple(t for t in device.tags if (t.group or DEFAULT_GROUP) == group)
            if not tags:
                continue
            requests = plan_requests(tags, unit_id=device.unit_id, max_gap_registers=device.max_gap,
                                     max_gap_bits=device.max_gap_bits, max_registers=device.max_registers,
                                     max_bits=device.max_bits)
            plans.append(GroupPlan(device, group, tags, requests))
    return tuple(plans)


def bisect(request: ReadRequest) -> tuple[ReadRequest, ...]:
    """Two requests that serve the tags of ``request`` (one, for a request of one tag).

    The tags are split in the middle, by address; each half reads from its first tag to its last.
    """
    slots = sorted(request.slots, key=lambda s: (s.address, s.index))
    if len(slots) < 2:
        return (request,)
    half = len(slots) // 2
    return tuple(_request(request.unit_id, request.table, [(s.index, s.tag, s.address) for s in part])
                 for part in (slots[:half], slots[half:]))


def rejoin(parts: Sequence[tuple[ReadRequest, bool]]) -> tuple[ReadRequest, ...]:
    """The parts of a bisected request with the good ones that touch merged again (``(part, good)`` pairs).

    Only parts with no unread register between them are joined: the hole between two parts that
    do not touch may be what the device refused.
    """
    out: list[ReadRequest] = []
    joinable = False
    for part, good in sorted(parts, key=lambda pg: pg[0].address):
        if good and joinable and out and part.address <= out[-1].last + 1:
            last = out.pop()
            out.append(_request(part.unit_id, part.table,
                                [(s.index, s.tag, s.address) for s in (*last.slots, *part.slots)]))
        else:
            out.append(part)
        joinable = good
    return tuple(out)


def describe(plans: Sequence[GroupPlan], intervals: dict[str, float]) -> list[str]:
    """The plan as ``sitewise-edge validate`` prints it: one line per device and group, one per request."""
    lines: list[str] = []
    for p in plans:
        registers = sum(r.count for r in p.requests if not r.is_bits)
        lines.append(f"device {p.device.name!r} (unit {p.device.unit_id}), group {p.group!r} every "
                     f"{intervals[p.group]:g} s: {_n(len(p.tags), 'tag')} in {_n(len(p.requests), 'request')} "
                     f"({_n(registers, 'register')})")
        lines.extend(f"  {r.describe()}: {_n(len(r.slots), 'tag')}" for r in p.requests)
    return lines


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _request(unit_id: int, table: str, group: Sequence[tuple[int, ModbusTag, int]]) -> ReadRequest:
    start = min(a for _, _, a in group)
    end = max(a + t.count() for _, t, a in group)
    slots = tuple(TagSlot(i, t, a, a - start, t.count()) for i, t, a in group)
    return ReadRequest(unit_id, table, start, end - start, slots)
