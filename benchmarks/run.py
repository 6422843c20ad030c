"""sitewise-edge benchmarks: every figure with its ratio to the raw-library ceiling.

    .venv/bin/python benchmarks/run.py [--values 1000000] [--backlog 100000]

1. Ingest: values/s through the store's own write path (WAL frame, fsync per batch, in-memory index),
   against writing the same Arrow batches as IPC frames to a file with an fsync each (the ceiling).
2. Queries: latency of the latest value of one stream and of every stream, over WAL-resident and
   Parquet data.
3. Forwarding: values/s for a publisher draining a backlog to a SiteWise-compatible endpoint (a second
   gateway in its own process), against a bare boto3 loop sending pre-built 10x10 requests to the same
   endpoint with the same concurrency (the ceiling).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import botocore.config
import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sitewise_edge.config import SitewisePublisher, StorageConfig  # noqa: E402
from sitewise_edge.publish.requests import build_requests  # noqa: E402
from sitewise_edge.publish.sitewise import SitewisePublisherTask  # noqa: E402
from sitewise_edge.samples import from_columns  # noqa: E402
from storage.store import Store  # noqa: E402

STREAMS = 1000
BATCH = 5000


def make_batches(total: int, start_ns: int) -> list[pa.RecordBatch]:
    """1,000 streams of slow noisy signals at 1 Hz, in batches of 5,000 values (5 s of a plant)."""
    rng = np.random.default_rng(1)
    names = np.array([f"/plant/line{i // 100}/machine{i % 100}/signal" for i in range(STREAMS)])
    out = []
    for b in range(total // BATCH):
        idx = np.arange(b * BATCH, (b + 1) * BATCH)
        stream = idx % STREAMS
        t = start_ns + (idx // STREAMS) * 1_000_000_000
        value = 50 + 10 * np.sin(idx / 5000.0) + rng.normal(0, 0.1, BATCH)
        out.append(from_columns(pa.array(names[stream]), t, double=value))
    return out


def ceiling_ingest(batches: list[pa.RecordBatch], path: Path) -> float:
    started = time.perf_counter()
    with open(path, "wb") as f:
        for batch in batches:
            sink = pa.BufferOutputStream()
            with ipc.new_stream(sink, batch.schema) as w:
                w.write_batch(batch)
            f.write(sink.getvalue().to_pybytes())
            f.flush()
            os.fsync(f.fileno())
    return time.perf_counter() - started


async def store_ingest(batches: list[pa.RecordBatch], data_dir: Path) -> tuple[float, Store]:
    store = Store(data_dir, StorageConfig(compact_interval="1h"))
    await store.open()
    started = time.perf_counter()
    for batch in batches:
        await store.append(batch)
    return time.perf_counter() - started, store


def timed(fn, repeat: int = 20) -> float:  # type: ignore[no-untyped-def]
    fn()
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return float(np.median(samples))


def start_endpoint(tmp: Path) -> tuple[subprocess.Popen[str], int]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp / "endpoint.yaml"
    cfg.write_text(f"gateway: {{name: endpoint, data_dir: {tmp / 'endpoint'}}}\napi: {{port: {port}}}\n")
    proc = subprocess.Popen([sys.executable, "-m", "sitewise_edge", "--log-level", "warning", "run", "-c", str(cfg)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    proc.stdout.readline()  # "Dashboard: ..." once it serves
    return proc, port


def bare_boto3(requests: list[list[dict]], port: int, concurrency: int) -> float:  # type: ignore[type-arg]
    """The ceiling: the same client options and request shapes as the publisher, nothing else."""
    client = boto3.client("iotsitewise", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{port}",
                          aws_access_key_id="x", aws_secret_access_key="x",
                          config=botocore.config.Config(inject_host_prefix=False, max_pool_connections=10,
                                                        retries={"mode": "standard", "total_max_attempts": 1}))
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda entries: client.batch_put_asset_property_value(
            entries=entries, enablePartialEntryProcessing=True), requests))
    return time.perf_counter() - started


async def publisher_drain(store: Store, port: int, total: int, concurrency: int) -> float:
    """The publisher from its cursor to the last acknowledgement: read, checks, request building, lanes,
    cursor saves. Rate limits off (the ceiling has none); no live lane (the backlog is all there is)."""
    cfg = SitewisePublisher(name="bench", type="sitewise", endpoint_url=f"http://127.0.0.1:{port}",
                            batch_interval=0.01, max_in_flight=concurrency, rate_limit_values=0,
                            rate_limit_requests=0, rate_limit_entries_per_property=0, live_after=86400.0)
    task = SitewisePublisherTask(cfg, store, store.data_dir / "deadletter")
    started = time.perf_counter()
    runner = asyncio.create_task(task.run())
    while task.stats.values_sent < total:  # noqa: ASYNC110 - the publisher exposes counters, not events
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    runner.cancel()
    try:
        await runner
    except asyncio.CancelledError:
        pass
    return elapsed


def _num(v: float) -> str:
    return f"{v:>14,.0f}" if v >= 100 else f"{v:>14.2f}"


def row(name: str, ours: float, ceiling: float | None, unit: str, ceiling_name: str = "") -> str:
    ratio = f"{ours / ceiling:6.1%}" if ceiling else "     -"
    ceil = _num(ceiling) if ceiling else " " * 14
    return f"| {name:<44} | {_num(ours)} | {ceil} | {ratio} | {unit:<9} | {ceiling_name}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--values", type=int, default=1_000_000)
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "x")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "x")
    start_ns = time.time_ns() - 3 * 86400 * 10**9
    batches = make_batches(args.values, start_ns)
    lines = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        print(f"ingest: {args.values:,} values in batches of {BATCH:,}, fsync per batch ...", file=sys.stderr)
        t_ceiling = ceiling_ingest(batches, tmp / "raw.arrows")
        t_store, store = await store_ingest(batches, tmp / "store")
        n = args.values
        lines.append(row("ingest through Store.append", n / t_store, n / t_ceiling, "values/s",
                         "Arrow IPC write + fsync"))
        stream = "/plant/line0/machine7/signal"

        def latest_one() -> None:
            store.latest(stream)  # the in-memory index GetAssetPropertyValue answers from

        def latest_all() -> None:
            store.latest_all()

        def history_one() -> None:
            with store.reader() as r:
                r.history(stream, None, None)

        lines.append(row("latest of one stream (index, ms)", timed(latest_one) * 1e3, None, "ms"))
        lines.append(row("latest of 1,000 streams (index, ms)", timed(latest_all, 5) * 1e3, None, "ms"))
        lines.append(row("history of one stream, WAL-resident (ms)", timed(history_one, 5) * 1e3, None, "ms"))
        print("compacting ...", file=sys.stderr)
        started = time.perf_counter()
        await store.compact()
        lines.append(row("compaction to Parquet", n / (time.perf_counter() - started), None, "values/s"))
        size = sum(p.stat().st_size for p in (tmp / "store" / "parquet").rglob("*.parquet"))
        lines.append(row("Parquet bytes per stored value", size / n, None, "bytes"))
        lines.append(row("history of one stream, Parquet (ms)", timed(history_one, 5) * 1e3, None, "ms"))
        await store.close()

        print(f"forwarding: a backlog of {args.backlog:,} values, {args.concurrency} requests in flight ...",
              file=sys.stderr)
        fwd = Store(tmp / "fwd", StorageConfig(compact_interval="1h"))
        await fwd.open()
        for batch in make_batches(args.backlog, time.time_ns() - 3600 * 10**9):
            await fwd.append(batch)
        proc, port = start_endpoint(tmp)
        try:
            table, _ = fwd.read(fwd.cursor("x"), args.backlog)
            requests = [r for lane in build_requests(table) for r in lane]  # full 10x10 requests
            t_bare = await asyncio.to_thread(bare_boto3, requests, port, args.concurrency)
            t_pub = await publisher_drain(fwd, port, args.backlog, args.concurrency)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        await fwd.close()
        b = args.backlog
        lines.append(row("publisher drain to a local endpoint", b / t_pub, b / t_bare, "values/s",
                         f"bare boto3, pre-built 10x10 requests, {args.concurrency} threads"))

    print(f"| {'measurement':<44} | {'ours':>14} | {'ceiling':>14} |  ratio | unit      | ceiling")
    print(f"|{'-' * 46}|{'-' * 16}|{'-' * 16}|--------|-----------|--------")
    for line in lines:
        print(line)


if __name__ == "__main__":
    asyncio.run(main())
