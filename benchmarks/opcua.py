"""The OPC UA source against a bare asyncua client and the ThingsBoard IoT Gateway, on the same server in
the same run (issue 11).

    .venv/bin/python benchmarks/opcua.py [--nodes 10000 50000] [--seconds 10] [--keepalive 5]
                                         [--skip-store] [--skip-thingsboard]

A server process (asyncua, this script with ``--serve``) holds N Double variables (folders of 100) and
rewrites all of them once a second, or as fast as it can when that takes longer (every value changes
each round). Against it, one after the other, each client in a process of its own (``--client``):

* **bare asyncua, handler**: a ``Client``, one subscription (publishing interval 1 s),
  ``subscribe_data_change`` in chunks of 1,000, a handler that only counts: the library as documented
  (asyncua 2 makes a task per value for the handler call).
* **bare asyncua, publish hook**: the same, counting each publish response's data changes in an
  overridden ``Subscription.publish_callback``: the decode floor, the path sitewise-edge takes.
* **sitewise-edge -> store**: ``OpcUaStreamingConnector`` (the same interval, node ids from a
  configuration), every batch appended to a ``Store`` (WAL, fsync per batch): as the gateway runs it.
* **sitewise-edge, no store**: the connector alone (``--skip-store`` drops the store row).
* **ThingsBoard**: ``thingsboard-gateway`` (its OPC UA connector by subscription, one device per
  folder, node ids; memory storage) publishing to a mosquitto broker on 127.0.0.1; values counted in
  the telemetry the broker receives. It runs from its own virtual environment,
  ``benchmarks/.venv-thingsboard`` (``--setup-thingsboard`` makes it: ``pip install thingsboard-gateway
  asyncua==1.1.5``, the version it pins), and needs Debian's ``mosquitto`` (``apt-get install mosquitto``).

Figures: subscribe time (connect + create every monitored item; for ThingsBoard: start until the first
full round), values/s after the first full round, CPU µs per value (the client process's user + system
time, every thread, over the measured window), its resident memory at the end, and the ratios against
the bare handler client of the same N. The machine's load average is printed with the table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from asyncua import Client, Server, ua  # noqa: E402
from asyncua.common.subscription import Subscription  # noqa: E402

from sitewise_edge.simulators.opcua import free_port  # noqa: E402

INTERVAL_S = 1.0
FOLDER_NODES = 100  # variables per folder of the server's address space
TB_VENV = Path(__file__).resolve().parent / ".venv-thingsboard"
FIRST_ROUND_TIMEOUT_S = 300.0


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
def server_process(nodes: int) -> Iterator[str]:
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


# --- the clients (each in a process of its own: --client KIND) ------------------------------------


@dataclass
class Result:
    name: str
    subscribe_s: float
    values: int
    seconds: float
    cpu_s: float
    rss_mb: float

    @property
    def rate(self) -> float:
        return self.values / self.seconds

    @property
    def cpu_us(self) -> float:
        return self.cpu_s / max(self.values, 1) * 1e6


def cpu() -> float:
    t = os.times()
    return t.user + t.system


def rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def measure(seconds: float, count: Any, nodes: int, usage: Any = cpu) -> tuple[int, float, float]:
    """Wait for the first full round, then count values and CPU for ``seconds``."""
    deadline = time.monotonic() + FIRST_ROUND_TIMEOUT_S
    while count() < nodes:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {count()} of {nodes} values within {FIRST_ROUND_TIMEOUT_S:g}s")
        await asyncio.sleep(0.05)
    v0, c0, t0 = count(), usage(), time.perf_counter()
    await asyncio.sleep(seconds)
    return count() - v0, time.perf_counter() - t0, usage() - c0


class Counter:
    def __init__(self) -> None:
        self.count = 0

    def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
        self.count += 1


class CountingSubscription(Subscription):
    """Counts each publish response's data changes, as sitewise-edge's subscription hands them over."""

    count = 0

    async def publish_callback(self, publish_result: ua.PublishResult) -> None:
        message = publish_result.NotificationMessage
        for notification in message.NotificationData or ():
            if isinstance(notification, ua.DataChangeNotification):
                self.count += len(notification.MonitoredItems)
        message.NotificationData = [n for n in message.NotificationData or ()
                                    if not isinstance(n, ua.DataChangeNotification)]
        await super().publish_callback(publish_result)


async def bare(endpoint: str, nodes: int, seconds: float, keepalive: float, hook: bool) -> Result:
    started = time.perf_counter()
    client = Client(endpoint, timeout=30, watchdog_intervall=keepalive)
    await client.connect()
    try:
        handler = Counter()
        sub = await client.create_subscription(INTERVAL_S * 1000, handler)
        if hook:
            sub.__class__ = CountingSubscription  # asyncua builds the Subscription itself
            client.uaclient._subscription_callbacks[sub.subscription_id] = sub.publish_callback
        ids = [client.get_node(node_id(i)) for i in range(nodes)]
        for start in range(0, nodes, 1000):
            await sub.subscribe_data_change(ids[start:start + 1000], queuesize=1,
                                            sampling_interval=ua.Double(INTERVAL_S * 1000))
        subscribed = time.perf_counter() - started
        counted = (lambda: sub.count) if hook else (lambda: handler.count)  # type: ignore[attr-defined]
        values, elapsed, used = await measure(seconds, counted, nodes)
        name = "bare asyncua, publish hook" if hook else "bare asyncua, handler"
        return Result(name, subscribed, values, elapsed, used, rss_mb())
    finally:
        await client.disconnect()


async def ours(endpoint: str, nodes: int, seconds: float, keepalive: float, with_store: bool) -> Result:
    from connectors.opcua.config import OpcUaSource
    from connectors.opcua.connector import OpcUaStreamingConnector

    cfg = OpcUaSource.model_validate({
        "name": "bench", "type": "opcua", "endpoint": endpoint, "interval": INTERVAL_S, "timeout": 30,
        "keepalive": keepalive,
        "nodes": [{"node_id": node_id(i), "alias": f"/bench/v{i}"} for i in range(nodes)]})
    async with a_store(with_store) as store:
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
        memory = rss_mb()
        if store is not None:
            stored = store.latest_all().num_rows
            if stored != nodes:
                raise RuntimeError(f"{stored} of {nodes} streams in the store")
    name = "sitewise-edge -> store" if store is not None else "sitewise-edge, no store"
    return Result(name, subscribed, values, elapsed, used, memory)


@contextlib.asynccontextmanager
async def a_store(wanted: bool) -> AsyncIterator[Any]:
    if not wanted:
        yield None
        return
    from sitewise_edge.config import StorageConfig
    from storage.store import Store

    with tempfile.TemporaryDirectory(prefix="bench-opcua-") as tmp:
        store = Store(Path(tmp), StorageConfig(compact_interval="1h"))
        await store.open()
        try:
            yield store
        finally:
            await store.close()


async def client_main(kind: str, endpoint: str, nodes: int, seconds: float, keepalive: float) -> None:
    if kind in ("bare", "hook"):
        result = await bare(endpoint, nodes, seconds, keepalive, kind == "hook")
    else:
        result = await ours(endpoint, nodes, seconds, keepalive, kind == "store")
    print("RESULT " + json.dumps(asdict(result)), flush=True)


def run_client(kind: str, endpoint: str, nodes: int, seconds: float, keepalive: float) -> Result | str:
    proc = subprocess.run([sys.executable, __file__, "--client", kind, endpoint, str(nodes), str(seconds),
                           str(keepalive)], capture_output=True, text=True, timeout=FIRST_ROUND_TIMEOUT_S + 120)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return Result(**json.loads(line[7:]))
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return f"{kind}: failed (exit {proc.returncode}): {tail}"


# --- ThingsBoard IoT Gateway --------------------------------------------------------------------


def setup_thingsboard() -> None:
    subprocess.run([sys.executable, "-m", "venv", str(TB_VENV)], check=True)
    subprocess.run([str(TB_VENV / "bin" / "pip"), "install", "-q", "thingsboard-gateway", "asyncua==1.1.5"],
                   check=True)


def thingsboard_missing() -> str | None:
    if not (TB_VENV / "bin" / "thingsboard-gateway").exists():
        return f"ThingsBoard: not installed ({TB_VENV}); run with --setup-thingsboard"
    if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
        return "ThingsBoard: no mosquitto broker; apt-get install mosquitto"
    return None


def thingsboard_config(folder: Path, endpoint: str, nodes: int, broker_port: int) -> None:
    package = next((TB_VENV / "lib").glob("python3*/site-packages/thingsboard_gateway"))
    logs = json.loads((package / "config" / "logs.json").read_text())
    for handler in logs["handlers"].values():
        if "filename" in handler:
            handler["filename"] = str(folder / "logs" / Path(handler["filename"]).name)
    level = os.environ.get("BENCH_TB_LOG_LEVEL", "ERROR")
    for logger in logs.get("loggers", {}).values():
        logger["level"] = level
    logs.get("root", {})["level"] = level
    (folder / "logs").mkdir()
    (folder / "logs.json").write_text(json.dumps(logs))
    mapping = []
    for start in range(0, nodes, FOLDER_NODES):
        group = start // FOLDER_NODES
        mapping.append({
            "deviceNodeSource": "path",
            "deviceNodePattern": f"Root\\.Objects\\.Bench\\.G{group}",
            "deviceInfo": {"deviceNameExpression": f"G{group}", "deviceNameExpressionSource": "constant",
                           "deviceProfileExpression": "default", "deviceProfileExpressionSource": "constant"},
            "attributes": [],
            "timeseries": [{"key": f"V{i}", "type": "identifier", "value": "${" + node_id(i) + "}"}
                           for i in range(start, min(nodes, start + FOLDER_NODES))],
            "rpc_methods": [], "attributes_updates": []})
    (folder / "opcua.json").write_text(json.dumps({
        "server": {"url": endpoint, "timeoutInMillis": 30000, "scanPeriodInMillis": 3600000,
                   "pollPeriodInMillis": int(INTERVAL_S * 1000), "enableSubscriptions": True,
                   "subCheckPeriodInMillis": int(INTERVAL_S * 1000), "showMap": False, "security": "None",
                   "identity": {"type": "anonymous"}},
        "mapping": mapping}))
    (folder / "tb_gateway.json").write_text(json.dumps({
        "thingsboard": {"host": "127.0.0.1", "port": broker_port, "remoteShell": False,
                        "remoteConfiguration": False, "statistics": {"enable": False, "statsSendPeriodInSeconds": 3600},
                        "deviceFiltering": {"enable": False}, "maxPayloadSizeBytes": 65536,
                        "minPackSendDelayMS": 50, "minPackSizeToSend": 500,
                        "checkConnectorsConfigurationInSeconds": 3600, "handleDeviceRenaming": False,
                        "security": {"type": "accessToken", "accessToken": "bench"}, "qos": 1,
                        "reportStrategy": {"type": "ON_RECEIVED"},
                        "checkingDeviceActivity": {"checkDeviceInactivity": False}},
        "storage": {"type": "memory", "read_records_count": 100, "max_records_count": 1_000_000},
        "grpc": {"enabled": False},
        "connectors": [{"type": "opcua", "name": "OPCUA", "configuration": "opcua.json"}]}))


# The broker's side of ThingsBoard: answers the gateway's session-limit requests (no limits: the gateway
# sends nothing until it has them) and counts the values of its telemetry.
COUNTER = """
import json, sys
import paho.mqtt.client as mqtt
count = 0
LIMITS = {"rateLimits": {"messages": "", "telemetryMessages": "", "telemetryDataPoints": ""},
          "maxInflightMessages": 100, "maxPayloadSize": 65536}
