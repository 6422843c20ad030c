"""What a query or an export sees of the store at one moment: its Parquet files and resident records.

    snap = store.snapshot()
    for path in snap.files: ...            # committed Parquet files (``day=YYYY-MM-DD/<first>-<last>.parquet``)
    for seq, batch in snap.resident: ...   # durable records not yet compacted, oldest first

Taken under the store's lock, so a compaction running meanwhile neither hides nor doubles a row.
A row's *version* is ``(record seq << ROW_BITS) | row``: of two writes of one key, the higher version wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from sitewise_edge.samples import SCHEMA

ROW_BITS = 24  # a version is (record seq << ROW_BITS) | row: later writes of a key win


class Record(NamedTuple):
    """One accepted batch and the sequence number the WAL gave it."""

    seq: int
    batch: pa.RecordBatch


QUERY_SCHEMA = SCHEMA.append(pa.field("_v", pa.int64(), nullable=False))


def query_batch(seq: int, batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` as queries read it: its columns as they are (shared, not copied) and each row's version ``_v``."""
    v = (np.int64(seq) << ROW_BITS) + np.arange(batch.num_rows, dtype=np.int64)
    return pa.RecordBatch.from_arrays([*batch.columns, pa.array(v, pa.int64())], schema=QUERY_SCHEMA)


@dataclass(frozen=True)
class Snapshot:
    """The Parquet files and the WAL-resident records of the store at one moment."""

    files: tuple[Path, ...]
    resident: tuple[Record, ...]  # oldest first
    resident_rows: pa.Table | None = None  # ``resident`` as one table with ``_v`` (the store's cache)
    tombstones: pa.Table | None = None  # deleted streams ``(stream, before_v)`` (storage/tombstones.py)

    def resident_table(self) -> pa.Table:
        """The resident rows as one table (chunks per record, the stream dictionary-encoded per chunk), with
        each row's version in ``_v``. The store's snapshots carry it ready: nothing is copied per query."""
        if self.resident_rows is not None:
            return self.resident_rows
        return pa.Table.from_batches([query_batch(seq, b) for seq, b in self.resident], schema=QUERY_SCHEMA)
