"""The OPC UA source against a bare asyncua client on the same server in the same run (issue 11).

    .venv/bin/python benchmarks/opcua.py [--nodes 10000 50000] [--seconds 10] [--skip-store]

A server process (asyncua, this script with ``--serve``) holds N Double variables and rewrites all
of them once a second, or as fast as it can when that takes longer (every value changes each round).
Against it, one after the other:

* **bare**: an asyncua ``Client``, one subscription (publishing interval 1 s), ``subscribe_data_change``
  in chunks of 1,000, a handler that only counts notifications: the library's ceiling.
* **ours**: ``OpcUaStreamingConnector`` (the same interval, node ids from a configuration), every batch
  appended to a ``Store`` (WAL, fsync per batch): values/s into the store, as the gateway runs it.
* **ours, no store**: the connector alone (``--skip-store`` drops the store row).

Figures: subscribe time (connect + create every monitored item), values/s after the first full
round, and CPU µs per value (this process's user + system time, every thread, over the measured
window). The ratios are against the bare client of the same N.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from asyncua import Client, Server, ua  # noqa: E402

from connectors.opcua.config import OpcUaSource  # noqa: E402
from connectors.opcua.connector import OpcUaStreamingConnector  # noqa: E402
from sitewise_edge.config import StorageConfig  # noqa: E402
from sitewise_edge.simulators.opcua import free_port  # noqa: E402
from storage.store import Store  # noqa: E402

INTERVAL_S = 1.0
KEEPALIVE_S = 1.5
FOLDER_NODES = 100  # variables per folder of the server's address space


def node_id(i: int) -> str:
    return f"ns=2;i={100_000 + i}"


# --- the server process ---------------------------------------------------------------------


async def serve(nodes: int, port: int) -> None:
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    idx = await server.register_namespace("urn:sitewise-edge:bench")
    root = await server.nodes.objects.add_folder(ua.NodeId("Bench", idx), "Bench")
    ids = []
    # asyncua checks a new node against every reference of its parent (browse name, uniqueness): one
    # folder of 10,000 nodes took ~13 min (quadratic); folders of FOLDER_NODES take 12 s (the same ids)
    for start in range(0, nodes, FOLDER_NODES):
        group = start // FOLDER_NODES
        folder = await root.add_folder(ua.NodeId(f"Bench/{group}", idx), f"G{group}")
        for i in range(start, min(nodes, start + FOLDER_NODES)):
            nid = ua.NodeId(100_000 + i, idx)
            await folder.add_variable(nid, f"V{i}", ua.Variant(0.0, ua.VariantType.Double))
            ids.append(nid)
    async with server:
        print("ready", flush=True)
        n = 0
        while True:  # a round per second at most (as fast as it can at 50,000), yielding to serve the clients
            n += 1
            next_round = time.monotonic() + INTERVAL_S
            for i, nid in enumerate(ids):
                await server.write_attribute_value(nid, ua.DataValue(ua.Variant(n + 0.5, ua.VariantType.Double)))
                if i % 200 == 0:
                    await asyncio.sleep(0)
            await asyncio.sleep(max(0.0, next_round - time.monotonic()))


@contextlib.contextmanager
def server_process(nodes: int) -> Any:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(nodes), str(port)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the benchmark server did not start")
        yield f"opc.tcp://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


# --- the clients ------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    subscribe_s: float
    values: int
    seconds: float
    cpu_s: float

    @property
    def rate(self) -> float:
        return self.values / self.seconds

    @property
    def cpu_us(self) -> float:
        return self.cpu_s / max(self.values, 1) * 1e6


def cpu() -> float:
    t = os.times()
    return t.user + t.system


class Counter:
    def __init__(self) -> None:
        self.count = 0

    def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
        self.count += 1


async def measure(seconds: float, count: Any, nodes: int) -> tuple[int, float, float]:
    """Wait for the first full round, then count values and CPU for ``seconds``."""
    while count() < nodes:  # noqa: ASYNC110 - counters with no event of their own (bare handler, connector)
        await asyncio.sleep(0.05)
    v0, c0, t0 = count(), cpu(), time.perf_counter()
    await asyncio.sleep(seconds)
    return count() - v0, time.perf_counter() - t0, cpu() - c0


async def bare(endpoint: str, nodes: int, seconds: float) -> Result:
    started = time.perf_counter()
    client = Client(endpoint, timeout=30)
    await client.connect()
    try:
        handler = Counter()
        sub = await client.create_subscription(INTERVAL_S * 1000, handler)
        ids = [client.get_node(node_id(i)) for i in range(nodes)]
        for start in range(0, nodes, 1000):
            await sub.subscribe_data_change(ids[start:start + 1000], queuesize=1,
                                            sampling_interval=ua.Double(INTERVAL_S * 1000))
        subscribed = time.perf_counter() - started
        values, elapsed, used = await measure(seconds, lambda: handler.count, nodes)
        return Result("bare asyncua client", subscribed, values, elapsed, used)
    finally:
        await client.disconnect()


async def ours(endpoint: str, nodes: int, seconds: float, store: Store | None) -> Result:
    cfg = OpcUaSource.model_validate({
        "name": "bench", "type": "opcua", "endpoint": endpoint, "interval": INTERVAL_S, "timeout": 30,
        "keepalive": KEEPALIVE_S,
        "nodes": [{"node_id": node_id(i), "alias": f"/bench/v{i}"} for i in range(nodes)]})
    connector = OpcUaStreamingConnector(cfg)
    started = time.perf_counter()
    await connector.open()
    subscribed = time.perf_counter() - started
    received = 0

    async def consume() -> None:
        nonlocal received
        async for batch in connector.stream():
            if store is not None:
                await store.append(batch)
            received += batch.num_rows

    task = asyncio.create_task(consume())
    try:
        values, elapsed, used = await measure(seconds, lambda: received, nodes)
    finally:
        await connector.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    name = "sitewise-edge -> store" if store is not None else "sitewise-edge, no store"
    return Result(name, subscribed, values, elapsed, used)


@contextlib.asynccontextmanager
async def a_store() -> AsyncIterator[Store]:
    with tempfile.TemporaryDirectory(prefix="bench-opcua-") as tmp:
        store = Store(Path(tmp), StorageConfig(compact_interval="1h"))
        await store.open()
        try:
            yield store
        finally:
            await store.close()


async def run(sizes: list[int], seconds: float, with_store: bool) -> None:
    print(f"{'nodes':>7} {'client':<26} {'subscribe s':>11} {'values/s':>10} {'rate vs bare':>12} "
          f"{'CPU µs/value':>12} {'CPU vs bare':>11}")
    for nodes in sizes:
        with server_process(nodes) as endpoint:
            base = await bare(endpoint, nodes, seconds)
            results = [base]
            if with_store:
                async with a_store() as store:
                    results.append(await ours(endpoint, nodes, seconds, store))
            results.append(await ours(endpoint, nodes, seconds, None))
            for r in results:
                print(f"{nodes:>7} {r.name:<26} {r.subscribe_s:>11.2f} {r.rate:>10,.0f} {r.rate / base.rate:>11.2f}x "
                      f"{r.cpu_us:>12.1f} {r.cpu_us / base.cpu_us:>10.2f}x", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--skip-store", action="store_true")
    parser.add_argument("--serve", nargs=2, type=int, metavar=("NODES", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(*args.serve))
        return
    asyncio.run(run(args.nodes, args.seconds, not args.skip_store))


if __name__ == "__main__":
    main()
