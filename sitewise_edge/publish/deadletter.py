"""The dead-letter store: values a SiteWise destination will not (or not yet) accept, with the reason.

    dl = DeadLetterStore(data_dir / "deadletter" / "cloud.jsonl", max_bytes=256 * 2**20)
    dl.append([entry, ...], reason="InvalidRequestException: ...", state="dead")
    dl.list(DeadLetterFilter(reason="Invalid"))          # what the API and the CLI show
    dl.mark_replay(DeadLetterFilter(alias="/old/*"), rewrite_alias="/new/alias")
    records, expired = dl.due(now)                       # parked or replay records to send again
    dl.settle({r.id for r in records}, dl.new([entry], "still refused"))   # sent: one rewrite for all

One JSON line per entry (a SiteWise ``PutAssetPropertyValueEntry`` of one stream, its values, the
reason), appended and fsynced before the publisher's cursor passes the values, so nothing is lost
between "rejected" and "recorded". JSON lines rather than Parquet: records are few, appended one
request at a time, must be readable with ``jq`` by an operator, and keep SiteWise's own shapes.

A record is in one of three states:

- ``dead``: SiteWise refused it for good (or the parking time ran out); it stays until replayed;
- ``parked``: refused with an error that may pass by itself (``ResourceNotFoundException``: an alias
  nobody has mapped yet); the publisher sends it again every ``retry_interval`` until
  ``parked_until``, then it turns ``dead``;
- ``replay``: an operator asked to send it again (optionally under another alias); the publisher
  sends it as soon as it can and removes it once delivered.

Changes other than appends rewrite the file (to a temporary file, fsync, rename): the store is
meant for thousands of records, not millions. It is bounded by ``max_bytes``: past it, the oldest
records are dropped (counted in ``dropped`` and logged), so a destination that refuses everything
cannot fill the disk.
"""

from __future__ import annotations

import builtins
import fnmatch
import json
import logging
import os
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sitewise_edge.clock import SYSTEM_CLOCK, Clock
from sitewise_edge.files import write_bytes_atomic

log = logging.getLogger(__name__)

STATES = ("dead", "parked", "replay")


@dataclass
class DeadLetter:
    id: str
    publisher: str
    state: str
    reason: str
    entry: dict[str, Any]
    """``propertyAlias`` or ``assetId`` + ``propertyId``, and ``propertyValues`` (SiteWise shapes)."""
    at: float
    parked_until: float | None = None
    next_try: float | None = None
    replays: int = 0

    @property
    def target(self) -> str:
        if "propertyAlias" in self.entry:
            return str(self.entry["propertyAlias"])
        return f"asset:{self.entry.get('assetId')}/{self.entry.get('propertyId')}"

    @property
    def values(self) -> int:
        return len(self.entry.get("propertyValues", ()))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "publisher": self.publisher, "state": self.state,
                               "reason": self.reason, "at": self.at, "entry": self.entry}
        if self.parked_until is not None:
            out["parkedUntil"] = self.parked_until
        if self.next_try is not None:
            out["nextTry"] = self.next_try
        if self.replays:
            out["replays"] = self.replays
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any], publisher: str) -> DeadLetter:
        return cls(id=str(d.get("id") or uuid.uuid4().hex), publisher=str(d.get("publisher", publisher)),
                   state=str(d.get("state", "dead")), reason=str(d.get("reason", "")), entry=d.get("entry", {}),
                   at=float(d.get("at", 0.0)), parked_until=d.get("parkedUntil"), next_try=d.get("nextTry"),
                   replays=int(d.get("replays", 0)))


@dataclass
class DeadLetterFilter:
    """Which records an operation concerns; every given field must match."""

    reason: str | None = None
    """A substring of the reason (``ResourceNotFound``, ``InvalidRequestException``, ...)."""
    alias: str | None = None
    """A glob (fnmatch) on the stream: the alias, or ``asset:<assetId>/<propertyId>``."""
    state: str | None = None
    ids: set[str] | None = field(default=None)

    def matches(self, r: DeadLetter) -> bool:
        return ((self.reason is None or self.reason in r.reason)
                and (self.alias is None or fnmatch.fnmatchcase(r.target, self.alias))
                and (self.state is None or r.state == self.state)
                and (self.ids is None or r.id in self.ids))


