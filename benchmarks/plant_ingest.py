"""The data path at plant scale: many small batches from many sources, queried while they are written.

    .venv/bin/python benchmarks/plant_ingest.py [--seconds 10] [--fsync batch] [--readers 16]
    PYTHONPATH=/tmp/base .venv/bin/python benchmarks/plant_ingest.py      # the same run on another checkout

Three parts, each a table:

1. Ingest (issue 10): 20 sources x 500 streams sending one batch each per second, plus 200 streams at 10 Hz
   (one batch per 100 ms), each source appending concurrently through ``Store.append`` (the write path the
   gateway's ingest loop and BatchPut share), with ``--readers`` threads querying (latest value, one-minute
   history) all the time. Then the same sources *saturating* the store (each sends its next batch as soon as
   the last is acknowledged): the sustained capacity. Figures: values/s accepted durable, p50/p99 of the
   acknowledgement, p99 of a reader's query against the same query on an idle store, the process's CPU %.
   The ceiling is the raw library: one WAL frame of the same rows + fsync in a loop (``WalWriter``).
2. The latest-value index: the cost of a 10-row batch at 1k, 10k, 100k known streams.
3. Opening a reader over 500,000 WAL-resident rows (what every query paid before its first row).

Keep runs short on a shared machine; absolute figures move with the load, the ratios less.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from sitewise_edge.config import StorageConfig
from sitewise_edge.samples import from_columns
from storage import wal
from storage.latest import LatestIndex
from storage.store import Store

T0 = time.time_ns() - 3600 * 10**9
NS = 10**9


def source_batch(source: int, streams: int, tick: int, step_ns: int) -> pa.RecordBatch:
    names = [f"/plant/src{source}/s{k}" for k in range(streams)]
    return from_columns(names, np.full(streams, T0 + tick * step_ns, dtype=np.int64),
                        double=np.random.default_rng(tick).random(streams))


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Readers:
    """``count`` threads asking the store all the time; their latencies."""

    def __init__(self, store: Store, count: int) -> None:
        self.store, self.count = store, count
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(count)]

    def _run(self, i: int) -> None:
        rng = np.random.default_rng(i)
        while not self._stop.is_set():
            stream = f"/plant/src{int(rng.integers(20))}/s{int(rng.integers(500))}"
            t = time.perf_counter()
            self.store.latest(stream)
            with self.store.reader() as r:
                r.history(stream, None, None, limit=100)
            self.latencies.append(time.perf_counter() - t)

    def __enter__(self) -> Readers:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()


async def ingest(store: Store, seconds: float, saturate: bool) -> tuple[int, list[float]]:
    """The plant for ``seconds``: values accepted and acknowledgement latencies."""
    acks: list[float] = []
    accepted = 0
    deadline = time.perf_counter() + seconds

    async def source(i: int, streams: int, period: float) -> None:
        nonlocal accepted
        tick = 0
        start = time.perf_counter()
        while time.perf_counter() < deadline:
            batch = source_batch(i, streams, tick, int(period * NS))
            t = time.perf_counter()
            await store.append(batch)
            acks.append(time.perf_counter() - t)
            accepted += batch.num_rows
            tick += 1
            if not saturate:
                await asyncio.sleep(max(0.0, start + tick * period - time.perf_counter()))

    await asyncio.gather(*(source(i, 500, 1.0) for i in range(20)), source(20, 200, 0.1))
    return accepted, acks


def ceiling(directory: Path, seconds: float, rows: int) -> float:
    """Values/s of the raw library: one WAL frame of ``rows`` values + fsync, in a loop."""
    writer = wal.WalWriter(directory, 1, 64 << 20)
    batch = pa.concat_tables([pa.table(source_batch(i, 500, 0, NS)) for i in range(rows // 500)])
    batch = batch.unify_dictionaries().combine_chunks().to_batches()[0]
    n, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        writer.append(batch)
        writer.sync()
        n += batch.num_rows
    writer.close()
    return n / seconds


async def part_ingest(args: argparse.Namespace, tmp: Path) -> None:
    store = Store(tmp / "store", StorageConfig(compact_interval="1h", fsync=args.fsync))
    await store.open()
    await ingest(store, 1.0, saturate=False)  # every stream known, some history to read
    idle = Readers(store, 1)
    with idle:
        await asyncio.sleep(1.0)
    idle_p99 = pct(idle.latencies, 0.99)
    print(f"\n## Ingest, fsync: {args.fsync}, {args.readers} readers ({os.cpu_count()} cores)\n")
    print("| load | values/s durable | ack p50 ms | ack p99 ms | reader p99 ms (idle: %.1f) | CPU %% |"
          % (idle_p99 * 1e3))
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for saturate in (False, True):
        with Readers(store, args.readers) as readers:
            cpu0, wall0 = os.times(), time.perf_counter()
            accepted, acks = await ingest(store, args.seconds, saturate)
            cpu1, wall = os.times(), time.perf_counter() - wall0
        cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / wall * 100
        label = "saturating (each source sends on ack)" if saturate else "plant: 20 x 500 @ 1/s + 200 @ 10 Hz"
        print(f"| {label} | {accepted / wall:,.0f} | {pct(acks, 0.5) * 1e3:.1f} | {pct(acks, 0.99) * 1e3:.1f} "
              f"| {pct(readers.latencies, 0.99) * 1e3:.1f} | {cpu:.0f} |")
    frames = getattr(getattr(store, "_writer", None), "frames", None)
    await store.close()
    raw = ceiling(tmp, min(args.seconds, 3.0), 10_000)
    print(f"\nraw ceiling (WalWriter, 10,000-value frames + fsync): {raw:,.0f} values/s; frames written: {frames}")


def part_latest() -> None:
    print("\n## Latest-value index: one 10-row batch\n")
    print("| known streams | ms per batch |")
    print("| ---: | ---: |")
    for known in (1_000, 10_000, 100_000):
        index = LatestIndex()
        names = [f"/plant/s{i}" for i in range(known)]
        index.update(1, from_columns(names, [T0] * known, double=[1.0] * known))
        batches = [from_columns(names[(k * 10) % known:(k * 10) % known + 10], [T0 + k + 1] * 10,
                                double=[2.0] * 10) for k in range(300)]
        t = time.perf_counter()
        for k, b in enumerate(batches):
            index.update(k + 2, b)
        print(f"| {known:,} | {(time.perf_counter() - t) / len(batches) * 1e3:.2f} |")


async def part_resident(tmp: Path) -> None:
    store = Store(tmp / "resident", StorageConfig(compact_interval="1h"))
    await store.open()
    names = [f"/s{k}" for k in range(500)]
    for i in range(1000):
        await store.append(from_columns(names, np.full(500, T0 + i * NS), double=np.arange(500.0)))

    def open_reader() -> float:
        t = time.perf_counter()
        with store.reader():
            pass
        return time.perf_counter() - t

    times = await asyncio.to_thread(lambda: [open_reader() for _ in range(15)])
    print("\n## Opening a reader over 500,000 WAL-resident rows (1,000 records)\n")
    print(f"median {statistics.median(times) * 1e3:.1f} ms, min {min(times) * 1e3:.1f} ms")
    await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fsync", default="batch")
    parser.add_argument("--readers", type=int, default=16)
    parser.add_argument("--parts", default="ingest,latest,resident")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    with tempfile.TemporaryDirectory() as d:
        if "ingest" in parts:
            await part_ingest(args, Path(d))
        if "latest" in parts:
            part_latest()
        if "resident" in parts:
            await part_resident(Path(d))


if __name__ == "__main__":
    asyncio.run(main())
