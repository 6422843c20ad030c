"""Disk pressure: the reserve takes old history first and then refuses writes (never unforwarded data); the
budget takes history, then the oldest unforwarded data, counted; a real gateway answers 503 with the reason."""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import boto3
import httpx
import numpy as np
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from sitewise_edge.clock import NS_PER_DAY
from sitewise_edge.config import StorageConfig
from sitewise_edge.errors import DiskFull
from sitewise_edge.samples import from_columns
from storage import segments
from storage.store import Store
from tests.conftest import ended, free_port
from tests.storage.test_crash import start
from tests.storage.test_store import T0, batch

OLD_DAY = T0 - 5 * 86400 * 10**9


class SmallDisk:
    """A file system of ``capacity`` bytes that holds the store alone: free = capacity - what the store uses."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.store: Store | None = None

    def __call__(self, path: Path) -> int:
        assert self.store is not None
        return max(0, self.capacity - self.store.disk_usage())


async def filled_store(tmp_path: Path, disk: SmallDisk, reserve: str) -> Store:
    """Five old days of history (compacted, forwarded) and today's data a publisher has not forwarded."""
    store = Store(tmp_path, StorageConfig(compact_interval="1h", segment_size="8KiB", disk_reserve=reserve),
                  free_space=disk)
    disk.store = store
    await store.open()
    done = store.cursor("publisher-cloud")
    for i in range(40):
        await store.append(from_columns(["/h"] * 500, [OLD_DAY + (i // 8) * 86400 * 10**9 + i * 10**9 + k
                                                       for k in range(500)],
                                        double=np.random.default_rng(i).normal(size=500)))
    await store.compact()
    _, forwarded = store.read(done, 10**9)
    store.save_cursor("publisher-cloud", forwarded)  # the history was forwarded
    await store.compact()  # its WAL segments go
    for i in range(20):
        await store.append(batch(i, 500))
    await store.compact()
    return store


def unforwarded(store: Store) -> int:
    rows, _ = store.read(store.cursor("publisher-cloud"), 10**9)
    return int(rows.num_rows)


async def test_under_the_reserve_history_goes_first_then_writes_are_refused(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    disk = SmallDisk(10**12)
    store = await filled_store(tmp_path, disk, "1MiB")
    history = sum(f.stat().st_size for f in (tmp_path / "parquet").glob("day=*/*.parquet")
                  if segments.day_folder(OLD_DAY)[:11] in str(f.parent))
    assert unforwarded(store) == 20 * 500 and history > 0
    # the disk fills up (another program): less than the reserve free, more than enough history to delete
    disk.capacity = store.disk_usage() + 2**20 - history // 2
    store.state.disk.checked_at = None
    with caplog.at_level(logging.WARNING, "storage.retention"):
        await store.append(batch(100, 10))  # accepted: old history made room
    assert not list((tmp_path / "parquet").glob(f"{segments.day_folder(OLD_DAY)}*"))
    assert "under storage.disk_reserve 1.0 MiB: removed the history of" in caplog.text
    assert "max_disk" not in caplog.text
    assert store.stats.values_lost == 0 and unforwarded(store) == 20 * 500 + 10
    # nothing deletable is left but data not yet forwarded: writes are refused, that data stays
    disk.capacity = store.disk_usage() + 2**19
    store.state.disk.checked_at = None
    with pytest.raises(DiskFull, match=r"KiB free, under storage.disk_reserve 1\.0 MiB: writes are refused") as info:
        await store.append(batch(101, 10))
    assert info.value.free is not None and 2**19 <= info.value.free < 2**20 and info.value.reserve == 2**20
    today = segments.day_folder(store.state.clock.time_ns() // NS_PER_DAY * NS_PER_DAY)
    assert all(p.name >= today for p in (tmp_path / "parquet").glob("day=*"))  # every old day went first
    assert store.disk_status()["state"] == "full" and store.stats.values_lost == 0
    assert unforwarded(store) == 20 * 500 + 10
    disk.capacity = 10**12  # space freed: writes are accepted again
    store.state.disk.checked_at = None
    await store.append(batch(102, 10))
    assert store.disk_status()["state"] == "ok" and unforwarded(store) == 20 * 500 + 20
    await store.close()


async def test_past_max_disk_the_oldest_unforwarded_data_goes_counted(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = await filled_store(tmp_path, SmallDisk(10**12), "1MiB")
    before = unforwarded(store)
    store.config = store.config.model_copy(update={"max_disk": store.disk_usage() // 3})
    with caplog.at_level(logging.WARNING, "storage.retention"):
        await store.enforce_budget()
    assert store.disk_usage() <= store.config.max_disk
    assert not list((tmp_path / "parquet").glob(f"{segments.day_folder(OLD_DAY)}*"))  # history first
    assert store.stats.values_lost > 0 and unforwarded(store) + store.stats.values_lost == before
    assert "storage.max_disk" in caplog.text and "not yet forwarded by publisher-cloud were deleted" in caplog.text
    await store.close()


def test_a_gateway_under_its_reserve_answers_503_with_the_reason(tmp_path: Path) -> None:
    """The real process, the real free-space probe: a reserve larger than any disk refuses every write."""
    port = free_port()
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(f"gateway: {{name: full, data_dir: {tmp_path / 'data'}}}\napi: {{port: {port}}}\n"
                   "storage: {disk_reserve: 1000TiB}\n")
    proc = start(cfg)
    try:
        sw = boto3.client("iotsitewise", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{port}",
                          aws_access_key_id="t", aws_secret_access_key="t",
                          config=BotoConfig(inject_host_prefix=False, retries={"max_attempts": 1}))
        with pytest.raises(ClientError) as info:
            sw.batch_put_asset_property_value(entries=[{"entryId": "e", "propertyAlias": "/disk/a", "propertyValues": [
                {"value": {"doubleValue": 1.0}, "timestamp": {"timeInSeconds": int(T0 // 10**9)}}]}])
        err = info.value.response
        assert err["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert err["Error"]["Code"] == "ServiceUnavailableException"
        assert "under storage.disk_reserve 1000.00 TiB: writes are refused" in err["Error"]["Message"]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            health = http.get("/health")
            assert health.status_code == 503 and health.json()["status"] == "unavailable"
            assert health.json()["reasons"][0]["component"] == "disk" and health.json()["reasons"][0]["blocksIngest"]
            disk = health.json()["store"]["disk"]
            assert disk["state"] == "full" and "writes are refused" in disk["refusing"]
            ready = http.get("/ready")
            assert ready.status_code == 503 and ready.json()["ready"] is False
            assert http.get("/properties/latest", params={"propertyAlias": "/disk/a"}).status_code in (200, 404)
    finally:
        proc.send_signal(signal.SIGTERM)
        ended(proc, 15)