class DeadLetterStore:
    """The dead letters of one destination, in one JSON-lines file. Blocking: call from a thread."""

    def __init__(self, path: Path, publisher: str | None = None, max_bytes: int = 256 * 2**20,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.path = Path(path)
        self.clock = clock
        self.publisher = publisher or self.path.stem
        self.max_bytes = max_bytes
        self.dropped = 0
        self._lock = threading.Lock()

    # --- writing ----------------------------------------------------------------------------

    def new(self, entries: list[dict[str, Any]], reason: str, state: str = "dead",
            parked_until: float | None = None, next_try: float | None = None) -> list[DeadLetter]:
        """Records for ``entries`` (one each), not yet written: for :meth:`append` or :meth:`settle`."""
        now = self.clock.time()
        return [DeadLetter(uuid.uuid4().hex, self.publisher, state, reason,
                           {k: v for k, v in e.items() if k != "entryId"}, now, parked_until, next_try)
                for e in entries]

    def append(self, entries: list[dict[str, Any]], reason: str, state: str = "dead",
               parked_until: float | None = None, next_try: float | None = None) -> list[DeadLetter]:
        """Add records for ``entries``, durable (fsynced) when this returns."""
        records = self.new(entries, reason, state, parked_until, next_try)
        lines = [json.dumps(r.to_json(), allow_nan=True) + "\n" for r in records]
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a+b") as f:
                if f.tell() > 0:
                    f.seek(-1, os.SEEK_END)
                    if f.read(1) != b"\n":  # a torn last line (a crash mid-append): keep ours apart
                        f.write(b"\n")
                f.write("".join(lines).encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
                size = f.tell()
            if size > self.max_bytes:
                self._shrink()
        return records

    def _shrink(self) -> None:
        """Drop the oldest records until the file is at most 3/4 of its budget."""
        records = self._load()
        keep: list[DeadLetter] = []
        size = 0
        for r in reversed(records):
            size += len(json.dumps(r.to_json(), allow_nan=True)) + 1
            if size > self.max_bytes * 3 // 4:
                break
            keep.append(r)
        keep.reverse()
        dropped = records[:len(records) - len(keep)]
        values = sum(r.values for r in dropped)
        self.dropped += values
        log.error("dead letters of %s over %d bytes: the oldest %d records (%d values) were deleted",
                  self.publisher, self.max_bytes, len(dropped), values)
        self._write(keep)

    def _write(self, records: list[DeadLetter]) -> None:
        lines = "".join(json.dumps(r.to_json(), allow_nan=True) + "\n" for r in records)
        write_bytes_atomic(self.path, lines.encode("utf-8"))

    def _load(self) -> list[DeadLetter]:
        if not self.path.exists():
            return []
        out = []
        with open(self.path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    out.append(DeadLetter.from_json(json.loads(line), self.publisher))
                except (json.JSONDecodeError, TypeError, ValueError) as exc:  # a torn last line after a crash
                    log.warning("%s line %d unreadable, skipped: %s", self.path, n, exc)
        return out

    # --- operations -------------------------------------------------------------------------

    def list(self, flt: DeadLetterFilter | None = None) -> list[DeadLetter]:
        with self._lock:
            records = self._load()
        return [r for r in records if flt is None or flt.matches(r)]

    def mark_replay(self, flt: DeadLetterFilter, rewrite_alias: str | None = None) -> builtins.list[DeadLetter]:
        """Mark matching records for sending again (under ``rewrite_alias`` if given); returns them."""
        with self._lock:
            records = self._load()
            chosen = [r for r in records if flt.matches(r)]
            for r in chosen:
                r.state = "replay"
                r.next_try = None
                r.parked_until = None
                r.replays += 1
                if rewrite_alias:
                    r.entry = {k: v for k, v in r.entry.items() if k not in ("propertyAlias", "assetId", "propertyId")}
                    r.entry["propertyAlias"] = rewrite_alias
            if chosen:
                self._write(records)
        return chosen

    def due(self, now: float) -> tuple[builtins.list[DeadLetter], builtins.list[DeadLetter]]:
        """(records to send again now, parked records whose time ran out and that turned ``dead`` here).

        To send: ``replay`` records, and ``parked`` ones whose retry time has come."""
        with self._lock:
            records = self._load()
            expired = [r for r in records if r.state == "parked" and (r.parked_until or 0) <= now]
            for r in expired:
                r.state = "dead"
                r.reason = f"{r.reason} (still refused after parking)"
            if expired:
                self._write(records)
        due = [r for r in records if r.state == "replay" or (r.state == "parked" and (r.next_try or 0) <= now)]
        return due, expired

    def remove(self, ids: set[str]) -> int:
        return self.settle(ids, [])

    def settle(self, ids: set[str], add: Sequence[DeadLetter]) -> int:
        """Remove the records ``ids`` and add ``add`` (from :meth:`new`) in one rewrite: a replay
        settles all it sent at once, and a crash leaves either the old records or the new ones."""
        if not ids and not add:
            return 0
        with self._lock:
            records = self._load()
            keep = [r for r in records if r.id not in ids]
            if len(keep) != len(records) or add:
                self._write([*keep, *add])
            over = bool(add) and self.path.stat().st_size > self.max_bytes
            if over:
                self._shrink()
        return len(records) - len(keep)

    def counts(self) -> dict[str, int]:
        """Values per state (for the status)."""
        out = dict.fromkeys(STATES, 0)
        for r in self.list():
            out[r.state] = out.get(r.state, 0) + r.values
        return out
