"""Failures are never silent: a source that cannot connect is logged once per change, /health says degraded
with reasons (503 only when data cannot be accepted), /ready tells orchestrators, and the latest value of a
source that is down reads as UNCERTAIN after gateway.stale_after (its history is never rewritten)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest

from connectors.base import ConnectorStatus, PollingConnector
from sitewise_edge.clock import ManualClock
from sitewise_edge.health import Health
from sitewise_edge.runtime import Gateway
from sitewise_edge.samples import from_columns
from sitewise_edge.simulators.opcua import OpcUaSimulator, generate_certificate
from tests.conftest import ended, eventually, free_port, gateway_config
from tests.storage.test_crash import start

ALIAS = "/plant1/line1/press1/temperature"


def test_the_board_logs_each_change_once(caplog: pytest.LogCaptureFixture) -> None:
    health = Health(ManualClock(1000.0))
    with caplog.at_level(logging.WARNING, "sitewise_edge.health"):
        for _ in range(3):
            health.report("publisher cloud", "throttled: ThrottlingException")
        assert health.verdict()["status"] == "degraded" and health.ready
        health.report("disk", "2 MiB free", blocks_ingest=True)
        assert health.verdict()["status"] == "unavailable" and not health.ready
        health.report("disk", None)
        health.report("disk", None)
        health.report("publisher cloud", None)
    assert health.verdict() == {"status": "ok", "reasons": []}
    assert [r.message for r in caplog.records] == [
        "health: publisher cloud: throttled: ThrottlingException", "health: disk: 2 MiB free (data is refused)",
        "health: disk recovered (was: 2 MiB free)", "health: publisher cloud recovered (was: throttled: "
        "ThrottlingException)"]


async def get(port: int, path: str, **params: Any) -> tuple[int, Any]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        r = await http.get(path, params=params)
    return r.status_code, r.json()


async def test_a_stopped_opcua_server_degrades_health_and_stales_its_values(tmp_path: Path) -> None:
    opc_port, port = free_port(), free_port()
    sim = OpcUaSimulator(port=opc_port, update_interval=0.1)
    await sim.start()
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(f"gateway: {{name: health, data_dir: {tmp_path / 'data'}, stale_after: 1s}}\n"
                   f"api: {{port: {port}}}\n"
                   f"sources:\n  - {{name: press, type: opcua, endpoint: 'opc.tcp://127.0.0.1:{opc_port}',"
                   f" interval: 100ms, timeout: 1s,\n     nodes: [{{node_id: 'ns=2;s=Press1.Temperature',"
                   f" alias: '{ALIAS}'}}]}}\n")
    proc = await asyncio.to_thread(start, cfg)
    try:
        async def latest_quality() -> str | None:
            _, body = await get(port, "/properties/latest", propertyAlias=ALIAS)
            return body.get("propertyValue", {}).get("quality")

        assert await eventually(latest_quality) == "GOOD"
        assert await eventually(lambda: _is(_status(port), "ok"))
        assert (await get(port, "/ready"))[0] == 200
        await sim.stop()

        async def degraded() -> Any:
            code, body = await get(port, "/health")
            return (code, body) if body["status"] == "degraded" else None

        code, body = await eventually(degraded)
        assert code == 200  # still accepting data: a liveness probe must not restart it
        [reason] = body["reasons"]
        assert reason["component"] == "source press" and reason["reason"].startswith("down: ")
        ready_code, ready = await get(port, "/ready")
        assert ready_code == 200 and ready["status"] == "degraded"  # BatchPut is still accepted
        assert await eventually(lambda: _is(latest_quality(), "UNCERTAIN")) # after stale_after without a value
        _, hist = await get(port, "/properties/history", propertyAlias=ALIAS, startDate="0", endDate="2000000000")
        assert {v["quality"] for v in hist["assetPropertyValueHistory"]} == {"GOOD"}  # history is not rewritten
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            r = await http.post("/properties/batch/latest",
                                json={"entries": [{"entryId": "a", "propertyAlias": ALIAS}]})
        assert r.json()["successEntries"][0]["assetPropertyValue"]["quality"] == "UNCERTAIN"
        sim = OpcUaSimulator(port=opc_port, update_interval=0.1)
        await sim.start()  # the device is back: values are GOOD again, health ok
        assert await eventually(lambda: _is(latest_quality(), "GOOD"), within=30)
        assert await eventually(lambda: _is(_status(port), "ok"), within=30)
    finally:
        proc.terminate()
        await asyncio.to_thread(ended, proc, 15)
        await sim.stop()


async def _is(value: Any, expected: str) -> bool:
    return bool(await value == expected)


async def _status(port: int) -> str:
    return str((await get(port, "/health"))[1]["status"])


async def test_a_wrong_password_is_logged_once_and_shown(tmp_path: Path, start_gateway: Any,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    pki = tmp_path / "pki"
    pki.mkdir()
    cert, key = pki / "client-cert.der", pki / "client-key.pem"
    generate_certificate(cert, key, "sitewise-edge test client", "urn:sitewise-edge:test-client")
    sim = OpcUaSimulator(port=0, update_interval=0.2, security=True, allow_none=False, users={"operator": "s3cret"})
    await sim.start()
    try:
        cfg = gateway_config(tmp_path, sources=[{
            "name": "press", "type": "opcua", "endpoint": sim.endpoint, "interval": "200ms", "timeout": "2s",
            "security_policy": "Basic256Sha256", "security_mode": "SignAndEncrypt", "certificate": str(cert),
            "private_key": str(key), "server_certificate": str(sim.server_certificate), "username": "operator",
            "password": "wrong",
            "nodes": [{"node_id": "ns=2;s=Press1.Temperature", "alias": ALIAS}]}])
        with caplog.at_level(logging.INFO, "sitewise_edge"):
            gw = await start_gateway(cfg)
            await eventually(lambda: gw.connectors[0].status.reconnects >= 2, within=20)  # two failed attempts
            code, body = await get(gw.api_port, "/health")
        down = [r.message for r in caplog.records if r.message.startswith("source press down")]
        assert len(down) == 1 and "BadUserAccessDenied" in down[0], down  # logged once, not on every retry
        assert "wrong" not in down[0]
        assert code == 200 and body["status"] == "degraded"
        [reason] = body["reasons"]
        assert reason["component"] == "source press" and "BadUserAccessDenied" in reason["reason"]
        assert sum("health: source press: down" in r.message for r in caplog.records) == 1
    finally:
        await sim.stop()


class _Counter(PollingConnector):
    """A device that gives one new value per poll; ``produced`` is what it handed over."""

    def __init__(self) -> None:
        self.name = "counter"
        self.interval = 0.01
        self.status = ConnectorStatus()
        self.produced = 0

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def poll(self) -> pa.RecordBatch:
        self.produced += 1
        return from_columns(["/counter/n"], [T0_NS + self.produced * 10**6], double=[float(self.produced)])


T0_NS = 1_764_000_000 * 10**9


async def test_a_full_disk_back_pressures_the_sources_and_loses_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sitewise_edge.runtime.gateway.QUEUE_BATCHES", 8)  # the queue fills in a moment
    gw = Gateway(gateway_config(tmp_path))
    free = {"bytes": 10**12}
    gw.store.state.free_space = lambda _: free["bytes"]  # the disk probe, as a full file system would answer
    counter = _Counter()
    gw.connectors = [counter]
    await gw.start()
    try:
        await eventually(lambda: gw.store.stats.values_accepted > 5)
        free["bytes"] = 0  # the disk is full
        # the store refuses (its probe runs once a second): the queue fills and the source waits
        await eventually(lambda: gw.store.disk_status()["state"] == "full" and gw.store_error and gw._queue.full())
        waiting_at = counter.produced
        code, body = await get(gw.api_port, "/health")
        assert code == 503 and body["status"] == "unavailable" and body["store"]["disk"]["state"] == "full"
        assert (await get(gw.api_port, "/ready"))[0] == 503
        assert counter.produced <= waiting_at + 1  # it is not polled while it cannot hand over (back-pressure)
        free["bytes"] = 10**12
        await eventually(lambda: gw.store.stats.values_accepted >= waiting_at + 1 and not gw._queue.qsize())
        assert (await get(gw.api_port, "/health"))[1]["status"] == "ok"
    finally:
        await gw.stop()
    gw = Gateway(gateway_config(tmp_path))
    await gw.start()
    try:
        def stored() -> list[float]:
            with gw.store.reader() as r:
                return list(r.history("/counter/n", None, None).column("double").to_pylist())
        values = stored()
        assert values == [float(i) for i in range(1, counter.produced + 1)]  # every value read, in order, none lost
        assert counter.status.values_dropped == 0
    finally:
        await gw.stop()
