"""Forwarding at plant rate, end to end (issue 16): does the backlog drain?

    .venv/bin/python benchmarks/forwarding_e2e.py [--minutes 10] [--outage-minutes 5] [--nodes 10000]
                                                  [--registers 10000] [--modbus-interval 0.8]

Processes: an OPC UA server (``--nodes`` Double variables rewritten once a second, benchmarks/opcua.py) and
a Modbus TCP server (``--registers`` holding registers, benchmarks/modbus.py), both read by an *edge*
gateway (OPC UA subscription at 1 s, Modbus polled every ``--modbus-interval`` s as one uint16 tag per
register), which forwards to a *cloud* gateway (a sitewise-edge process acting as the SiteWise endpoint)
with the publisher's rate limits off (the endpoint has no quota) and its other settings at their defaults.

1. **Load** for ``--minutes``: values/s in (the edge store's accepted values), values/s forwarded
   (acknowledged), average values per request, CPU % of both gateway processes (user + system, of one
   core), the lag at the end (age of the oldest unsent value).
2. **Outage** of ``--outage-minutes``: the cloud gateway is stopped (SIGTERM) while the sources go on, then
   started again; the time from its return until the lag is under 10 s (the drain), values/s forwarded and
   values per request meanwhile.
3. **Count**: the sources stop; once the edge has sent everything, both gateways stop and both stores are
   read whole: values lost (in the edge, not in the cloud, by stream, timestamp and quality) and values
   received more than once (the at-least-once window: requests delivered whose answer was lost).

Targets: lag < 10 s at the end of the load, ≥ 90 values per request while a backlog exists, a 5-minute
backlog drained within 2 minutes, 0 lost. The table is printed at the end; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import duckdb  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from modbus import serve as modbus_serve  # noqa: E402
from opcua import node_id  # noqa: E402

from sitewise_edge.config import StorageConfig  # noqa: E402
from storage.store import Store  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Gateway:
    """``sitewise-edge run`` on a config file; started again on the same data directory and port."""

    def __init__(self, name: str, config: Path, port: int, root: Path = ROOT) -> None:
        """``root``: the source tree it runs (another one: a baseline to compare with)."""
        self.name, self.config, self.port, self.root = name, config, port, root
        self.proc: subprocess.Popen[str] | None = None
        self.cpu_before = 0.0  # CPU seconds of earlier runs of this gateway

    def start(self) -> None:
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
        self.proc = subprocess.Popen([sys.executable, "-m", "sitewise_edge", "--log-level", "warning", "run", "-c",
                                      str(self.config)], cwd=self.root, env=env, stdout=subprocess.PIPE,
                                     stderr=open(self.config.with_suffix(".log"), "a"), text=True)
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("Dashboard"):
                return
        raise SystemExit(f"the {self.name} gateway did not start: see {self.config.with_suffix('.log')}")

    def cpu(self) -> float:
        """CPU seconds (user + system) of every run so far."""
        if self.proc is None or self.proc.poll() is not None:
            return self.cpu_before
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rpartition(")")[2].split()
        return self.cpu_before + (int(fields[11]) + int(fields[12])) / TICKS

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=30) as r:
            return dict(json.loads(r.read()))

    def stop(self) -> None:
        if self.proc is None:
            return
        self.cpu_before = self.cpu()
        self.proc.terminate()
        try:
            self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
        self.proc = None


class Sample:
    def __init__(self, edge: Gateway, cloud: Gateway) -> None:
        h = edge.health()
        pub = h["publishers"]["cloud"]
        self.t = time.monotonic()
        self.accepted = int(h["store"]["valuesAccepted"])
        self.sent = int(pub["valuesSent"])
        self.requests = int(pub["requestsSent"])
        self.lag = pub["oldestUnsentAgeSeconds"]
        self.backlog = int(pub["backlogValuesInMemory"])
        self.edge_cpu, self.cloud_cpu = edge.cpu(), cloud.cpu()
        self.pub = pub


def per_value(r: dict[str, float]) -> str:
    """CPU µs per forwarded value of each process, from its CPU % and the forwarded rate."""
    if r["forwarded"] <= 0:
        return "-"
    return f"{r['edge_cpu'] * 1e4 / r['forwarded']:.0f} / {r['cloud_cpu'] * 1e4 / r['forwarded']:.0f}"


def rates(a: Sample, b: Sample) -> dict[str, float]:
    dt = b.t - a.t
    return {"in": (b.accepted - a.accepted) / dt, "forwarded": (b.sent - a.sent) / dt,
            "per_request": (b.sent - a.sent) / max(1, b.requests - a.requests),
            "edge_cpu": 100 * (b.edge_cpu - a.edge_cpu) / dt, "cloud_cpu": 100 * (b.cloud_cpu - a.cloud_cpu) / dt}


def watch(edge: Gateway, cloud: Gateway, seconds: float, every: float = 10.0) -> Iterator[Sample]:
    end = time.monotonic() + seconds
    while True:
        s = Sample(edge, cloud)
        yield s
        if s.t >= end:
            return
        time.sleep(min(every, max(0.0, end - time.monotonic())))


def distinct_values(data_dir: Path) -> tuple[int, int, duckdb.DuckDBPyRelation, duckdb.DuckDBPyConnection]:
    """(rows, distinct (stream, time, quality)) of a stopped gateway's store, and the distinct keys."""
    import asyncio

    async def read() -> pa.Table:
        store = Store(data_dir, StorageConfig(compact_interval="1h"))
        await store.open()
        try:
            snap = store.snapshot()
            parts = [Store.decode_file(pq.read_table(f)) for f in snap.files]
            parts.append(snap.resident_table())
            cols = ["stream", "time", "quality"]
            return pa.concat_tables([p.select(cols).cast(pa.schema([("stream", pa.string()),
                                                                     ("time", pa.timestamp("ns", "UTC")),
                                                                     ("quality", p.schema.field("quality").type)]))
                                     for p in parts if p.num_rows])
        finally:
            await store.close()

    table = asyncio.run(read())
    con = duckdb.connect()
    con.register("t", table)
    keys = con.sql("SELECT DISTINCT stream, time, quality FROM t")
    return table.num_rows, int(con.sql("SELECT count(*) FROM (SELECT DISTINCT stream, time, quality FROM t)")
                               .fetchall()[0][0]), keys, con


