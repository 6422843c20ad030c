"""The API's request path (issue 14): a real gateway process with SigV4 on, against a bare FastAPI route.

    .venv/bin/python benchmarks/api.py [--seconds 3] [--clients 1,16] [--profile]

Three targets, each on 127.0.0.1 with 1 and 16 concurrent clients (one keep-alive connection each):

- **constant**: a bare FastAPI app (same uvicorn, one process) whose route returns a constant
  GetAssetPropertyValue answer: the ceiling of FastAPI + uvicorn on this machine;
- **latest**: ``GetAssetPropertyValue`` of the gateway (``GET /properties/latest``), signed with SigV4 by
  botocore against a read-only key of ``api.access_keys`` (``api.auth: read``: every request is verified);
- **aggregates**: ``GetAssetPropertyAggregates`` over one day at 1-minute resolution (1,440 buckets of
  AVERAGE, COUNT, MAXIMUM, MINIMUM) of a stream holding one day at 1 Hz (86,400 values), signed the same way.

Each request is signed once by botocore's signer and replayed (a signature stays valid 15 minutes), so the
client spends its time on the wire, not on signing: the figures are the server's. The client is this
process (asyncio streams, raw HTTP/1.1), the servers are processes of their own. ``--profile`` runs the
gateway under cProfile for the latest-value cells and prints its top functions.

Targets (issue 14): latest p99 < 5 ms at 16 clients, and >= 50 % of the constant route's requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ROOT = Path(__file__).resolve().parent.parent
TEMP = "/plant1/line1/press1/temperature"
READER = ("BENCHREADER0000001", "bench-reader-secret-0123456789")
TOKEN = "bench-token-0123456789"
DAY = 86_400

CONSTANT_APP = """
import sys, uvicorn
from fastapi import FastAPI
app = FastAPI()
ANSWER = {"propertyValue": {"value": {"doubleValue": 66.6}, "timestamp": {"timeInSeconds": 1764676800,
          "offsetInNanos": 0}, "quality": "GOOD"}}
