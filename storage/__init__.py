"""The historian: a write-ahead log of Arrow frames, Parquet days, DuckDB queries, cursors for publishers.

    from storage import Store
    store = Store(data_dir, storage_config)      # see storage/store.py for the whole life cycle

The parts (writer, compaction, retention, cursors, layout) are private to the package; ``Store`` composes them.
"""

from storage.query import Reader
from storage.recovery import Quarantined, Recovery
from storage.snapshot import Record, Snapshot
from storage.state import Position, StoreStats
from storage.store import Store
from storage.wal import FrameError, IncompleteFrame

__all__ = ["FrameError", "IncompleteFrame", "Position", "Quarantined", "Reader", "Record", "Recovery", "Snapshot",
           "Store", "StoreStats"]
