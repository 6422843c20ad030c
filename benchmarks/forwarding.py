"""Forwarding under partial faults (issue 9 item 3), and its CPU cost per value (issue 10).

    .venv/bin/python benchmarks/forwarding.py [--faults 0,10,30,40,50] [--backlog 60000] [--rate 2000]
                                              [--seconds 10] [--delay 0.03] [--concurrency 4]
    .venv/bin/python benchmarks/forwarding.py --cpu [--backlog 200000] [--concurrency 4]

**--cpu**: CPU µs per value and values/s of this process, sending to a fault-free endpoint without delay (in
its own process): a bare boto3 loop sending pre-built 10 × 10 requests (validation and serialisation in
botocore: the reference), the publisher's client sending the same requests (the body encoded at once,
validation off: :func:`sitewise_edge.publish.clients.fast_batch_put`), and the whole publisher draining a
backlog of ``--backlog`` values from a store (reading, gathering, building, sending, acknowledging).

For every fault rate, a fault-injecting endpoint (tests/gateway/fault_endpoint.py in its own process) answers
that share of requests with an error: three quarters ``429 ThrottlingException`` and one quarter
``503 ServiceUnavailableException`` (40 %: the issue's 30 % 429 + 10 % 503), drawn at random (seeded). Every
answer comes after ``--delay`` seconds (a WAN round trip to the service). Two phases per rate, each with a
fresh publisher (its own cursor) on one store:

1. **drain**: a backlog of ``--backlog`` values (1,000 streams) from the cursor to the last acknowledgement:
   values/s, and the ratio to the fault-free run (the target: at 40 %, at least 55 %).
2. **live**: ``--rate`` values/s produced for ``--seconds`` while the publisher forwards: delivered/produced
   at the end of production.

The publisher runs with its defaults except: rate limits off (the endpoint has no quota), ``max_in_flight``
from ``--concurrency``. The success rate is the publisher's own (``successRate`` in its stats).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from run import STREAMS, make_batches  # noqa: E402

from sitewise_edge.config import SitewisePublisher, StorageConfig  # noqa: E402
from sitewise_edge.publish.sitewise import SitewisePublisherTask  # noqa: E402
from storage.state import Position  # noqa: E402
from storage.store import Store  # noqa: E402


def start_endpoint(fault_pct: float, delay: float) -> tuple[subprocess.Popen[str], int]:
    p = fault_pct / 100.0
    faults = [f"{0.75 * p}:429:ThrottlingException", f"{0.25 * p}:503:ServiceUnavailableException"] if p else []
    proc = subprocess.Popen([sys.executable, "-m", "tests.gateway.fault_endpoint", "--delay", str(delay),
                             "--faults", *faults], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def publisher(name: str, port: int, store: Store, concurrency: int) -> SitewisePublisherTask[Any]:
    cfg = SitewisePublisher(name=name, type="sitewise", endpoint_url=f"http://127.0.0.1:{port}",
                            max_in_flight=concurrency, rate_limit_values=0, rate_limit_requests=0,
                            rate_limit_entries_per_property=0, live_after=86400.0)
    return SitewisePublisherTask(cfg, store, store.data_dir / "deadletter")


async def until(predicate: Any, within: float) -> bool:
    deadline = time.perf_counter() + within
    while not predicate():
        if time.perf_counter() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


async def drain(store: Store, port: int, name: str, total: int, concurrency: int) -> dict[str, Any]:
    task = publisher(name, port, store, concurrency)
    started = time.perf_counter()
    runner = asyncio.create_task(task.run())
    done = await until(lambda: task.stats.values_sent >= total, within=600)
    elapsed = time.perf_counter() - started
    status = task.status()
    await cancel(runner)
    return {"rate": task.stats.values_sent / elapsed, "done": done, "status": status}


async def live(store: Store, port: int, name: str, rate: float, seconds: float, concurrency: int) -> dict[str, Any]:
    task = publisher(name, port, store, concurrency)
    # only what is produced from now on
    await asyncio.to_thread(store.save_cursor, task.cursor_name, Position(store.next_seq, 0))
    runner = asyncio.create_task(task.run())
    batch = 1000
    produced = 0
    started = time.perf_counter()
    t0 = time.time_ns()
    while (elapsed := time.perf_counter() - started) < seconds:
        due = int(rate * elapsed)
        while produced + batch <= due:
            (b,) = make_batches(batch * 5, t0 + produced * 1000)[:1]  # 1,000 streams, one value each
            await store.append(b.slice(0, batch))
            produced += batch
        await asyncio.sleep(0.01)
    sent = task.stats.values_sent
    status = task.status()
    await cancel(runner)
    return {"produced": produced, "delivered": sent, "status": status}


def _send_loop(client: Any, requests: list[list[dict[str, Any]]], concurrency: int) -> tuple[float, float]:
    """Send every request, ``concurrency`` threads; returns (seconds, CPU seconds of this process)."""
    import concurrent.futures

    wall, cpu = time.perf_counter(), time.process_time()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda r: client.batch_put_asset_property_value(entries=r, enablePartialEntryProcessing=True),
                      requests))
    return time.perf_counter() - wall, time.process_time() - cpu


async def cpu_per_value(backlog: int, concurrency: int) -> None:
    import boto3
    import botocore.config
    import pyarrow as pa

    from sitewise_edge.publish.clients import sitewise_client
    from sitewise_edge.publish.requests import build_requests

    proc, port = start_endpoint(0, 0.0)
    rows: list[tuple[str, float, float, float]] = []
    try:
        url = f"http://127.0.0.1:{port}"
        batches = make_batches(backlog, time.time_ns() - 3600 * 10**9)
        build_cpu = time.process_time()
        requests = [r for lane in build_requests(pa.Table.from_batches(batches), 1) for r in lane]
        build_cpu = time.process_time() - build_cpu
        total = sum(len(v["propertyValues"]) for r in requests for v in r)
        bare = boto3.client("iotsitewise", region_name="us-east-1", endpoint_url=url, config=botocore.config.Config(
            inject_host_prefix=False, retries={"total_max_attempts": 1}, max_pool_connections=2 * concurrency))
        cfg = SitewisePublisher(name="cpu", type="sitewise", endpoint_url=url, max_in_flight=concurrency)
        fast = sitewise_client(cfg)
        for name, client in (("bare boto3 loop (botocore validates + serialises)", bare),
                             ("publisher's client (body encoded at once, validation off)", fast)):
            _send_loop(client, requests[:20], concurrency)  # warm up: connections, the service model
            wall, cpu = _send_loop(client, requests, concurrency)
            rows.append((name, total / wall, cpu / total * 1e6, 0.0))
        with tempfile.TemporaryDirectory() as d:
            store = Store(Path(d) / "store", StorageConfig(compact_interval="1h"))
            await store.open()
            for batch in batches:
                await store.append(batch)
            task = publisher("cpu", port, store, concurrency)
            wall, cpu = time.perf_counter(), time.process_time()
            runner = asyncio.create_task(task.run())
            await until(lambda: task.stats.values_sent >= total, within=600)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            per_request = task.stats.values_sent / max(1, task.stats.requests_sent)
            await cancel(runner)
            await store.close()
        rows.append(("whole publisher: store -> gather -> build -> send -> ack", total / wall, cpu / total * 1e6,
                     per_request))
    finally:
        stop(proc)
    print(f"\n{total:,} values ({STREAMS:,} streams), {len(requests):,} requests, {concurrency} in flight, endpoint "
          f"without delay in its own process; CPU of this process (building the requests: "
          f"{build_cpu / total * 1e6:.1f} µs/value, not in the loops' figures)")
    ref = rows[0][2]
    print("| path | values/s | CPU µs/value | vs bare boto3 | values/request |")
    print("|------|---------:|-------------:|--------------:|---------------:|")
    for name, rate, us, per_req in rows:
        print(f"| {name} | {rate:,.0f} | {us:.1f} | {us / ref:.2f}x | {per_req or 100:.0f} |")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faults", default="0,10,30,40,50", help="fault rates in %%, comma-separated")
    parser.add_argument("--backlog", type=int, default=60_000)
    parser.add_argument("--rate", type=float, default=2000.0, help="values/s produced in the live phase")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the live phase")
    parser.add_argument("--delay", type=float, default=0.03, help="the endpoint's answer delay (s)")
    parser.add_argument("--concurrency", type=int, default=4, help="the publisher's max_in_flight")
    parser.add_argument("--cpu", action="store_true", help="CPU µs per value against a bare boto3 loop instead")
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "x")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "x")
    if args.cpu:
        await cpu_per_value(args.backlog, args.concurrency)
        return
    rates = [float(x) for x in args.faults.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as d:
        store = Store(Path(d) / "store", StorageConfig(compact_interval="1h"))
        await store.open()
        for batch in make_batches(args.backlog, time.time_ns() - 3600 * 10**9):
            await store.append(batch)
        base: float | None = None
        for pct in rates:
            print(f"fault rate {pct:g} %: drain of {args.backlog:,} values, then {args.rate:,.0f} values/s "
                  f"for {args.seconds:g} s ...", file=sys.stderr)
            proc, port = start_endpoint(pct, args.delay)
            try:
                d1 = await drain(store, port, f"drain{pct:g}", args.backlog, args.concurrency)
                d2 = await live(store, port, f"live{pct:g}", args.rate, args.seconds, args.concurrency)
            finally:
                stop(proc)
            if base is None:
                base = d1["rate"]
            s = d1["status"]
            rows.append((pct, d1["rate"], d1["rate"] / base, s.get("successRate"), s.get("inFlightLimit"),
                         d2["delivered"] / max(1, d2["produced"]), d2["produced"], d1["done"]))
        await store.close()
    print(f"\n{STREAMS:,} streams; backlog {args.backlog:,} values; endpoint delay {args.delay * 1000:.0f} ms; "
          f"max_in_flight {args.concurrency}; faults: 3/4 429 ThrottlingException, 1/4 503")
    print("| faults | drain values/s | vs fault-free | success rate | in-flight limit | live delivered/produced |")
    print("|-------:|---------------:|--------------:|-------------:|----------------:|------------------------:|")
    for pct, rate, ratio, success, limit, live_ratio, produced, done in rows:
        sr = f"{success:.1%}" if isinstance(success, float) else "-"
        lim = f"{limit:.1f}" if isinstance(limit, float) else "-"
        note = "" if done else " (timed out)"
        print(f"| {pct:5g}% | {rate:14,.0f} | {ratio:13.1%} | {sr:>12} | {lim:>15} | "
              f"{live_ratio:15.1%} of {produced:,}{note} |")


if __name__ == "__main__":
    asyncio.run(main())