def configs(work: Path, opcua: str, modbus_port: int, args: argparse.Namespace) -> tuple[Gateway, Gateway]:
    cloud_port, edge_port = free_port(), free_port()
    cloud_cfg = work / "cloud.yaml"
    cloud_cfg.write_text(f"gateway: {{name: cloud, data_dir: {work / 'cloud'}}}\n"
                         f"api: {{host: 127.0.0.1, port: {cloud_port}}}\nmodels: []\n")
    nodes = [{"node_id": node_id(i), "alias": f"/opcua/v{i}"} for i in range(args.nodes)]
    tags = [{"alias": f"/modbus/r{a}", "table": "holding", "address": a, "type": "uint16"}
            for a in range(args.registers)]
    edge = {
        "gateway": {"name": "edge", "data_dir": str(work / "edge")},
        "api": {"host": "127.0.0.1", "port": edge_port},
        "models": [],
        "sources": [
            {"name": "opcua", "type": "opcua", "endpoint": opcua, "mode": "subscribe", "interval": "1s",
             "nodes": nodes},
            {"name": "plc", "type": "modbus", "host": "127.0.0.1", "port": modbus_port, "unit_id": 1,
             "interval": args.modbus_interval, "tags": tags},
        ],
        "publishers": [{"name": "cloud", "type": "sitewise", "region": "us-east-1",
                        "endpoint_url": f"http://127.0.0.1:{cloud_port}", "rate_limit_values": 0,
                        "rate_limit_requests": 0, "rate_limit_entries_per_property": 0,
                        "status_log_interval": "30s"}],
    }
    edge_cfg = work / "edge.yaml"
    edge_cfg.write_text(json.dumps(edge))  # JSON is YAML
    return Gateway("edge", edge_cfg, edge_port), Gateway("cloud", cloud_cfg, cloud_port)


