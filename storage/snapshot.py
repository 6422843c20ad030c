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

from sitewise_edge.samples import concat

ROW_BITS = 24  # a version is (record seq << ROW_BITS) | row: later writes of a key win


class Record(NamedTuple):
    """One accepted batch and the sequence number the WAL gave it."""

    seq: int
    batch: pa.RecordBatch


@dataclass(frozen=True)
class Snapshot:
    """The Parquet files and the WAL-resident records of the store at one moment."""

    files: tuple[Path, ...]
    resident: tuple[Record, ...]  # oldest first

    def resident_table(self) -> pa.Table:
        """The resident rows as one table, stream as plain strings, with each row's version in ``_v``."""
        table = concat([r.batch for r in self.resident])
        versions = [
            (np.int64(seq) << ROW_BITS) + np.arange(b.num_rows, dtype=np.int64) for seq, b in self.resident
        ]
        v = np.concatenate(versions) if versions else np.zeros(0, dtype=np.int64)
        table = table.set_column(0, "stream", table.column("stream").cast(pa.string()))
        return table.append_column("_v", pa.array(v, pa.int64()))
