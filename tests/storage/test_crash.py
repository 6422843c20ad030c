"""kill -9 of a writing gateway at random moments: every acknowledged value is there after a restart."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.conftest import ROOT, ended, free_port

ALIASES = [f"/crash/s{i}" for i in range(5)]


def start(cfg: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "sitewise_edge", "--log-level", "warning", "run", "-c", str(cfg)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("Dashboard:"), proc.stderr.read() if proc.stderr else line
    return proc


def writer(port: int, first_second: int, acked: list[tuple[str, int]], stop: threading.Event) -> None:
    """Post entries until the gateway dies; remember what it acknowledged."""
    t = first_second
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
        while not stop.is_set():
            entries = [{"entryId": f"e{i}", "propertyAlias": a, "propertyValues": [
                {"value": {"doubleValue": float(t + k)}, "timestamp": {"timeInSeconds": t + k}} for k in range(10)]}
                for i, a in enumerate(ALIASES)]
            try:
                r = http.post("/properties", json={"entries": entries})
            except httpx.HTTPError:
                return
            if r.status_code == 200 and r.json() == {"errorEntries": []}:
                acked += [(a, t + k) for a in ALIASES for k in range(10)]
            t += 10


def test_acknowledged_values_survive_kill_9(tmp_path: Path) -> None:
    rng = random.Random(7)
    port = free_port()
    cfg = tmp_path / "gw.yaml"
    # a small segment and a short compaction interval so kills also land during rolls and compactions
    cfg.write_text(f"gateway: {{name: crash, data_dir: {tmp_path / 'data'}}}\napi: {{port: {port}}}\n"
                   "storage: {segment_size: 64KiB, compact_interval: 300ms}\n")
    acked: list[tuple[str, int]] = []
    first = int(time.time()) - 86400  # within retention
    for _round in range(4):
        proc = start(cfg)
        stop = threading.Event()
        thread = threading.Thread(target=writer, args=(port, first, acked, stop))
        thread.start()
        time.sleep(rng.uniform(0.3, 1.2))  # the random moment of the crash is the point of this test
        proc.send_signal(signal.SIGKILL)
        ended(proc)
        stop.set()
        thread.join()
        first += 10_000
    assert len(acked) > 500
    proc = start(cfg)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            for alias in ALIASES:
                stored: set[int] = set()
                token = None
                while True:
                    params = {"propertyAlias": alias, "startDate": "0", "endDate": "2000000000", "maxResults": "20000"}
                    if token:
                        params["nextToken"] = token
                    page = http.get("/properties/history", params=params).json()
                    stored |= {v["timestamp"]["timeInSeconds"] for v in page["assetPropertyValueHistory"]}
                    token = page.get("nextToken")
                    if not token:
                        break
                expected = {t for a, t in acked if a == alias}
                missing = expected - stored
                assert not missing, f"{alias}: {len(missing)} acknowledged values lost, e.g. {sorted(missing)[:5]}"
    finally:
        proc.send_signal(signal.SIGTERM)
        ended(proc, 15)