def on_message(client, userdata, msg):
    global count
    if msg.topic.startswith("v1/devices/me/rpc/request/"):
        client.publish(msg.topic.replace("request", "response"), json.dumps(LIMITS))
        return
    try:
        data = json.loads(msg.payload)
    except ValueError:
        return
    if isinstance(data, dict):
        for entries in data.values():
            for entry in entries if isinstance(entries, list) else [entries]:
                if isinstance(entry, dict):
                    count += len(entry.get("values", entry))
    print(count, flush=True)
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2) if hasattr(mqtt, "CallbackAPIVersion") else mqtt.Client()
c.on_message = on_message
c.connect("127.0.0.1", int(sys.argv[1]))
c.subscribe([("v1/gateway/telemetry", 0), ("v1/devices/me/rpc/request/+", 0)])
print(0, flush=True)
c.loop_forever()
"""


def spawn(args: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """A helper process, started before the measured window."""
    return subprocess.Popen(args, **kwargs)


def proc_cpu(pid: int) -> float:
    """user + system seconds of a process (every thread)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def thingsboard(endpoint: str, nodes: int, seconds: float) -> Result | str:
    missing = thingsboard_missing()
    if missing:
        return missing
    broker = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-tb-") as tmp:
        folder = Path(tmp)
        (folder / "mosquitto.conf").write_text(f"listener {broker} 127.0.0.1\nallow_anonymous true\n")
        mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        procs: list[subprocess.Popen[Any]] = []
        try:
            procs.append(spawn([mosquitto, "-c", str(folder / "mosquitto.conf")], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL))
            await asyncio.sleep(0.5)
            counter = spawn([str(TB_VENV / "bin" / "python"), "-c", COUNTER, str(broker)], stdout=subprocess.PIPE,
                            text=True)
            procs.append(counter)
            assert counter.stdout is not None
            counter.stdout.readline()
            thingsboard_config(folder, endpoint, nodes, broker)
            started = time.perf_counter()
            gateway = spawn([str(TB_VENV / "bin" / "thingsboard-gateway")], cwd=folder,
                            env={**os.environ, "TB_GW_CONFIG_DIR": str(folder) + "/"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(gateway)
            latest = [0]
            loop = asyncio.get_running_loop()

            def read_counts() -> None:
                assert counter.stdout is not None
                for line in counter.stdout:
                    latest[0] = int(line)

            reader = loop.run_in_executor(None, read_counts)
            try:
                deadline = time.monotonic() + FIRST_ROUND_TIMEOUT_S
                while latest[0] < nodes:
                    if gateway.poll() is not None:
                        return f"ThingsBoard: the gateway exited ({gateway.returncode}); see its logs"
                    if time.monotonic() > deadline:
                        return f"ThingsBoard: only {latest[0]} of {nodes} values within {FIRST_ROUND_TIMEOUT_S:g}s"
                    await asyncio.sleep(0.1)
                subscribed = time.perf_counter() - started
                values, elapsed, used = await measure(seconds, lambda: latest[0], nodes,
                                                      lambda: proc_cpu(gateway.pid))
                return Result("ThingsBoard IoT Gateway", subscribed, values, elapsed, used, rss_mb(gateway.pid))
            finally:
                for proc in reversed(procs):
                    proc.terminate()
                for proc in procs:
                    try:
                        proc.wait(10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                await reader
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()


# --- the table ------------------------------------------------------------------------------------


async def run(sizes: list[int], seconds: float, keepalive: float, with_store: bool, with_tb: bool) -> None:
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)", flush=True)
    print(f"{'nodes':>7} {'client':<28} {'subscribe s':>11} {'values/s':>10} {'rate vs bare':>12} "
          f"{'CPU µs/value':>12} {'CPU vs bare':>11} {'RSS MB':>7}", flush=True)
    kinds = ["bare", "hook", *(["store"] if with_store else []), "connector"]
    for nodes in sizes:
        with server_process(nodes) as endpoint:
            base: Result | None = None
            results: list[Result | str] = [run_client(k, endpoint, nodes, seconds, keepalive) for k in kinds]
            if with_tb:
                results.append(await thingsboard(endpoint, nodes, seconds))
            for r in results:
                if isinstance(r, str):
                    print(f"{nodes:>7} {r}", flush=True)
                    continue
                base = base or r
                print(f"{nodes:>7} {r.name:<28} {r.subscribe_s:>11.2f} {r.rate:>10,.0f} {r.rate / base.rate:>11.2f}x "
                      f"{r.cpu_us:>12.1f} {r.cpu_us / base.cpu_us:>10.2f}x {r.rss_mb:>7.0f}", flush=True)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--keepalive", type=float, default=5.0,
                        help="keep-alive (watchdog) of every client, s: a busy machine needs more than 1 s")
    parser.add_argument("--skip-store", action="store_true")
    parser.add_argument("--skip-thingsboard", action="store_true")
    parser.add_argument("--setup-thingsboard", action="store_true", help=f"make {TB_VENV} and exit")
    parser.add_argument("--serve", nargs=2, type=int, metavar=("NODES", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--client", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.setup_thingsboard:
        setup_thingsboard()
        return
    if args.serve:
        asyncio.run(serve(*args.serve))
        return
    if args.client:
        kind, endpoint, nodes, secs, keepalive = args.client
        asyncio.run(client_main(kind, endpoint, int(nodes), float(secs), float(keepalive)))
        return
    asyncio.run(run(args.nodes, args.seconds, args.keepalive, not args.skip_store, not args.skip_thingsboard))


if __name__ == "__main__":
    main()