@contextlib.contextmanager
def opcua_server(nodes: int) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "opcua.py"), "--serve", str(nodes), str(port)],
                            stdout=subprocess.PIPE, text=True)  # 10,000 nodes: ~12 s to build
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise SystemExit("the OPC UA server did not start")
        yield f"opc.tcp://127.0.0.1:{port}", proc
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.contextmanager
def modbus_server(registers: int) -> Iterator[tuple[int, multiprocessing.Process]]:
    recv, send = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.Process(target=modbus_serve, args=(registers, send), daemon=True)
    server.start()
    try:
        if not recv.poll(30):
            raise SystemExit("the Modbus server did not start within 30 s")
        yield int(recv.recv()), server
    finally:
        server.terminate()
        server.join(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the load phase")
    parser.add_argument("--outage-minutes", type=float, default=5.0, help="the endpoint's outage")
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--registers", type=int, default=10_000)
    parser.add_argument("--modbus-interval", type=float, default=0.8, help="poll period (s): 12,500 values/s")
    args = parser.parse_args()
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-fwd-") as tmp, opcua_server(args.nodes) as (opcua, opcua_proc), \
            modbus_server(args.registers) as (modbus_port, modbus_proc):
        work = Path(tmp)
        edge, cloud = configs(work, opcua, modbus_port, args)
        cloud.start()
        edge.start()
        try:
            log(f"load: {args.nodes:,} OPC UA nodes + {args.registers:,} Modbus registers for {args.minutes:g} min")
            time.sleep(30)  # subscriptions made, the first rounds in
            first = Sample(edge, cloud)
            last = first
            for s in watch(edge, cloud, args.minutes * 60):
                r = rates(last, s) if s.t > last.t else None
                if r:
                    log(f"in {r['in']:,.0f}/s forwarded {r['forwarded']:,.0f}/s {r['per_request']:.0f} values/request"
                        f" lag {s.lag}s edge CPU {r['edge_cpu']:.0f}% cloud CPU {r['cloud_cpu']:.0f}%"
                        f" load {os.getloadavg()[0]:.1f}")
                last = s
            load = rates(first, last)
            rows += [("values/s in (edge store)", f"{load['in']:,.0f}"),
                     ("values/s forwarded (acknowledged)", f"{load['forwarded']:,.0f}"),
                     ("forwarded / in", f"{load['forwarded'] / max(1.0, load['in']):.1%}"),
                     ("values per request (load)", f"{load['per_request']:.1f}"),
                     ("lag at the end of the load (s)", f"{last.lag if last.lag is not None else 0:.1f}"),
                     ("CPU % edge / cloud (load)", f"{load['edge_cpu']:.0f} / {load['cloud_cpu']:.0f}"),
                     ("CPU µs per value forwarded, edge / cloud (load)", per_value(load)),
                     ("in-flight limit / success rate", f"{last.pub.get('inFlightLimit')} / "
                                                        f"{last.pub.get('successRate')}")]
            if args.outage_minutes > 0:
                log(f"outage: the cloud gateway stops for {args.outage_minutes:g} min")
                cloud.stop()
                time.sleep(args.outage_minutes * 60)
                before = Sample(edge, cloud)
                log(f"outage over: lag {before.lag}s, {before.backlog:,} values waiting in memory; cloud restarts")
                cloud.start()
                back = time.monotonic()
                drained: float | None = None
                prev = Sample(edge, cloud)
                best = 0.0
                while time.monotonic() - back < max(600.0, 4 * args.outage_minutes * 60):
                    time.sleep(5)
                    s = Sample(edge, cloud)
                    r = rates(prev, s)
                    best = max(best, r["forwarded"])
                    log(f"drain: forwarded {r['forwarded']:,.0f}/s {r['per_request']:.0f} values/request lag "
                        f"{s.lag}s liveLane {s.pub.get('liveLane')} catch-up {s.pub.get('catchUpSeconds')}s "
                        f"in flight {s.pub.get('inFlightLimit')} load {os.getloadavg()[0]:.1f}")
                    prev = s
                    if s.lag is None or s.lag < 10:
                        drained = s.t - back
                        break
                d = rates(before, prev)
                rows += [("backlog after the outage (values, lag s)", f"{prev.sent - before.sent:,} sent in the drain, "
                                                                     f"lag {before.lag}"),
                         ("drain time after the endpoint returns (s)", "not drained" if drained is None
                          else f"{drained:.0f}"),
                         ("values/s forwarded in the drain (mean / best 5 s)", f"{d['forwarded']:,.0f} / {best:,.0f}"),
                         ("values per request (drain)", f"{d['per_request']:.1f}"),
                         ("CPU % edge / cloud (drain)", f"{d['edge_cpu']:.0f} / {d['cloud_cpu']:.0f}"),
                         ("CPU µs per value forwarded, edge / cloud (drain)", per_value(d))]
            log("count: the sources stop; waiting until the edge has sent everything")
            modbus_proc.terminate()
            opcua_proc.terminate()
            deadline = time.monotonic() + 900
            stable = 0
            prev_sent = -1
            while time.monotonic() < deadline:
                s = Sample(edge, cloud)
                stable = stable + 1 if s.sent == prev_sent and s.lag is None else 0
                prev_sent = s.sent
                if stable >= 3:
                    break
                time.sleep(5)
            rows.append(("edge at the stop: oldest unsent (s) / values sent", f"{s.lag} / {s.sent:,}"))
        finally:
            edge.stop()
            cloud.stop()
        edge_rows, edge_distinct, edge_keys, econ = distinct_values(work / "edge")
        cloud_rows, cloud_distinct, _, ccon = distinct_values(work / "cloud")
        ccon.register("e", edge_keys.to_arrow_table())
        lost = int(ccon.sql("SELECT count(*) FROM e ANTI JOIN (SELECT DISTINCT stream, time, quality FROM t) c "
                            "USING (stream, time, quality)").fetchall()[0][0])
        rows += [("values in the edge store / distinct", f"{edge_rows:,} / {edge_distinct:,}"),
                 ("values received by the cloud / distinct", f"{cloud_rows:,} / {cloud_distinct:,}"),
                 ("in the edge, not in the cloud (lost, or unsent at the stop)", f"{lost:,}"),
                 ("received more than once (at-least-once window)", f"{cloud_rows - cloud_distinct:,}")]
        del econ
    print(f"\nforwarding end to end: {args.nodes:,} OPC UA nodes + {args.registers:,} Modbus registers "
          f"(every {args.modbus_interval:g} s), {args.minutes:g} min load, {args.outage_minutes:g} min outage; "
          f"cloud = a second sitewise-edge gateway, rate limits off; {os.cpu_count()} cores, load average at the "
          f"end {os.getloadavg()[0]:.1f} / {os.getloadavg()[1]:.1f} / {os.getloadavg()[2]:.1f}")
    print("| figure | value |\n|---|---:|")
    for k, v in rows:
        print(f"| {k} | {v} |")


if __name__ == "__main__":
    main()
