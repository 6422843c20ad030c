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

from storage import wal
from tests.conftest import ROOT, ended, free_port

ALIASES = [f"/crash/s{i}" for i in range(5)]


def start(cfg: Path) -> subprocess.Popen[str]:
    """A gateway process on ``cfg``, once it listens (its log, warnings and up, on a pipe nobody reads: keep it
    short)."""
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


def history_seconds(http: httpx.Client, alias: str) -> set[int]:
    page = http.get("/properties/history", params={"propertyAlias": alias, "startDate": "0",
                                                   "endDate": "2000000000", "maxResults": "20000"}).json()
    assert "nextToken" not in page
    return {v["timestamp"]["timeInSeconds"] for v in page["assetPropertyValueHistory"]}


def put(http: httpx.Client, first: int, n: int) -> None:
    for t in range(first, first + n):
        r = http.post("/properties", json={"entries": [{"entryId": "e", "propertyAlias": "/crash/d", "propertyValues": [
            {"value": {"doubleValue": float(t)}, "timestamp": {"timeInSeconds": t}}]}]})
        assert r.status_code == 200 and r.json() == {"errorEntries": []}


def test_damage_in_the_middle_of_the_wal_costs_one_record_across_kill_9_restarts(tmp_path: Path) -> None:
    """A flipped byte in an acknowledged frame: the gateway reports exactly that record in /health, keeps every
    value after it, and later kill -9 and restarts lose nothing more nor count the damage again."""
    port = free_port()
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(f"gateway: {{name: damage, data_dir: {tmp_path / 'data'}}}\napi: {{port: {port}}}\n"
                   "storage: {compact_interval: 1h}\n")
    first = int(time.time()) - 3600
    proc = start(cfg)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        put(http, first, 20)  # one frame per value
    proc.send_signal(signal.SIGKILL)
    ended(proc)
    [seg] = sorted((tmp_path / "data" / "wal").glob("*.wal"))
    frames = [f for f in wal.scan(seg) if isinstance(f, wal.Frame)]
    victim = frames[7]
    lost_second = int(wal.decode_batch(victim.payload).column("time").cast("int64")[0].as_py() // 10**9)
    data = bytearray(seg.read_bytes())
    data[victim.offset + wal.FRAME_OVERHEAD + len(victim.payload) - 20] ^= 0x55  # in the values: metadata reads
    seg.write_bytes(bytes(data))
    acked = set(range(first, first + 20))
    for cycle in range(3):
        proc = start(cfg)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
                damage = http.get("/health").json()["store"]["walDamage"]
                assert [damage[k] for k in ("places", "recordsLost", "valuesLost", "exact")] == [1, 1, 1, True]
                assert history_seconds(http, "/crash/d") == acked - {lost_second}
                put(http, first + 100 * (cycle + 1), 10)
                acked |= set(range(first + 100 * (cycle + 1), first + 100 * (cycle + 1) + 10))
        finally:
            proc.send_signal(signal.SIGKILL)
            ended(proc)
    assert len(list((tmp_path / "data" / "quarantine").glob("*.bin"))) == 1
