"""The seams of the publishers: what the runtime needs of a publisher, and what a publisher needs of the store.

    class Lake:                                  # a Publisher: the runtime runs and shows it
        name = "lake"
        async def run(self) -> None: ...         # until cancelled; the runtime restarts it if it raises
        def status(self) -> dict[str, object]: ...   # its entry under "publishers" in /health

    SitewisePublisherTask(config, store, ...)       # store: a LogSource (the log and the cursors)
    S3ExportTask(config, store, ...)                # store: a PartitionSource (the Parquet files)

``sitewise_edge/publish`` imports only the core modules of ``sitewise_edge``, never ``storage``: the
store satisfies these protocols as it is, structurally. A place in the log is the store's own
position type; here it is :class:`LogPosition`, and :class:`LogSource` is generic in it, so a
position a publisher builds (a split point, a saved live-lane place) has the store's type and
compares with the positions the store hands out.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, Self, TypeVar

import pyarrow as pa


class Publisher(Protocol):
    """One destination, as the runtime sees it. Dead-letter operations are not part of it: only the
    SiteWise publisher has dead letters, and the runtime reaches them through that type."""

    @property
    def name(self) -> str: ...

    async def run(self) -> None:
        """Forward until cancelled. Raising is a bug or an outage the runtime restarts it after."""
        ...

    def status(self) -> dict[str, object]:
        """The JSON of /health and ``GET /publishers`` for this destination."""
        ...


class LogPosition(Protocol):
    """A place in the log, ordered: the next row to read is row ``row`` of record ``seq``."""

    def __init__(self, seq: int, row: int = 0) -> None: ...

    @property
    def seq(self) -> int: ...

    @property
    def row(self) -> int: ...

    def as_dict(self) -> dict[str, int]:
        """``{"seq": ..., "row": ...}``: what the constructor takes back as keywords."""
        ...

    def __lt__(self, other: Self) -> bool: ...
    def __le__(self, other: Self) -> bool: ...
    def __gt__(self, other: Self) -> bool: ...
    def __ge__(self, other: Self) -> bool: ...


P = TypeVar("P", bound=LogPosition)


class LogSource(Protocol[P]):
    """What the SiteWise publisher needs of the store: the log in acceptance order, and durable cursors."""

    def read(self, position: P, max_rows: int) -> tuple[pa.Table, P]:
        """At most ``max_rows`` rows from ``position`` on, and the position after them (blocking)."""
        ...

    def cursor(self, name: str) -> P:
        """The saved position of a cursor; a new one starts at the oldest data still in the log."""
        ...

    def save_cursor(self, name: str, position: P) -> None:
        """Make a cursor's position durable (blocking)."""
        ...

    def backlog(self, name: str) -> int:
        """Rows after a cursor still in memory (a lower bound, for the status)."""
        ...

    async def wait_for_data(self, max_wait: float) -> None:
        """Return when more is appended, or after ``max_wait`` seconds."""
        ...

    @property
    def next_seq(self) -> int:
        """The sequence number the next accepted record gets."""
        ...

    @property
    def visible_seq(self) -> int:
        """One past the last readable record: every record below it is durable and visible."""
        ...


class StoreSnapshot(Protocol):
    """The store's files and not yet compacted records at one moment."""

    @property
    def files(self) -> Sequence[Path]:
        """Committed Parquet files, ``day=YYYY-MM-DD/<first seq>-<last seq>.parquet``."""
        ...

    @property
    def resident(self) -> Sequence[tuple[int, pa.RecordBatch]]:
        """(record seq, batch) still in the write-ahead log, oldest first."""
        ...


class PartitionSource(Protocol):
    """What the S3 export needs of the store: its Parquet files, day by day."""

    @property
    def data_dir(self) -> Path: ...

    def snapshot(self) -> StoreSnapshot: ...

    def decode_file(self, table: pa.Table) -> pa.Table:
        """The rows of one of the store's Parquet files (its layout) as sample rows."""
        ...
