"""The connector path groups commits: batches queued by many sources share one WAL frame and fsync (issue 10)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from sitewise_edge.runtime import Gateway
from sitewise_edge.samples import from_columns
from storage import wal
from tests.conftest import eventually, gateway_config
from tests.gateway.test_health import T0_NS
from tests.gateway.test_health import _Counter as Counter


class _Counter(Counter):
    """test_health's counter device on a stream of its own."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    async def poll(self) -> pa.RecordBatch:
        self.produced += 1
        return from_columns([f"/{self.name}/n"], [T0_NS + self.produced * 10**6], double=[float(self.produced)])


async def test_batches_of_many_sources_share_frames_and_nothing_is_lost(tmp_path: Path) -> None:
    cfg = gateway_config(tmp_path, storage={"compact_interval": "1h", "fsync": "100ms"})
    gw = Gateway(cfg)
    counters = [_Counter(f"c{i}") for i in range(6)]
    gw.connectors = list(counters)
    await gw.start()
    try:
        # the old ingest task stored one batch per fsync (~9 batches/s): 6 sources at 100 polls/s fell behind
        await eventually(lambda: min(c.produced for c in counters) >= 30)
        await eventually(lambda: gw.store.stats.values_accepted >= 6 * 30 and not gw._queue.qsize())
    finally:
        await gw.stop()
    produced = sum(c.produced for c in counters)
    frames = [wal.decode_batch(f.payload, schema=f.schema) for s in wal.list_segments(gw.store.wal_dir)
              for f in wal.scan(s.path) if isinstance(f, wal.Frame)]
    assert sum(f.num_rows for f in frames) == produced
    sources_per_frame = [len(pc.unique(f.column("stream").cast(pa.string()))) for f in frames]
    assert max(sources_per_frame) >= 2  # one frame carried several sources' batches
    assert len(frames) < produced / 2
    gw = Gateway(gateway_config(tmp_path))
    await gw.start()
    try:
        with gw.store.reader() as r:
            for c in counters:  # every value read, in order, none lost
                values = r.history(f"/{c.name}/n", None, None).column("double").to_pylist()
                assert values == [float(i) for i in range(1, c.produced + 1)]
    finally:
        await gw.stop()
