"""The API under hostile or unlucky use (issue 9): what a client sees of a real gateway process.

    .venv/bin/python benchmarks/hostile.py [--baseline DIR] [--requests 300] [--puts 100]

1. Single-client latency of GetAssetPropertyValue (boto3, one connection kept alive): without TCP_NODELAY
   on the accepted socket a response waits for the client's delayed ACK (~40 ms).
2. BatchPut latency (one value a request, one client) alone and while 8 clients run slow ExecuteQuery
   statements (a 4-way cross join of the store that runs until the query timeout): queries on the shared
   worker threads stall ingest; on their own threads ingest latency must not move.
3. A 300 MB request body (with Content-Length, sent in 1 MiB chunks): the gateway's peak RSS growth.
4. The issue's query ``SELECT len(generate_series(1, 100000000))``: the answer and the RSS growth.

``--baseline DIR``: the same figures for another source tree (e.g. ``git archive <commit> | tar -x -C DIR``)
side by side, "before" against "after". Section 4 is skipped for the baseline: there it takes the
process to ~7 GiB (a 64 s, 7.0 GiB peak in a bare DuckDB with memory_limit 256 MB, measured).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import botocore.exceptions

ROOT = Path(__file__).resolve().parent.parent
TEMP = "/plant1/line1/press1/temperature"
SLOW = ("SELECT count(*) FROM raw_time_series a, raw_time_series b, raw_time_series c, raw_time_series d "
        "WHERE a.double_value + b.double_value + c.double_value + d.double_value = -1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class GatewayProcess:
    """``sitewise-edge run`` from a source tree, on a free port, with the example asset models."""

    def __init__(self, tree: Path, workdir: Path) -> None:
        self.port = free_port()
        config = workdir / "gateway.yaml"
        config.write_text(f"gateway: {{name: bench, data_dir: {workdir / 'data'}}}\n"
                          f"api: {{host: 127.0.0.1, port: {self.port}}}\n"
                          f"models: [{{path: {ROOT / 'examples' / 'models'}}}]\n"
                          "storage: {compact_interval: 1h}\n")
        env = {**os.environ, "PYTHONPATH": str(tree)}
        self.proc = subprocess.Popen([sys.executable, "-m", "sitewise_edge", "run", "-c", str(config)], cwd=tree,
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("Dashboard:"):
                break
        else:
            raise SystemExit(f"the gateway from {tree} did not start")

    def memory(self, field: str) -> int:
        """VmRSS or VmHWM of the process, in bytes."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(field)

    def reset_peak(self) -> None:
        Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS

    def client(self) -> Any:
        return boto3.client("iotsitewise", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{self.port}",
                            aws_access_key_id="bench", aws_secret_access_key="bench",
                            config=botocore.config.Config(inject_host_prefix=False, retries={"max_attempts": 1},
                                                          read_timeout=120, max_pool_connections=16))

    def stop(self) -> None:
        """SIGTERM (the gateway drains), SIGKILL past 30 s; communicate() closes the pipe."""
        self.proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.communicate(timeout=30)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def put(client: Any, t_ns: int, value: float) -> float:
    """One BatchPut of one value; its latency in seconds."""
    start = time.perf_counter()
    client.batch_put_asset_property_value(entries=[{"entryId": "e", "propertyAlias": TEMP, "propertyValues": [
        {"value": {"doubleValue": value}, "timestamp": {"timeInSeconds": t_ns // 10**9, "offsetInNanos": t_ns % 10**9},
         "quality": "GOOD"}]}])
    return time.perf_counter() - start


def latency_figures(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {"p50_ms": 1000 * statistics.median(samples), "p99_ms": 1000 * samples[int(0.99 * (len(samples) - 1))],
            "max_ms": 1000 * samples[-1], "n": len(samples)}


def get_latency(gw: GatewayProcess, n: int) -> dict[str, float]:
    client = gw.client()
    client.get_asset_property_value(propertyAlias=TEMP)  # connect
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        client.get_asset_property_value(propertyAlias=TEMP)
        samples.append(time.perf_counter() - start)
    figures = latency_figures(samples)
    figures["req_per_s"] = n / sum(samples)
    return figures


def ingest_under_queries(gw: GatewayProcess, puts: int, budget_s: float = 45.0) -> tuple[dict[str, float],
                                                                                          dict[str, float]]:
    client = gw.client()
    now = time.time_ns() - 10**9 * 3600
    for i in range(60):  # 600 values to cross-join
        client.batch_put_asset_property_value(entries=[{"entryId": f"e{j}", "propertyAlias": TEMP, "propertyValues": [
            {"value": {"doubleValue": float(i * 10 + j)}, "timestamp": {"timeInSeconds": now // 10**9 + i * 10 + j,
                                                                        "offsetInNanos": 0}}]}
            for j in range(10)])
    alone = [put(client, time.time_ns() - 10**9, float(i)) for i in range(puts)]
    stop = threading.Event()

    def query_loop() -> None:
        c = gw.client()
        while not stop.is_set():
            try:
                c.execute_query(queryStatement=SLOW)
            except botocore.exceptions.ClientError:
                pass

    threads = [threading.Thread(target=query_loop, daemon=True) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # the queries are running
    loaded: list[float] = []
    deadline = time.monotonic() + budget_s
    while len(loaded) < puts and time.monotonic() < deadline:
        loaded.append(put(client, time.time_ns() - 10**9, float(len(loaded))))
    stop.set()
    return latency_figures(alone), latency_figures(loaded)


def big_body(gw: GatewayProcess, size: int = 300 * 10**6) -> dict[str, Any]:
    gw.reset_peak()
    before = gw.memory("VmRSS")
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=120)
    conn.putrequest("POST", "/properties")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(size))
    conn.endheaders()
    chunk = b" " * 2**20
    sent = 0
    start = time.perf_counter()
    try:
        while sent < size:
            conn.send(chunk[: size - sent])
            sent += min(len(chunk), size - sent)
        status = conn.getresponse().status
    except OSError:  # the gateway answered and closed while the client was still sending
        status = -1
        try:
            status = conn.getresponse().status
        except (OSError, http.client.HTTPException):
            pass
    elapsed = time.perf_counter() - start
    conn.close()
    return {"status": status, "rss_before_mib": before / 2**20, "peak_mib": gw.memory("VmHWM") / 2**20,
            "growth_mib": (gw.memory("VmHWM") - before) / 2**20, "sent_mb": sent / 1e6, "s": elapsed}


def issue_query(gw: GatewayProcess) -> dict[str, Any]:
    gw.reset_peak()
    before = gw.memory("VmRSS")
    start = time.perf_counter()
    try:
        gw.client().execute_query(queryStatement="SELECT len(generate_series(1, 100000000))")
        answer = "rows"
    except botocore.exceptions.ClientError as exc:
        answer = exc.response["Error"]["Code"]
    return {"answer": answer, "growth_mib": (gw.memory("VmHWM") - before) / 2**20,
            "ms": 1000 * (time.perf_counter() - start), "alive": gw.proc.poll() is None}


def measure(tree: Path, args: argparse.Namespace, hostile_query: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        gw = GatewayProcess(tree, Path(tmp))
        try:
            out: dict[str, Any] = {"get": get_latency(gw, args.requests)}
            out["put_alone"], out["put_queries"] = ingest_under_queries(gw, args.puts)
            out["body"] = big_body(gw)
            if hostile_query:
                out["query"] = issue_query(gw)
            return out
        finally:
            gw.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, default=None, help="another source tree to compare with")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--puts", type=int, default=100)
    args = parser.parse_args()
    runs = {}
    if args.baseline:
        runs["before"] = measure(args.baseline.resolve(), args, hostile_query=False)
    runs["after"] = measure(ROOT, args, hostile_query=True)
    names = list(runs)

    def row(label: str, get: Any, fmt: str = "{:.1f}") -> None:
        cells = []
        for n in names:
            try:
                cells.append(fmt.format(get(runs[n])))
            except KeyError:
                cells.append("-")
        ratio = ""
        if len(names) == 2 and all(c != "-" for c in cells):
            a, b = get(runs["before"]), get(runs["after"])
            ratio = f"{a / b:.1f}x" if isinstance(a, float) and b else ""
        print(f"| {label} | " + " | ".join(cells) + f" | {ratio} |")

    print("| figure | " + " | ".join(names) + " | before/after |")
    print("| --- |" + " --- |" * len(names) + " --- |")
    row("GetAssetPropertyValue p50, one client (ms)", lambda r: r["get"]["p50_ms"], "{:.2f}")
    row("GetAssetPropertyValue requests/s, one client", lambda r: r["get"]["req_per_s"], "{:.0f}")
    row("BatchPut p50 alone (ms)", lambda r: r["put_alone"]["p50_ms"], "{:.2f}")
    row("BatchPut p99 alone (ms)", lambda r: r["put_alone"]["p99_ms"], "{:.2f}")
    row("BatchPut p50, 8 slow queries running (ms)", lambda r: r["put_queries"]["p50_ms"], "{:.2f}")
    row("BatchPut p99, 8 slow queries running (ms)", lambda r: r["put_queries"]["p99_ms"], "{:.2f}")
    row("BatchPut max, 8 slow queries running (ms)", lambda r: r["put_queries"]["max_ms"], "{:.0f}")
    row("BatchPuts done in the loaded window (of --puts, 45 s budget)", lambda r: r["put_queries"]["n"], "{:.0f}")
    row("300 MB body: HTTP status", lambda r: r["body"]["status"], "{}")
    row("300 MB body: peak RSS growth (MiB)", lambda r: r["body"]["growth_mib"], "{:.0f}")
    row("300 MB body: peak RSS (MiB)", lambda r: r["body"]["peak_mib"], "{:.0f}")
    row("issue query: answer", lambda r: r["query"]["answer"], "{}")
    row("issue query: peak RSS growth (MiB)", lambda r: r["query"]["growth_mib"], "{:.0f}")
    row("issue query: gateway alive after", lambda r: r["query"]["alive"], "{}")
    print()
    print(json.dumps(runs, indent=1, default=str), file=sys.stderr)


if __name__ == "__main__":
    main()
