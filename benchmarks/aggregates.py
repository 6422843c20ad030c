"""The store's aggregate queries (issue 10): one stream one day, all streams one hour, 16 concurrent readers.

    .venv/bin/python benchmarks/aggregates.py [--streams 1000] [--period 10] [--days 3] [--data DIR] [--runs 5]
    PYTHONPATH=/tmp/base .venv/bin/python benchmarks/aggregates.py --data DIR   # the same questions, another tree

A store of ``--streams`` streams, one double every ``--period`` seconds, over the ``--days`` days ending now,
appended through ``Store.append`` in batches of 10 minutes of every stream, then compacted, merged and its past
days' aggregates precomputed (the compactor's pass). ``--data DIR`` keeps the store there: a second run with
another source tree (``PYTHONPATH``) answers the same questions over the same files, for a before/after.

The questions, each through ``Store.reader()`` as the API asks them, median of ``--runs``:

- 1-minute aggregates (AVERAGE, COUNT, MIN, MAX...) of one stream over the 24 h ending at a cut time (the
  first and last buckets are computed raw: the edges) and over the whole past day (precomputed);
- 1-minute aggregates of every stream over one hour (the last whole hour of the past day, precomputed;
  and the last hour, today's data, computed raw);
- 16 threads asking the cut one-day question of random streams: requests/s and p99.

Targets (issue 10): one stream one day < 5 ms, all 1,000 streams one hour < 100 ms, 16 clients >= 200 req/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from sitewise_edge.config import StorageConfig
from sitewise_edge.samples import from_columns
from storage.store import Store

NS = 10**9
MINUTE_NS, HOUR_NS, DAY_NS = 60 * NS, 3600 * NS, 86_400 * NS
BATCH_S = 600


def stream_name(i: int) -> str:
    return f"/plant/line{i // 100}/machine{i % 100}/signal"


async def build(store: Store, streams: int, period: int, days: int, end_ns: int) -> int:
    names = pa.array([stream_name(i) for i in range(streams)], pa.string()).dictionary_encode()
    start_s = (end_ns - days * DAY_NS) // NS
    ticks = np.arange(0, BATCH_S, period, dtype=np.int64)
    rng = np.random.default_rng(7)
    values = 0
    for first in range(start_s, end_ns // NS - BATCH_S, BATCH_S):
        times = np.repeat((first + ticks) * NS, streams)
        codes = np.tile(np.arange(streams, dtype=np.int32), len(ticks))
        stream = pa.DictionaryArray.from_arrays(pa.array(codes), names.dictionary)
        batch = from_columns(stream, times, double=rng.normal(50.0, 5.0, len(times)))
        await store.append(batch)
        values += len(times)
        if values % (streams * 6 * 3600 // period) < len(times):
            print(f"  {values:,} values", file=sys.stderr)
    await store.compact()
    await store.merge_days()
    await store.refresh_aggregates()
    return values


def median_ms(fn: Callable[[], object], runs: int) -> tuple[float, float, object]:
    """Median wall and CPU (this process, every thread: DuckDB's too) milliseconds of ``runs`` calls. The CPU
    figure moves less than the wall time when other processes share the cores."""
    times, cpu, out = [], [], None
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(times) * 1e3, statistics.median(cpu) * 1e3, out


def concurrent(store: Store, streams: int, lo: int, hi: int, threads: int, seconds: float) -> tuple[float, float]:
    latencies: list[float] = []
    until = time.perf_counter() + seconds
    lock = threading.Lock()

    def client(seed: int) -> None:
        rnd = random.Random(seed)
        mine = []
        while time.perf_counter() < until:
            t0 = time.perf_counter()
            with store.reader() as r:
                r.aggregates([stream_name(rnd.randrange(streams))], lo, hi, MINUTE_NS, limit=2500)
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    pool = [threading.Thread(target=client, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return len(latencies) / elapsed, latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1e3


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--period", type=int, default=10, help="seconds between two values of a stream")
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--data", type=Path, default=None, help="keep the store here (reused when it exists)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0, help="of the concurrent cell")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-agg-") as tmp:
        data = args.data or Path(tmp)
        marker = data / "bench.txt"
        store = Store(data, StorageConfig(compact_interval=3600.0))
        await store.open()
        try:
            if marker.exists():  # built by an earlier run: its shape, not the arguments', is the store's
                end_ns, values, args.streams, args.period, args.days = map(int, marker.read_text().split())
            else:
                end_ns = time.time_ns() // NS * NS
                t0 = time.perf_counter()
                values = await build(store, args.streams, args.period, args.days, end_ns)
                marker.write_text(f"{end_ns} {values} {args.streams} {args.period} {args.days}")
                print(f"built {values:,} values in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
            files = len(store.snapshot().files)
            today = end_ns // DAY_NS * DAY_NS
            cut_end = end_ns - 1800 * NS - 17 * NS  # buckets cut at both ends: yesterday's and today's edges
            one = stream_name(args.streams // 2)

            def agg(streams: list[str] | None, lo: int, hi: int) -> Callable[[], object]:
                def run() -> object:
                    with store.reader() as r:
                        return r.aggregates(streams, lo, hi, MINUTE_NS, limit=1_000_000).num_rows
                return run

            cells = [
                ("one stream, 24 h ending at a cut time (edges raw)", agg([one], cut_end - DAY_NS, cut_end)),
                ("one stream, the past whole day (precomputed)", agg([one], today - DAY_NS, today)),
                ("all streams, the past day's last hour (precomputed)", agg(None, today - HOUR_NS, today)),
                ("all streams, the last hour (today: raw)", agg(None, end_ns - 2 * HOUR_NS, end_ns - HOUR_NS)),
            ]
            rows = []
            for name, fn in cells:
                fn()  # a first run opens the files
                ms, cpu_ms, n = await asyncio.to_thread(median_ms, fn, args.runs)
                rows.append((name, ms, cpu_ms, n))
            rps, p99 = await asyncio.to_thread(concurrent, store, args.streams, cut_end - DAY_NS, cut_end,
                                               args.threads, args.seconds)
        finally:
            await store.close()

    load = os.getloadavg()
    print(f"\nStore aggregates: {values:,} values ({args.streams:,} streams every {args.period} s, {args.days} days), "
          f"{files} Parquet files; median of {args.runs}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    print("| question | ms | CPU ms | rows |")
    print("| --- | ---: | ---: | ---: |")
    for name, ms, cpu_ms, n in rows:
        print(f"| {name} | {ms:,.1f} | {cpu_ms:,.1f} | {n:,} |")
    print(f"| {args.threads} threads, one stream 24 h (cut): requests/s, p99 ms | {rps:,.0f} | | p99 {p99:,.1f} |")


if __name__ == "__main__":
    asyncio.run(main())
