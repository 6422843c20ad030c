"""The historian side by side with InfluxDB 1.x: ingest, bytes per value, query latency.

    .venv/bin/python benchmarks/historian.py [--streams 1000] [--hours 24] [--flavour exact|jitter|both]
                                             [--jitter-resolution ms|100ns|both] [--skip-influx]

A plant of ``--streams`` data streams at 1 Hz (see :class:`Plant` for the mix of signals), in time-ordered
batches of ``--batch-seconds`` seconds of every stream, as a gateway receives them from its pollers. Two
timestamp flavours: exact ticks (a polled Modbus device stamped by the gateway) and source timestamps with
uniform +-20 ms jitter (an OPC UA server), at 1 ms resolution by default or at 100 ns (OPC UA DateTime ticks).

sitewise-edge: every batch through ``Store.append`` (WAL frame + fsync, the gateway's own write path), then
``Store.compact``; bytes are the Parquet files; queries through ``Store.reader()``.
InfluxDB 1.x (the Debian package, installed with apt-get if ``influxd`` is missing): a private ``influxd`` on
127.0.0.1, the same values as line protocol over HTTP by 4 concurrent writers in requests of one batch each,
the cache compacted to TSM before its directories are measured, the same four questions in InfluxQL.

One file on purpose (about 780 lines): a benchmark is copied and run as one command, and the plant generator,
both systems' runs and the report are read side by side; nothing here is imported by the project.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import http.client
import json
import logging
import mmap
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sitewise_edge.config import StorageConfig  # noqa: E402
from sitewise_edge.samples import from_columns  # noqa: E402
from storage.store import Store  # noqa: E402

NS = 1_000_000_000
MINUTE_NS = 60 * NS
HOUR_NS = 3600 * NS
CHUNK_S = 600  # the generator works in 10-minute chunks; the values depend on it, so it is fixed
SEED = 20240611
WRITERS = 4
GORILLA_BYTES = 1.37

# (kind, share of the streams, value column, InfluxDB measurement)
KINDS: tuple[tuple[str, float, str], ...] = (
    ("analog_cent", 0.30, "double"),  # engineering units rounded to 0.01 by the PLC or the OPC UA server
    ("analog_adc", 0.30, "double"),  # a 16-bit ADC count scaled in the PLC as a float32 REAL: count * step + low
    ("counter", 0.15, "integer"),  # monotonic totalisers: parts, energy in Wh
    ("state", 0.10, "integer"),  # machine state / alarm codes 0..7, changing every 5-60 min
    ("flag", 0.10, "boolean"),  # running / fault bits, toggling every 1 min - 2 h
    ("constant", 0.04, "double"),  # set points and configuration tags that never change
    ("text", 0.01, "string"),  # recipe and mode names, changing every ~2 h
)
TAGS = {
    "analog_cent": ("temperature", "pressure", "flow", "level", "speed"),
    "analog_adc": ("current", "vibration", "torque", "humidity", "position"),
    "counter": ("parts_total", "energy_wh"),
    "state": ("state", "alarm_code"),
    "flag": ("running", "fault"),
    "constant": ("setpoint", "limit_high"),
    "text": ("recipe", "mode"),
}
MODES = np.array(["AUTO", "MANUAL", "SETUP", "CLEANING", "RECIPE-A12", "RECIPE-B07", "RECIPE-C33", "IDLE"])


def progress(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- the dataset -----------------------------------------------------------------------------------------------


class Plant:
    """A deterministic plant: the same seed and stream count give the same values, chunk after chunk.

    Timestamps come from a separate generator, so every flavour carries exactly the same values.
    """

    def __init__(self, streams: int, start_ns: int, flavour: str) -> None:
        self.streams = streams
        self.start_ns = start_ns
        self.flavour = flavour
        rng = np.random.default_rng(SEED)
        counts = [round(share * streams) for _, share, _ in KINDS]
        counts[0] += streams - sum(counts)
        kinds = np.repeat(np.arange(len(KINDS)), counts)
        self.kind = kinds[rng.permutation(streams)]  # kinds interleaved along the stream list, as on real machines
        tags = [TAGS[KINDS[k][0]] for k in self.kind]
        self.names = np.array([f"/plant1/line{i // 50:02d}/machine{(i // 10) % 5:02d}/{t[i % len(t)]}_{i:04d}"
                               for i, t in enumerate(tags)])
        self.members = {name: np.flatnonzero(self.kind == k) for k, (name, _, _) in enumerate(KINDS)}
        self.column_of_stream = np.array([KINDS[k][2] for k in self.kind])
        # per-stream parameters
        a = len(self.members["analog_cent"]) + len(self.members["analog_adc"])
        self.analog = np.concatenate([self.members["analog_cent"], self.members["analog_adc"]])
        self.n_cent = len(self.members["analog_cent"])
        self.span = rng.uniform(10, 1000, a)
        self.low = np.where(rng.random(a) < 0.3, -0.1 * self.span, 0.0)
        self.level = self.low + self.span * rng.uniform(0.3, 0.6, a)
        self.amp = self.span * rng.uniform(0.01, 0.15, a)
        self.period = rng.uniform(600, 6 * 3600, a)
        self.phase = rng.uniform(0, 2 * np.pi, a)
        self.walk_sigma = self.span * rng.uniform(0.00002, 0.0002, a)
        self.adc_step = self.span / 65535
        self.noise = np.where(np.arange(a) < self.n_cent, self.span * rng.uniform(0.00005, 0.0005, a),
                              self.adc_step * rng.uniform(1, 4, a))
        self.walk = np.zeros(a)
        c = len(self.members["counter"])
        self.counter_rate = rng.uniform(0.05, 20, c)
        self.counter = rng.integers(0, 1_000_000, c).astype(np.int64)
        s = len(self.members["state"])
        self.state_p = 1 / rng.uniform(300, 3600, s)
        self.state = rng.integers(0, 8, s)
        f = len(self.members["flag"])
        self.flag_p = 1 / rng.uniform(60, 7200, f)
        self.flag = rng.random(f) < 0.7
        k = len(self.members["constant"])
        self.constant = np.round(rng.uniform(0, 200, k), 1)
        t = len(self.members["text"])
        self.text = rng.integers(0, len(MODES), t)

    def describe(self) -> str:
        parts = [f"{len(self.members[name])} {name}" for name, _, _ in KINDS]
        return ", ".join(parts)

    @staticmethod
    def _hold(current: np.ndarray, change: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rarely-changing values: ``candidates[i, j]`` takes over where ``change[i, j]``, else the last one."""
        n, t = change.shape
        where = np.where(change, np.arange(t)[None, :], -1)
        last = np.maximum.accumulate(where, axis=1)
        out = np.where(last >= 0, candidates[np.arange(n)[:, None], np.maximum(last, 0)], current[:, None])
        return out, out[:, -1]

    def chunks(self, seconds: int) -> Iterator[tuple[np.ndarray, pa.RecordBatch]]:
        """(tick times, one batch of every value) per 10 minutes, time-major: each second holds every stream."""
        for c0 in range(0, seconds, CHUNK_S):
            t = min(CHUNK_S, seconds - c0)
            yield self._chunk(c0, t)

    def _chunk(self, c0: int, t: int) -> tuple[np.ndarray, pa.RecordBatch]:
        rng = np.random.default_rng([SEED, 1, c0])
        n = self.streams
        secs = (c0 + np.arange(t)).astype(np.float64)
        dbl = np.full((n, t), np.nan)
        whole = np.zeros((n, t), dtype=np.int64)
        boolean = np.zeros((n, t), dtype=bool)
        text = np.zeros((n, t), dtype=np.int64)
        # analog: slow sine + random walk + noise, quantised like the device delivers them
        steps = rng.normal(0, 1, (len(self.analog), t)) * self.walk_sigma[:, None]
        walk = self.walk[:, None] + np.cumsum(steps, axis=1)
        self.walk = walk[:, -1]
        x = (self.level[:, None] + self.amp[:, None] * np.sin(2 * np.pi * secs[None, :] / self.period[:, None]
                                                             + self.phase[:, None])
             + walk + rng.normal(0, 1, walk.shape) * self.noise[:, None])
        cent = np.round(x[: self.n_cent], 2)
        counts = np.clip(np.round((x[self.n_cent:] - self.low[self.n_cent:, None]) / self.adc_step[self.n_cent:, None]),
                         0, 65535)
        # scaled in the PLC as a REAL (float32), widened to a double by the gateway
        adc = (counts.astype(np.float32) * self.adc_step[self.n_cent:, None].astype(np.float32)
               + self.low[self.n_cent:, None].astype(np.float32)).astype(np.float64)
        dbl[self.analog] = np.concatenate([cent, adc])
        # counters
        inc = rng.poisson(self.counter_rate[:, None], (len(self.counter_rate), t))
        cnt = self.counter[:, None] + np.cumsum(inc, axis=1)
        self.counter = cnt[:, -1]
        whole[self.members["counter"]] = cnt
        # states and flags
        sp = self.state_p[:, None]
        st, self.state = self._hold(self.state, rng.random((len(self.state), t)) < sp,
                                    rng.integers(0, 8, (len(self.state), t)))
        whole[self.members["state"]] = st
        flip = rng.random((len(self.flag), t)) < self.flag_p[:, None]
        fl = self.flag[:, None] ^ (np.cumsum(flip, axis=1) % 2 == 1)
        self.flag = fl[:, -1]
        boolean[self.members["flag"]] = fl
        dbl[self.members["constant"]] = self.constant[:, None]
        tx, self.text = self._hold(self.text, rng.random((len(self.text), t)) < 1 / 7200,
                                   rng.integers(0, len(MODES), (len(self.text), t)))
        text[self.members["text"]] = tx
        # time-major columns
        ticks = self.start_ns + (c0 + np.arange(t, dtype=np.int64)) * NS
        times = np.repeat(ticks, n)
        jrng = np.random.default_rng([SEED, 2, c0])
        if self.flavour == "jitter-ms":
            times = times + jrng.integers(-20, 21, times.size) * 1_000_000
        elif self.flavour == "jitter-100ns":
            times = times + jrng.integers(-200_000, 200_001, times.size) * 100
        col = np.tile(self.column_of_stream, t)
        stream = pa.DictionaryArray.from_arrays(pa.array(np.tile(np.arange(n, dtype=np.int32), t)),
                                                pa.array(self.names))
        batch = from_columns(
            stream, times,
            double=pa.array(dbl.T.ravel(), mask=col != "double"),
            integer=pa.array(whole.T.ravel(), mask=col != "integer"),
            boolean=pa.array(boolean.T.ravel(), mask=col != "boolean"),
            string=pa.array(MODES[text.T.ravel()], mask=col != "string"),
        )
        return ticks, batch