@app.get("/constant")
async def constant() -> dict:
    return ANSWER
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(port: int, path: str, proc: subprocess.Popen[bytes], within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server on port {port} exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing answers on port {port}")


def gateway_config(folder: Path, port: int) -> Path:
    path = folder / "gateway.yaml"
    path.write_text(json.dumps({
        "gateway": {"name": "bench", "data_dir": str(folder / "data")},
        "api": {"host": "127.0.0.1", "port": port, "auth": "read", "token": TOKEN,
                "access_keys": [{"id": READER[0], "secret": READER[1], "access": "read"}]},
        "models": [{"path": str(ROOT / "examples" / "models")}],
    }))
    return path


def load_one_day(port: int, end_s: int, connections: int = 8) -> None:
    """86,400 values at 1 Hz ending at ``end_s``, 100 a request (10 entries of 10), with the bearer token,
    over ``connections`` connections at once (each request waits for its fsync)."""
    from concurrent.futures import ThreadPoolExecutor

    start = end_s - DAY
    firsts = list(range(start, end_s, 100))
    with ThreadPoolExecutor(connections) as pool:
        list(pool.map(lambda k: _load(port, firsts[k::connections], end_s), range(connections)))


def _load(port: int, firsts: list[int], end_s: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for first in firsts:
        entries = [{"entryId": f"e{k}", "propertyAlias": TEMP, "propertyValues": [
            {"value": {"doubleValue": 60.0 + (t % 600) / 60.0}, "timestamp": {"timeInSeconds": t, "offsetInNanos": 0},
             "quality": "GOOD"} for t in range(first + 10 * k, min(first + 10 * k + 10, end_s))]}
            for k in range(10) if first + 10 * k < end_s]
        conn.request("POST", "/properties", json.dumps({"entries": entries}),
                     {"content-type": "application/json", "authorization": f"Bearer {TOKEN}"})
        answer = conn.getresponse()
        body = answer.read()
        if answer.status != 200 or json.loads(body)["errorEntries"]:
            raise SystemExit(f"loading failed: {answer.status} {body[:300]!r}")


def signed_request(port: int, path_and_query: str) -> bytes:
    """The raw HTTP/1.1 request, signed by botocore (SigV4, region edge) with the read-only key."""
    url = f"http://127.0.0.1:{port}{path_and_query}"
    request = AWSRequest(method="GET", url=url, headers={})
    SigV4Auth(Credentials(*READER), "iotsitewise", "edge").add_auth(request)
    headers = "".join(f"{k}: {v}\r\n" for k, v in request.headers.items())
    return f"GET {path_and_query} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n{headers}\r\n".encode()


async def one_client(port: int, request: bytes, until: float, latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < until:
            t0 = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise SystemExit(f"not 200: {head[:200]!r}")
            at = head.lower().find(b"content-length:")
            length = int(head[at + 15:head.find(b"\r\n", at)])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
    finally:
        writer.close()
        await writer.wait_closed()


async def measure(port: int, request: bytes, clients: int, seconds: float) -> dict[str, float]:
    warm: list[float] = []
    await asyncio.gather(*(one_client(port, request, time.perf_counter() + 0.5, warm) for _ in range(clients)))
    latencies: list[float] = []
    started = time.perf_counter()
    until = started + seconds
    await asyncio.gather(*(one_client(port, request, until, latencies) for _ in range(clients)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {"rps": len(latencies) / elapsed, "p50": statistics.median(latencies) * 1e3,
            "p99": latencies[int(len(latencies) * 0.99) - 1] * 1e3}


def start(args: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def stop(proc: subprocess.Popen[bytes]) -> str:
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err.decode(errors="replace")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settle(pid: int, within: float = 300.0, idle_share: float = 0.05) -> float:
    """Wait until the process uses under ``idle_share`` of a core over a second (a gateway that has loaded a
    day recomputes the metric windows the late values touched first). Returns the seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < within:
        before = cpu_seconds(pid)
        time.sleep(1.0)
        if cpu_seconds(pid) - before < idle_share:
            break
    return time.monotonic() - t0


class Gateway:
    """A gateway process from a source tree, loaded with one day of one stream, its two requests signed."""

    def __init__(self, tree: Path, folder: Path, label: str, profile: bool = False) -> None:
        self.label = label
        self.port = free_port()
        config = gateway_config(folder, self.port)
        self.profile = folder / "gateway.prof"
        command = [sys.executable, "-m", "sitewise_edge", "--log-level", "warning", "run", "-c", str(config)]
        if profile:
            command = [sys.executable, "-m", "cProfile", "-o", str(self.profile), "-m", "sitewise_edge", "run",
                       "-c", str(config)]
        self.proc = start(command, env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(tree)}, cwd=tree)

    def load(self) -> None:
        wait_for(self.port, "/health", self.proc)
        end = int(time.time()) - 60
        t0 = time.perf_counter()
        load_one_day(self.port, end)
        print(f"{self.label}: loaded 86,400 values (one day at 1 Hz) in {time.perf_counter() - t0:.1f} s",
              file=sys.stderr)
        alias = "%2Fplant1%2Fline1%2Fpress1%2Ftemperature"
        self.latest = signed_request(self.port, f"/properties/latest?propertyAlias={alias}")
        self.aggregates = signed_request(self.port, (
            f"/properties/aggregates?aggregateTypes=AVERAGE&aggregateTypes=COUNT&aggregateTypes=MAXIMUM"
            f"&aggregateTypes=MINIMUM&endDate={end}&maxResults=2500&propertyAlias={alias}"
            f"&resolution=1m&startDate={end - DAY}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per cell (default 3)")
    parser.add_argument("--clients", default="1,16")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every cell, interleaved (default 3): "
                        "the table shows each cell's median round")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another source tree (git archive <commit> | tar -x -C DIR): its gateway is measured "
                        "in the same rounds, as 'before'")
    parser.add_argument("--no-settle", action="store_true", help="measure at once after loading (the metric "
                        "windows the loaded day touched are still being recomputed)")
    parser.add_argument("--targets", default="latest,aggregates", help="the gateway's cells (default both)")
    parser.add_argument("--profile", action="store_true", help="profile the gateway's requests (cProfile)")
    args = parser.parse_args()
    concurrency = [int(c) for c in args.clients.split(",")]

    constant_port = free_port()
    rounds: dict[tuple[str, int], list[dict[str, float]]] = {}
    constant = start([sys.executable, "-c", CONSTANT_APP, str(constant_port)])
    gateways: list[Gateway] = []
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        try:
            wait_for(constant_port, "/constant", constant)
            trees = [("", ROOT)] + ([(" (before)", args.baseline.resolve())] if args.baseline else [])
            for suffix, tree in trees:
                folder = Path(tmp) / f"gw{len(gateways)}"
                folder.mkdir()
                gateways.append(Gateway(tree, folder, suffix.strip(" ()") or "this tree", args.profile))
            for gw in gateways:
                gw.load()
            if not args.no_settle:
                for gw in gateways:
                    print(f"{gw.label}: settled after {settle(gw.proc.pid):.0f} s", file=sys.stderr)
            constant_request = f"GET /constant HTTP/1.1\r\nhost: 127.0.0.1:{constant_port}\r\n\r\n".encode()
            cells: list[tuple[str, int, bytes]] = [("constant", constant_port, constant_request)]
            for name in args.targets.split(","):
                for gw, (suffix, _) in zip(gateways, trees, strict=True):
                    cells.append((name + suffix, gw.port, getattr(gw, name)))
            for _ in range(args.rounds):  # interleaved: a change of the machine's load hits every cell alike
                for n in concurrency:
                    for name, port, request in cells:
                        rounds.setdefault((name, n), []).append(asyncio.run(measure(port, request, n, args.seconds)))
        finally:
            stop(constant)
            for gw in gateways:
                err = stop(gw.proc)
                if err.strip():
                    print(f"{gw.label}: {err[-2000:]}", file=sys.stderr)
        if args.profile:
            import pstats

            for gw in gateways:
                if gw.profile.exists():
                    print(f"\n{gw.label}:")
                    pstats.Stats(str(gw.profile)).sort_stats("tottime").print_stats(35)

    results = {key: sorted(runs, key=lambda r: r["rps"])[len(runs) // 2] for key, runs in rounds.items()}
    load = os.getloadavg()
    print(f"\nAPI request path, {args.rounds} rounds of {args.seconds:g} s a cell (median round), SigV4 verified "
          f"on every gateway request ({os.cpu_count()} CPUs; client and servers on one machine; load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f})\n")
    print("| target | clients | requests/s | p50 ms | p99 ms | of constant's req/s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for (name, n), r in sorted(results.items(), key=lambda kv: (kv[0][0].split(" ")[0] != "constant",
                                                                 kv[0][0], kv[0][1])):
        ratio = r["rps"] / results[("constant", n)]["rps"]
        print(f"| {name} | {n} | {r['rps']:,.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {ratio:.0%} |")
    latest16 = results.get(("latest", max(concurrency)))
    if latest16:
        ratio = latest16["rps"] / results[("constant", max(concurrency))]["rps"]
        print(f"\ntargets at {max(concurrency)} clients: latest p99 {latest16['p99']:.2f} ms (< 5 ms: "
              f"{'met' if latest16['p99'] < 5 else 'NOT met'}), {ratio:.0%} of constant (>= 50 %: "
              f"{'met' if ratio >= 0.5 else 'NOT met'})")


if __name__ == "__main__":
    main()
