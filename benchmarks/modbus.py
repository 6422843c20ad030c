"""The Modbus source against a bare pymodbus client, on one server with 10,000 holding registers.

    .venv/bin/python benchmarks/modbus.py [--registers 10000] [--polls 30] [--max-gap 10] [--rounds 5]

A pymodbus TCP server in its own process holds 10,000 holding registers read as mixed tags (uint16,
int16, float32 ABCD and CDAB, uint32, int32 DCBA, float64, a bit of a status word, 4-register
strings, scaled int16s), with a few unused registers between some of them. In the same run:

1. **Requests per poll**: the connector's plan, against the optimal plan (an exhaustive search over
   every way to cut the sorted tags into requests within 125 registers and the same gap), against
   one request per tag.
2. **Register rate**: registers/s read by a bare ``AsyncModbusTcpClient`` looping over the same
   ranges (no decoding: the ceiling), against the connector polling the same server (reading,
   vectorised decoding, building the Arrow batch).
3. **Values/s into the store**: the connector's batches appended to a ``Store`` (WAL, fsync per batch).

Targets (issue 12): >= 80 % of the bare client's register rate; requests per poll = the optimal plan.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pymodbus.client import AsyncModbusTcpClient  # noqa: E402

from connectors.modbus.config import MAX_REGISTERS, ModbusSource  # noqa: E402
from connectors.modbus.connector import ModbusConnector  # noqa: E402
from connectors.modbus.plan import plan_source  # noqa: E402
from sitewise_edge.config import StorageConfig  # noqa: E402
from storage.store import Store  # noqa: E402

# (type, registers, extra settings): cycled over the register space
MIX: list[tuple[str, int, dict[str, Any]]] = [
    ("uint16", 1, {}), ("int16", 1, {}), ("float32", 2, {}), ("float32", 2, {"byte_order": "CDAB"}),
    ("uint32", 2, {}), ("int32", 2, {"byte_order": "DCBA"}), ("float64", 4, {}),
    ("bool", 1, {"bit": 5}), ("string", 4, {"length": 4}), ("int16", 1, {"scale": 0.1}),
]


def make_tags(registers: int) -> list[dict[str, Any]]:
    """Mixed tags over ``registers`` holding registers; every 7th tag leaves 3 registers unused after it."""
    tags: list[dict[str, Any]] = []
    address, k = 0, 0
    while True:
        data_type, width, extra = MIX[k % len(MIX)]
        if address + width > registers:
            return tags
        tags.append({"alias": f"/bench/t{k}", "table": "holding", "address": address, "type": data_type, **extra})
        address += width + (3 if k % 7 == 6 else 0)
        k += 1


def optimal_requests(spans: list[tuple[int, int]], max_gap: int, limit: int = MAX_REGISTERS) -> int:
    """The fewest requests for the (start, end) spans of tags that do not overlap, sorted by start: dynamic
    programming over every way to cut them into runs within ``limit`` registers and ``max_gap``."""
    n = len(spans)
    best = [0] + [n + 1] * n
    for end in range(1, n + 1):
        hi = spans[end - 1][1]
        for begin in range(end - 1, -1, -1):
            if begin < end - 1 and spans[begin + 1][0] - spans[begin][1] > max_gap:
                break
            if hi - spans[begin][0] > limit:
                break
            best[end] = min(best[end], best[begin] + 1)
    return best[n]


def serve(registers: int, ready: Any) -> None:
    """The server process: pymodbus TCP, 10,000 holding registers with varied contents (two letters each)."""
    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    async def main() -> None:
        values = [(0x41 + a % 26) << 8 | (0x61 + (a * 7) % 26) for a in range(registers)]  # ASCII: strings decode
        simdata = ([SimData(0, values=[False], datatype=DataType.BITS)], [SimData(0, values=[False],
                                                                                 datatype=DataType.BITS)],
                   [SimData(0, values=values, datatype=DataType.REGISTERS)],
                   [SimData(0, values=[0], datatype=DataType.REGISTERS)])
        server = ModbusTcpServer(SimDevice(1, simdata=simdata), address=("127.0.0.1", 0))
        await server.serve_forever(background=True)
        ready.send(int(server.transport.sockets[0].getsockname()[1]))
        await asyncio.Event().wait()

    asyncio.run(main())


async def bare_client(port: int, ranges: list[tuple[int, int]], polls: int) -> float:
    """Seconds for ``polls`` rounds of the ranges with a bare pymodbus client."""
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=5, retries=0)
    await client.connect()
    try:
        for a, c in ranges:  # warm-up round
            await client.read_holding_registers(a, count=c, device_id=1)
        started = time.perf_counter()
        for _ in range(polls):
            for a, c in ranges:
                response = await client.read_holding_registers(a, count=c, device_id=1)
                assert not response.isError() and len(response.registers) == c
        return time.perf_counter() - started
    finally:
        client.close()


async def connector_rate(source: ModbusSource, polls: int, store: Store | None) -> tuple[float, int]:
    """Seconds and values for ``polls`` polls of the connector (and their appends to ``store``)."""
    conn = ModbusConnector(source)
    await conn.open()
    try:
        group = conn.groups[0]
        await conn.poll_group(group)  # warm-up
        values = 0
        started = time.perf_counter()
        for _ in range(polls):
            for batch in await conn.poll_group(group):
                assert batch.column("quality").to_numpy().max() == 0
                values += batch.num_rows
                if store is not None:
                    await store.append(batch)
        return time.perf_counter() - started, values
    finally:
        await conn.close()


async def run(args: argparse.Namespace, port: int) -> None:
    tags = make_tags(args.registers)
    source = ModbusSource.model_validate({"name": "bench", "type": "modbus", "host": "127.0.0.1", "port": port,
                                          "timeout": 5, "max_gap": args.max_gap, "tags": tags})
    (plan,) = plan_source(source)
    requests = plan.requests
    spans = sorted((t.location()[1], t.location()[1] + t.count()) for t in source.device_list()[0].tags)
    optimal = optimal_requests(spans, args.max_gap)
    registers = sum(r.count for r in requests)
    ranges = [(r.address, r.count) for r in requests]

    bare_times, conn_times = [], []
    for _ in range(args.rounds):  # alternated, medians: a shared machine slows one or the other at random
        bare_times.append(await bare_client(port, ranges, args.polls))
        t, values = await connector_rate(source, args.polls, None)
        conn_times.append(t)
    t_bare, t_conn = statistics.median(bare_times), statistics.median(conn_times)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "store", StorageConfig(compact_interval="1h"))
        await store.open()
        try:
            t_store, stored = await connector_rate(source, args.polls, store)
        finally:
            await store.close()

    bare_rate = registers * args.polls / t_bare
    conn_rate = registers * args.polls / t_conn
    print(f"Modbus: {len(tags)} mixed tags over {args.registers} holding registers, {args.polls} polls x "
          f"{args.rounds} alternated rounds (medians), max_gap {args.max_gap}, server in its own process\n")
    print(f"{'figure':<44} {'value':>14} {'reference':>14} {'ratio':>8}")
    print(f"{'requests per poll (plan vs optimal)':<44} {len(requests):>14} {optimal:>14} "
          f"{len(requests) / optimal:>8.2f}")
    print(f"{'requests per poll (plan vs one per tag)':<44} {len(requests):>14} {len(tags):>14} "
          f"{len(requests) / len(tags):>8.3f}")
    print(f"{'registers read per poll (incl. gaps)':<44} {registers:>14} {args.registers:>14} "
          f"{registers / args.registers:>8.2f}")
    print(f"{'registers/s (connector vs bare client)':<44} {conn_rate:>14,.0f} {bare_rate:>14,.0f} "
          f"{conn_rate / bare_rate:>8.2f}")
    print(f"{'poll ms (connector vs bare client)':<44} {1000 * t_conn / args.polls:>14.1f} "
          f"{1000 * t_bare / args.polls:>14.1f} {t_conn / t_bare:>8.2f}")
    print(f"{'values/s out of the connector':<44} {values / t_conn:>14,.0f} {'':>14} {'':>8}")
    print(f"{'values/s into the store (poll + WAL append)':<44} {stored / t_store:>14,.0f} "
          f"{values / t_conn:>14,.0f} {(stored / t_store) / (values / t_conn):>8.2f}")
    ok = len(requests) == optimal and conn_rate >= 0.8 * bare_rate
    print(f"\ntargets (>= 80 % of the bare client's register rate, requests = optimal): {'met' if ok else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--registers", type=int, default=10_000)
    parser.add_argument("--polls", type=int, default=30)
    parser.add_argument("--max-gap", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5, help="alternated rounds of both clients (medians)")
    args = parser.parse_args()
    receive, send = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.Process(target=serve, args=(args.registers, send), daemon=True)
    server.start()
    try:
        if not receive.poll(30):
            sys.exit("the Modbus server did not start within 30 s")
        asyncio.run(run(args, receive.recv()))
    finally:
        server.terminate()
        server.join(5)


if __name__ == "__main__":
    main()
