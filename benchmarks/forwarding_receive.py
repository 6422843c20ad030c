"""What a sitewise-edge gateway takes as a SiteWise endpoint (issue 16): BatchPut requests/s from senders.

    .venv/bin/python benchmarks/forwarding_receive.py [--senders 1 4 16] [--seconds 10] [--streams 2000]
                                                      [--profile out.txt] [--baseline DIR]

A gateway process (``sitewise-edge run``, no sources, no models) and, in this process, ``--senders``
threads each sending full ``BatchPutAssetPropertyValue`` requests (10 entries × 10 values, the
publisher's own client: body encoded at once, validation off) one after the other for ``--seconds``:
requests/s, values/s, the mean latency of a request, and the CPU % of the gateway and of the senders
(user + system, of one core). ``--profile``: py-spy (``pip install py-spy``) samples the gateway during
the largest sender count and writes its top functions (by own time, and by total time) there.
``--baseline DIR``: the same rows with a gateway run from another source tree (``git archive main | tar -x -C
DIR``), one after the other, and the ratio of the gateway's CPU per request (ours / baseline).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import pyarrow as pa  # noqa: E402
from forwarding_e2e import TICKS, Gateway, free_port  # noqa: E402

from sitewise_edge.config import SitewisePublisher  # noqa: E402
from sitewise_edge.publish.clients import sitewise_client  # noqa: E402
from sitewise_edge.publish.requests import build_requests  # noqa: E402
from sitewise_edge.samples import from_columns  # noqa: E402


def requests_of(streams: int, rounds: int, start_ns: int) -> list[list[dict[str, Any]]]:
    """Full requests: ``rounds`` values of each of ``streams`` streams, 1 s apart."""
    names = [f"/recv/s{i}" for i in range(streams)] * rounds
    times = [start_ns + (k // streams) * 10**9 + k % streams for k in range(streams * rounds)]
    batch = from_columns(names, times, double=[float(k) for k in range(streams * rounds)])
    return [r for lane in build_requests(pa.Table.from_batches([batch])) for r in lane]


def run(gateway: Gateway, senders: int, seconds: float, streams: int) -> dict[str, float]:
    cfg = SitewisePublisher(name="bench", type="sitewise", region="us-east-1",
                            endpoint_url=f"http://127.0.0.1:{gateway.port}")
    start_ns = time.time_ns() - 3600 * 10**9 + senders * 10**12 % (600 * 10**9)
    counts = [0] * senders
    latency = [0.0] * senders
    stop = threading.Event()

    def send(i: int) -> None:
        client = sitewise_client(cfg)
        reqs = requests_of(streams, 10, start_ns + i * 10**6)
        k = 0
        while not stop.is_set():
            t = time.perf_counter()
            client.batch_put_asset_property_value(entries=reqs[k % len(reqs)], enablePartialEntryProcessing=True)
            latency[i] += time.perf_counter() - t
            counts[i] += 1
            k += 1

    threads = [threading.Thread(target=send, args=(i,)) for i in range(senders)]
    for t in threads:
        t.start()
    time.sleep(2)  # clients made, connections open
    c0, g0, s0, w0 = sum(counts), gateway.cpu(), time.process_time(), time.perf_counter()
    l0 = sum(latency)
    time.sleep(seconds)
    c1, g1, s1, w1 = sum(counts), gateway.cpu(), time.process_time(), time.perf_counter()
    l1 = sum(latency)
    stop.set()
    for t in threads:
        t.join()
    n, dt = c1 - c0, w1 - w0
    return {"requests": n / dt, "values": 100 * n / dt, "latency_ms": 1000 * (l1 - l0) / max(1, n),
            "gateway_cpu": 100 * (g1 - g0) / dt, "senders_cpu": 100 * (s1 - s0) / dt,
            "gateway_ms": 1000 * (g1 - g0) / max(1, n)}


def profile(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    spy = Path(sys.executable).with_name("py-spy")
    return subprocess.Popen([str(spy), "record", "--pid", str(pid), "--duration", str(int(seconds)), "--format",
                             "raw", "--output", str(out), "--nonblocking"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def top(raw: Path, n: int = 25) -> str:
    """Collapsed stacks -> the functions with the most samples, own and total."""
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        c = int(count)
        samples += c
        frames = stack.split(";")
        own[frames[-1]] = own.get(frames[-1], 0) + c
        for f in set(frames):
            total[f] = total.get(f, 0) + c
    lines = [f"{samples} samples", "own:"]
    lines += [f"  {100 * c / samples:5.1f}%  {f}" for f, c in sorted(own.items(), key=lambda x: -x[1])[:n]]
    lines.append("total:")
    lines += [f"  {100 * c / samples:5.1f}%  {f}" for f, c in sorted(total.items(), key=lambda x: -x[1])[:n]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--senders", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--profile", type=Path, default=None)
    parser.add_argument("--baseline", type=Path, default=None, help="another source tree to compare with")
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    trees = [("ours", ROOT)] + ([("baseline", args.baseline.resolve())] if args.baseline else [])
    rows: list[tuple[str, int, dict[str, float]]] = []
    for label, root in trees:
        rows += [(label, senders, r) for senders, r in measure(root, args)]
    print(f"\nBatchPut into a sitewise-edge gateway: 10 entries x 10 values per request, {args.seconds:g} s per row; "
          f"{os.cpu_count()} cores (clock ticks {TICKS}/s), load average {os.getloadavg()[0]:.1f}")
    print("| gateway | senders | requests/s | values/s | latency ms | gateway CPU % | gateway CPU ms/request |"
          " senders CPU % |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, senders, r in rows:
        print(f"| {label} | {senders} | {r['requests']:,.0f} | {r['values']:,.0f} | {r['latency_ms']:.1f} | "
              f"{r['gateway_cpu']:.0f} | {r['gateway_ms']:.2f} | {r['senders_cpu']:.0f} |")
    if args.baseline:
        base = {s: r for label, s, r in rows if label == "baseline"}
        for label, senders, r in rows:
            if label == "ours":
                b = base[senders]
                print(f"senders {senders}: gateway CPU per request {r['gateway_ms'] / b['gateway_ms']:.2f}x "
                      f"the baseline's, requests/s {r['requests'] / b['requests']:.2f}x")


def measure(root: Path, args: argparse.Namespace) -> list[tuple[int, dict[str, float]]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-recv-") as tmp:
        work = Path(tmp)
        port = free_port()
        cfg = work / "cloud.yaml"
        cfg.write_text(f"gateway: {{name: cloud, data_dir: {work / 'cloud'}}}\n"
                       f"api: {{host: 127.0.0.1, port: {port}}}\nmodels: []\n")
        gateway = Gateway("cloud", cfg, port, root)
        gateway.start()
        try:
            for senders in args.senders:
                spy = None
                if args.profile is not None and senders == max(args.senders) and root == ROOT:
                    assert gateway.proc is not None
                    spy = profile(gateway.proc.pid, args.seconds + 2, work / "raw.txt")
                rows.append((senders, run(gateway, senders, args.seconds, args.streams)))
                if spy is not None:
                    spy.wait(60)
                    args.profile.write_text(top(work / "raw.txt"))
        finally:
            gateway.stop()
    return rows


if __name__ == "__main__":
    main()
