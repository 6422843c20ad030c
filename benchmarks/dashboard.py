"""The dashboard's trend route over a month of 1 Hz data, against the store's own query (the ceiling).

    .venv/bin/python benchmarks/dashboard.py [--days 30] [--streams 1] [--runs 5]

A gateway (in this process, its API on 127.0.0.1) holds ``--days`` of one value per second for each of
``--streams`` streams, compacted to Parquet as a running gateway's would be. Timed, median of ``--runs``:

- ``GET /dashboard/api/trend`` as the page asks it (30 days: ~1000 bucket averages with min and max; 1 hour: raw
  values), over HTTP with httpx, JSON decoded: what the browser waits for before drawing;
- the same aggregation straight through the store's reader (``Reader.aggregates`` / ``history`` in the
  gateway's query thread), no HTTP and no JSON: the ceiling the route is measured against.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sitewise_edge.clock import NS_PER_MS, NS_PER_S, SYSTEM_CLOCK  # noqa: E402
from sitewise_edge.config import parse_config  # noqa: E402
from sitewise_edge.runtime import Gateway  # noqa: E402
from sitewise_edge.samples import from_columns  # noqa: E402

DAY = 86400


async def _median(runs: int, fn: object) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


async def main(days: int, streams: int, runs: int, raw_only: bool = False) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = parse_config({"gateway": {"name": "bench", "data_dir": tmp}, "api": {"host": "127.0.0.1", "port": 0},
                            "storage": {"compact_interval": "1h"}}, env={})
        gw = Gateway(cfg)
        await gw.start()
        try:
            end_s = SYSTEM_CLOCK.time_ns() // NS_PER_S
            names = [f"/bench/line1/m{i}/temperature" for i in range(streams)]
            t0 = time.perf_counter()
            for d in range(days, 0, -1):  # a day a batch, oldest first
                times = np.arange(end_s - d * DAY, end_s - (d - 1) * DAY, dtype=np.int64) * NS_PER_S
                for name in names:
                    await gw.ingest(from_columns([name] * len(times), times,
                                                 double=20 + 5 * np.sin(np.arange(len(times)) / 3600.0)))
            await gw.store.compact()
            load = time.perf_counter() - t0
            total = days * DAY * streams
            print(f"loaded {total:,} values ({days} days of 1 Hz x {streams} streams) in {load:.1f} s, compacted")
            if not raw_only:  # what the running gateway's compaction pass does next: the past days' aggregates
                t0 = time.perf_counter()
                built = await gw.store.refresh_aggregates()
                print(f"precomputed the aggregates of {built} past days in {time.perf_counter() - t0:.1f} s")
            end_ms = end_s * 1000
            cases = [("30 days" if days == 30 else f"{days} days", days * DAY * 1000), ("1 hour", 3600 * 1000)]
            print(f"\n{'range':<10} {'route (HTTP+JSON) ms':>21} {'store query ms':>15} {'ratio':>7} {'points':>8}")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}", timeout=60) as http:
                for label, span in cases:
                    params = {"stream": names, "start": end_ms - span, "end": end_ms, "points": 1000}
                    body: dict[str, object] = {}

                    async def route(params: dict[str, object] = params, body: dict[str, object] = body) -> None:
                        r = await http.get("/dashboard/api/trend", params=params)
                        body.update(r.json())

                    start_ns, stop_ns = (end_ms - span) * NS_PER_MS, end_ms * NS_PER_MS

                    async def store(span: int = span, start_ns: int = start_ns, stop_ns: int = stop_ns,
                                    body: dict[str, object] = body) -> None:
                        if span <= 2 * 3600 * 1000:
                            await gw.query(lambda r: [r.history(n, start_ns, stop_ns, quality=None, limit=20_001)
                                                      for n in names])
                        else:
                            res = body["series"][0]["resolutionSeconds"]  # type: ignore[index]
                            await gw.query(lambda r: r.aggregates(names, start_ns, stop_ns, res * NS_PER_S,
                                                                  quality=0, limit=10**6))

                    await route()  # warm: the first query opens the Parquet files
                    ms_route = await _median(runs, route)
                    ms_store = await _median(runs, store)
                    points = sum(len(s["t"]) for s in body["series"])  # type: ignore[attr-defined]
                    mode = body["series"][0]["mode"]  # type: ignore[index]
                    print(f"{label:<10} {ms_route:>21.1f} {ms_store:>15.1f} {ms_route / ms_store:>6.2f}x "
                          f"{points:>8,} {mode}")
        finally:
            await gw.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--streams", type=int, default=1)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--raw", action="store_true", help="no precomputed aggregates (the path before layout 4)")
    a = ap.parse_args()
    asyncio.run(main(a.days, a.streams, a.runs, a.raw))