# --- timing helpers ----------------------------------------------------------------------------------------------


@dataclass
class Latency:
    first: float
    median: float
    runs: int

    def show(self) -> str:
        s = f"{self.median * 1e3:,.1f}"
        if self.first > 1.5 * self.median and self.first - self.median > 0.005:
            s += f" (1st {self.first * 1e3:,.0f})"
        return s


def timed(fn: Callable[[], object], budget: float = 10.0, max_runs: int = 7) -> Latency:
    """First run apart, then the median of up to ``max_runs`` more within about ``budget`` seconds (at least 2)."""
    t = time.perf_counter()
    fn()
    first = time.perf_counter() - t
    samples = []
    spent = 0.0
    while len(samples) < max_runs and (len(samples) < 2 or spent + first < budget):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
        spent += samples[-1]
    return Latency(first, float(np.median(samples)), len(samples) + 1)


@dataclass
class Result:
    values: int = 0
    ingest_s: float = 0.0
    compact_s: float = 0.0
    disk_bytes: int = 0
    latency: dict[str, Latency] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)


QUERIES = ("latest", "history", "agg_day", "agg_hour_all")


# --- sitewise-edge ----------------------------------------------------------------------------------------------


class CompactionLog(logging.Handler):
    """Adds up the store's own 'compacted N values ... in S s' log records (background ones included)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.values = 0
        self.seconds = 0.0
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("compacted ") and isinstance(record.args, tuple):
            self.values += int(record.args[0])
            self.seconds += float(record.args[-1])
            self.count += 1


def column_bytes(parquet_dir: Path) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for path in parquet_dir.rglob("*.parquet"):
        meta = pq.ParquetFile(path).metadata
        for rg in range(meta.num_row_groups):
            group = meta.row_group(rg)
            for c in range(group.num_columns):
                chunk = group.column(c)
                sizes[chunk.path_in_schema] = sizes.get(chunk.path_in_schema, 0) + chunk.total_compressed_size
    return sizes


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


async def run_ours(plant: Plant, seconds: int, batch_s: int, tmp: Path, probe: dict[str, Any]) -> Result:
    res = Result()
    progress(f"sitewise-edge [{plant.flavour}]: generating {plant.streams:,} streams x {seconds:,} s ...")
    batches: list[pa.RecordBatch] = []
    step = batch_s * plant.streams
    for _, chunk in plant.chunks(seconds):
        batches += [chunk.slice(i, step) for i in range(0, chunk.num_rows, step)]
    res.values = sum(b.num_rows for b in batches)
    data_dir = tmp / f"store-{plant.flavour}"
    handler = CompactionLog()
    store_log = logging.getLogger("storage.compaction")
    store_log.addHandler(handler)
    store_log.setLevel(logging.INFO)
    store = Store(data_dir, StorageConfig(compact_interval="1h"))
    await store.open()
    try:
        progress(f"sitewise-edge [{plant.flavour}]: ingesting {res.values:,} values in {len(batches):,} batches "
                 "(fsync per batch) ...")
        started = time.perf_counter()
        for i, batch in enumerate(batches):
            await store.append(batch)
            if i % 2000 == 1999:
                done = (i + 1) * step
                progress(f"  {done:,} values, {done / (time.perf_counter() - started):,.0f}/s")
        res.ingest_s = time.perf_counter() - started
        del batches
        background = (handler.count, handler.values, handler.seconds)
        progress(f"sitewise-edge [{plant.flavour}]: compacting the rest ...")
        t = time.perf_counter()
        await store.compact()
        final_s = time.perf_counter() - t
        res.compact_s = handler.seconds
        res.notes.append(
            f"the store compacted {background[1]:,} values in {background[0]} background compactions during ingest "
            f"({background[2]:.1f} s inside them), and the last {handler.values - background[1]:,} in {final_s:.1f} s"
        )
        files = list((data_dir / "parquet").rglob("*.parquet"))
        res.disk_bytes = sum(p.stat().st_size for p in files)
        res.notes.append(f"{len(files)} Parquet files; WAL left on disk after compaction: "
                         f"{dir_bytes(data_dir / 'wal') / 1e6:,.1f} MB (not counted)")
        cols = column_bytes(data_dir / "parquet")
        total = sum(cols.values())
        res.notes.append("Parquet column chunks, bytes per value: " + ", ".join(
            f"{name} {size / res.values:.3f} ({size / total:.0%})" for name, size in
            sorted(cols.items(), key=lambda kv: -kv[1])))
        res.notes.append(f"(footers, page indexes and headers: {(res.disk_bytes - total) / res.values:.3f})")

        stream, start, end, hour = probe["stream"], probe["start"], probe["end"], probe["hour"]
        h_start, h_end = probe["h_start"], probe["h_end"]
        res.labels["agg_day"] = res.labels["agg_hour_all"] = "Reader.aggregates"
        if hasattr(store, "refresh_aggregates"):  # precomputed aggregates (layout 4): before = the raw path
            await aggregate_figures(store, res, stream, start, end, hour)

        index = hasattr(store, "latest_all")  # the in-memory latest-value index the API answers from
        if index:
            res.labels["latest"] = "(in-memory index)"

        def q(name: str) -> Callable[[], object]:
            def run() -> object:
                if name == "latest" and index:
                    out = store.latest_all()
                    res.rows[name] = out.num_rows
                    return out
                with store.reader() as r:
                    if name in ("latest", "latest_scan"):
                        out = r.latest_all()
                    elif name == "history":
                        out = r.history(stream, h_start, h_end, limit=100_000)
                    elif name == "agg_day":
                        out = r.aggregates([stream], start, end, MINUTE_NS, limit=1_000_000)
                    else:
                        out = r.aggregates(None, hour, hour + HOUR_NS, MINUTE_NS, limit=1_000_000)
                    res.rows[name] = out.num_rows
                    return out
            return run

        for name in (*QUERIES, "latest_scan"):
            progress(f"sitewise-edge [{plant.flavour}]: query {name} ...")
            res.latency[name] = await asyncio.to_thread(timed, q(name))
    finally:
        await store.close()
        store_log.removeHandler(handler)
        shutil.rmtree(data_dir, ignore_errors=True)
    return res


async def aggregate_figures(store: Store, res: Any, stream: str, start: int, end: int, hour: int) -> None:
    """Build the precomputed aggregates (the compactor's pass) and note the two aggregate queries computed raw
    over the same snapshot (what every query did before layout 4); the table then shows the precomputed path."""
    from storage.query import Reader

    t = time.perf_counter()
    days = await store.refresh_aggregates()
    built_s = time.perf_counter() - t
    assert store._duck is not None

    def raw(streams: list[str] | None, lo: int, hi: int) -> Callable[[], object]:
        def run() -> object:
            assert store._duck is not None
            with Reader(store._duck.cursor(), store.snapshot()) as r:
                return r.aggregates(streams, lo, hi, MINUTE_NS, limit=1_000_000)
        return run

    day = await asyncio.to_thread(timed, raw([stream], start, end))
    all_hour = await asyncio.to_thread(timed, raw(None, hour, hour + HOUR_NS))
    res.notes.append(f"precomputed aggregates: {days} days built in {built_s:.1f} s; computed raw instead "
                     f"(before): one stream {day.median * 1e3:.1f} ms, all streams one hour "
                     f"{all_hour.median * 1e3:.1f} ms (median)")


# --- InfluxDB 1.x ------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_influxd() -> tuple[str | None, str]:
    """The influxd binary, installing the Debian package if it is missing; (None, why) if that fails."""
    found = shutil.which("influxd")
    if found:
        return found, ""
    print("influxd not found: installing the Debian package with `apt-get install -y influxdb` ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        r = subprocess.run(["apt-get", "install", "-y", "influxdb"], capture_output=True, text=True, env=env,
                           timeout=600)
        if r.returncode != 0 and "Unable to locate package" in r.stderr:
            subprocess.run(["apt-get", "update"], capture_output=True, text=True, env=env, timeout=600)
            r = subprocess.run(["apt-get", "install", "-y", "influxdb"], capture_output=True, text=True, env=env,
                               timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"apt-get install influxdb failed: {exc}"
    if r.returncode != 0:
        tail = (r.stderr.strip() or r.stdout.strip()).splitlines()[-3:]
        return None, f"apt-get install influxdb exited {r.returncode}: {' / '.join(tail)}"
    found = shutil.which("influxd") or ("/usr/bin/influxd" if Path("/usr/bin/influxd").exists() else None)
    return found, "" if found else "the influxdb package installed no influxd binary"


INFLUX_CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{root}/meta"
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
  cache-snapshot-write-cold-duration = "1s"
  compact-full-write-cold-duration = "1s"
[coordinator]
  max-select-point = 0
  max-select-series = 0
  max-select-buckets = 0
[retention]
  enabled = false
[monitor]
  store-enabled = false
[subscriber]
  enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{http}"
  log-enabled = false
  max-row-limit = 0
[continuous_queries]
  enabled = false
[logging]
  level = "warn"
"""


class Influx:
    def __init__(self, binary: str, root: Path) -> None:
        self.root = root
        self.port = free_port()
        root.mkdir(parents=True)
        conf = root / "influxdb.conf"
        conf.write_text(INFLUX_CONFIG.format(rpc=free_port(), http=self.port, root=root))
        self.log = open(root / "influxd.log", "wb")  # closed in stop()
        self.proc = subprocess.Popen([binary, "-config", str(conf)], stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self._local = threading.local()
        deadline = time.monotonic() + 60
        while True:
            try:
                if self._request("GET", "/ping")[0] == 204:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"influxd did not start: see {root / 'influxd.log'}")
            time.sleep(0.1)
        self.version = self._request("GET", "/ping")[2].get("X-Influxdb-Version", "?")

    def _conn(self) -> http.client.HTTPConnection:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = self._local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        return c

    def _request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes, dict[str, str]]:
        c = self._conn()
        try:
            c.request(method, path, body=body)
            r = c.getresponse()
        except (http.client.HTTPException, OSError):
            c.close()
            self._local.conn = None
            raise
        return r.status, r.read(), dict(r.getheaders())

    def query(self, q: str, db: str = "bench") -> bytes:
        status, body, _ = self._request("GET", "/query?" + urllib.parse.urlencode({"db": db, "q": q, "epoch": "ns"}))
        if status != 200 or b'"error"' in body[:200]:
            raise RuntimeError(f"InfluxQL {q!r} answered {status}: {body[:300]!r}")
        return body

    def write(self, body: bytes) -> None:
        status, text, _ = self._request("POST", "/write?db=bench&precision=ns", body)
        if status != 204:
            raise RuntimeError(f"InfluxDB write answered {status}: {text[:300]!r}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def line_protocol(plant: Plant, batch: pa.RecordBatch) -> pa.Array:
    """One line per value: ``<kind>,stream=<alias> value=<v> <ns>`` (a measurement per kind of stream)."""
    prefixes = pa.array([f"{KINDS[k][0]},stream={name} value=" for name, k in zip(plant.names, plant.kind,
                                                                                  strict=True)])
    prefix = prefixes.take(batch.column("stream").indices)
    value = pc.coalesce(
        pc.cast(batch.column("double"), pa.string()),
        pc.binary_join_element_wise(pc.cast(batch.column("integer"), pa.string()), "i", ""),
        pc.cast(batch.column("boolean"), pa.string()),
        pc.binary_join_element_wise('"', batch.column("string"), '"', ""),
    )
    t = pc.cast(pc.cast(batch.column("time"), pa.int64()), pa.string())
    return pc.binary_join_element_wise(prefix, value, " ", t, "\n", "")


def influx_dir_bytes(root: Path) -> tuple[int, int]:
    return dir_bytes(root / "data"), dir_bytes(root / "wal")


def run_influx(binary: str, plant: Plant, seconds: int, batch_s: int, tmp: Path, probe: dict[str, Any]) -> Result:
    res = Result()
    root = tmp / f"influx-{plant.flavour}"
    progress(f"InfluxDB [{plant.flavour}]: writing line protocol to {root / 'lines'} (not timed) ...")
    root.mkdir()
    spool = root / "lines"
    bounds: list[tuple[int, int]] = []
    step = batch_s * plant.streams
    pos = 0
    with open(spool, "wb") as f:
        for _, chunk in plant.chunks(seconds):
            lines = line_protocol(plant, chunk)
            offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset: lines.offset + len(lines) + 1]
            data = lines.buffers()[2]
            f.write(memoryview(data)[offsets[0]: offsets[-1]])
            for i in range(0, len(lines), step):
                a, b = offsets[i], offsets[min(i + step, len(lines))]
                bounds.append((pos + int(a - offsets[0]), pos + int(b - offsets[0])))
            pos += int(offsets[-1] - offsets[0])
            res.values += len(lines)
    server = Influx(binary, root / "server")
    try:
        res.labels["version"] = server.version
        server.query("CREATE DATABASE bench", db="")
        progress(f"InfluxDB {server.version} [{plant.flavour}]: writing {res.values:,} points in {len(bounds):,} "
                 f"requests, {WRITERS} writers ...")
        with open(spool, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as lines:
            lines.madvise(mmap.MADV_WILLNEED)
            started = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(WRITERS) as pool:
                # the writers take the requests in time order, as a few concurrent gateways would send them
                for _ in pool.map(lambda ab: server.write(lines[ab[0]: ab[1]]), bounds):
                    pass
            res.ingest_s = time.perf_counter() - started
        progress(f"InfluxDB [{plant.flavour}]: {res.values / res.ingest_s:,.0f} points/s; waiting for the cache "
                 "snapshot and full compaction to TSM ...")
        t = time.perf_counter()
        stable_since, last = time.monotonic(), (-1, -1)
        while True:
            time.sleep(1)
            sizes = influx_dir_bytes(server.root)
            busy = any(p.suffix == ".tmp" for p in (server.root / "data").rglob("*"))
            if sizes != last or busy:
                stable_since, last = time.monotonic(), sizes
            elif time.monotonic() - stable_since >= 10 and sizes[1] < 1_000_000:
                break
            if time.perf_counter() - t > 900:
                res.notes.append("InfluxDB's directories were still changing after 15 min; measured as they were")
                break
        res.compact_s = time.perf_counter() - t
        data_b, wal_b = influx_dir_bytes(server.root)
        res.disk_bytes = data_b + wal_b
        tsm = list((server.root / "data").rglob("*.tsm"))
        res.notes.append(f"data dir {data_b / 1e6:,.1f} MB in {len(tsm)} TSM files, wal dir {wal_b / 1e6:,.2f} MB; "
                         f"compaction settled {res.compact_s:.0f} s after the last write")

        stream, start, end, hour = probe["stream"], probe["start"], probe["end"], probe["hour"]
        h_start, h_end = probe["h_start"], probe["h_end"]
        kind = KINDS[plant.kind[list(plant.names).index(stream)]][0]
        # InfluxQL merges the measurements of one statement under one field type: booleans and strings need
        # statements of their own (all in one request)
        numeric = ",".join(k for k, _, col in KINDS if col in ("double", "integer"))
        others = [k for k, _, col in KINDS if col not in ("double", "integer")]
        aggs = "mean(value), count(value), min(value), max(value), sum(value), stddev(value)"
        window = f"time >= {hour} AND time < {hour + HOUR_NS}"
        statements = {
            "latest": "; ".join(f"SELECT last(value) FROM {m} GROUP BY stream" for m in [numeric, *others]),
            "history": f"SELECT value FROM {kind} WHERE stream = '{stream}' AND time > {h_start} AND time <= {h_end}",
            "agg_day": f"SELECT {aggs} FROM {kind} WHERE stream = '{stream}' AND time >= {start} AND time < {end} "
                       "GROUP BY time(1m)",
            "agg_hour_all": "; ".join([f"SELECT {aggs} FROM {numeric} WHERE {window} GROUP BY time(1m), stream",
                                       *(f"SELECT count(value) FROM {m} WHERE {window} GROUP BY time(1m), stream"
                                         for m in others)]),
        }
        for name, q in statements.items():
            progress(f"InfluxDB [{plant.flavour}]: query {name} ...")
            res.latency[name] = timed(lambda q=q: server.query(q))
            res.rows[name] = influx_rows(server.query(q))
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    return res


def influx_rows(body: bytes) -> int:
    """Rows in an InfluxQL JSON answer, counting a (stream, bucket) once across the statement's measurements."""
    doc = json.loads(body)
    rows = 0
    for result in doc.get("results", []):
        for series in result.get("series", []):
            rows += len(series.get("values", []))
    return rows


# --- the report --------------------------------------------------------------------------------------------------


def fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    if unit == "values/s":
        return f"{v:,.0f}"
    if unit == "bytes":
        return f"{v:.3f}"
    return f"{v:,.1f}"


def report(flavour: str, plant: Plant, seconds: int, ours: Result, influx: Result | None, why: str) -> list[str]:
    v = ours.values
    rows: list[tuple[str, str, float | None, float | None, str, str, str]] = []
    ref = influx
    ib = ref.disk_bytes / ref.values if ref else None
    rows.append(("ingest (values/s)", "values/s", v / ours.ingest_s, ref.values / ref.ingest_s if ref else None,
                 "higher", "faster than InfluxDB", "gt"))
    rows.append(("compaction to Parquet (values/s)", "values/s",
                 ours.values / ours.compact_s if ours.compact_s else None, None, "higher", "", ""))
    bytes_target = ("< 1.37 (Gorilla)", "abs") if flavour == "exact" else ("< half of InfluxDB", "half")
    rows.append(("bytes per stored value on disk", "bytes", ours.disk_bytes / v, ib, "lower", *bytes_target))
    names = {
        "latest": ("latest value of every stream (ms)", "< 5 ms", "abs5"),
        "history": ("one-day history of one stream (ms)" if seconds >= 86400 else
                    f"{seconds / 3600:g} h history of one stream (ms)", "", ""),
        "agg_day": ("1-min aggregates, one stream, one day (ms)" if seconds >= 86400 else
                    f"1-min aggregates, one stream, {seconds / 3600:g} h (ms)", "faster than InfluxDB", "lt"),
        "agg_hour_all": ("1-min aggregates, all streams, one hour (ms)", "faster than InfluxDB", "lt"),
    }
    for key, (label, target, rule) in names.items():
        if key in ours.labels:
            label += " " + ours.labels[key]
        rows.append((label, "ms", ours.latency[key].median * 1e3, ref.latency[key].median * 1e3 if ref else None,
                     "lower", target, rule))
    iv = f"InfluxDB {ref.labels.get('version', '')}".strip() if ref else "InfluxDB"
    header = ["metric", "sitewise-edge", iv, "ours/Influx", "target", "result"]
    table = []
    rows.append(("latest value of every stream, DuckDB scan (Reader.latest_all)", "ms",
                 ours.latency["latest_scan"].median * 1e3, None, "lower", "", ""))
    keys = [None, None, None, *names, "latest_scan"]
    for (label, unit, o, i, better, target, rule), key in zip(rows, keys, strict=True):
        os_ = ours.latency[key].show() if key else fmt(o, unit)
        is_ = ref.latency[key].show() if key and ref and key in ref.latency else fmt(i, unit)
        ratio = f"{o / i:.2f} ({better} is better)" if (o is not None and i) else "-"
        verdict = ""
        if rule == "abs" and o is not None:
            verdict = "PASS" if o < GORILLA_BYTES else "MISS"
        elif rule == "abs5" and o is not None:
            verdict = "PASS" if o < 5 else "MISS"
        elif rule and i is not None and o is not None:
            ok = {"gt": o > i, "lt": o < i, "half": o < i / 2}[rule]
            verdict = "PASS" if ok else "MISS"
        elif rule:
            verdict = "n/a"
        table.append([label, os_, is_, ratio, target, verdict])
    widths = [max(len(r[c]) for r in [header, *table]) for c in range(len(header))]
    out = [f"### flavour: {flavour}", ""]
    out.append("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in table:
        out.append("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
    out.append("")
    out.append(f"- {v:,} values ({plant.streams:,} streams x {seconds:,} s); InfluxDB: one point per value"
               if ref is None or ref.values == v else f"- values differ: ours {v:,}, InfluxDB {ref.values:,}")
    out += [f"- sitewise-edge: {n}" for n in ours.notes]
    if ref:
        out += [f"- InfluxDB: {n}" for n in ref.notes]
        for key in QUERIES:
            if ours.rows.get(key) != ref.rows.get(key):
                out.append(f"- rows answered by `{key}`: ours {ours.rows.get(key):,}, InfluxDB {ref.rows.get(key):,}")
    else:
        out.append(f"- InfluxDB: not compared ({why})")
    out.append("- latencies: median of repeated runs; '(1st N)' is the first run where it was much slower")
    return out


def day_start(days_ago: int) -> int:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return int(today.timestamp()) * NS - days_ago * 86400 * NS


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--hours", type=float, default=24)
    parser.add_argument("--flavour", choices=("exact", "jitter", "both"), default="both")
    parser.add_argument("--jitter-resolution", choices=("ms", "100ns", "both"), default="ms",
                        help="resolution of the jittered source timestamps (default ms: see the README)")
    parser.add_argument("--batch-seconds", type=int, default=5, help="seconds of every stream per batch/request")
    parser.add_argument("--skip-influx", action="store_true")
    parser.add_argument("--tmp", type=Path, default=None, help="where to put the data (default: a temp dir)")
    args = parser.parse_args()
    seconds = int(args.hours * 3600)
    if seconds < 3600:
        parser.error("--hours must be at least 1 (the all-streams query covers one hour)")
    flavours = []
    if args.flavour in ("exact", "both"):
        flavours.append("exact")
    if args.flavour in ("jitter", "both"):
        flavours += [f"jitter-{r}" for r in (("ms", "100ns") if args.jitter_resolution == "both"
                                             else (args.jitter_resolution,))]
    start = day_start(2)  # whole UTC days, recent enough for the store's default 30-day retention
    binary, why = (None, "--skip-influx") if args.skip_influx else ensure_influxd()
    if not args.skip_influx and binary is None:
        print(f"InfluxDB comparison skipped: {why}", flush=True)
    probe_plant = Plant(args.streams, start, "exact")
    stream = str(probe_plant.names[probe_plant.members["analog_cent"][0]])
    end = start + seconds * NS
    # history: (start, end] around the ticks, so +-20 ms of jitter neither adds nor drops a value
    probe = {"stream": stream, "start": start, "end": end, "hour": end - HOUR_NS,
             "h_start": start - NS // 2, "h_end": end - NS // 2}
    print(f"# sitewise-edge historian benchmark: {args.streams:,} streams at 1 Hz for {seconds / 3600:g} h, "
          f"{os.cpu_count()} CPUs\n")
    print(f"- streams: {probe_plant.describe()}")
    print("- analog_cent: rounded to 0.01 like PLC/OPC UA engineering values; analog_adc: a 16-bit ADC count scaled "
          "to its span as a float32 REAL in the PLC (count * span/65535 + low), widened to a double; "
          "noise of a few steps on slow sines and random walks")
    print(f"- batches of {args.batch_seconds} s of every stream ({args.batch_seconds * args.streams:,} values), "
          "time-ordered; jitter: uniform +-20 ms per value, at the stated resolution")
    print(f"- single-stream queries on {stream}; the hour is the last one; aggregates: AVERAGE, COUNT, MINIMUM, "
          "MAXIMUM, SUM, STANDARD_DEVIATION (COUNT alone for booleans and strings)")
    print("- InfluxDB schema: one measurement per kind of stream, tag stream=<alias>, field value (a field keeps one "
          "type per measurement, so mixed types cannot share one)\n")
    with tempfile.TemporaryDirectory(dir=args.tmp) as d:
        tmp = Path(d)
        for flavour in flavours:
            ours = await run_ours(Plant(args.streams, start, flavour), seconds, args.batch_seconds, tmp, probe)
            influx = None
            if binary is not None:
                try:  # in this thread, so that Ctrl-C reaches the finally that stops influxd
                    influx = run_influx(binary, Plant(args.streams, start, flavour), seconds, args.batch_seconds,
                                        tmp, probe)
                except (RuntimeError, OSError) as exc:
                    why = f"InfluxDB failed: {exc}"
                    print(f"InfluxDB comparison skipped for {flavour}: {exc}", flush=True)
            print("\n".join(report(flavour, probe_plant, seconds, ours, influx, why)) + "\n", flush=True)


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
