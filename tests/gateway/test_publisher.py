"""Forwarding from one gateway to a SiteWise-compatible endpoint (another gateway), over real HTTP."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from sitewise_edge.publish.requests import build_requests
from sitewise_edge.samples import from_columns, to_sitewise_values
from tests.conftest import eventually, free_port, gateway_config

NOW_NS = time.time_ns() - 60 * 10**9


def edge_config(tmp_path: Path, cloud_port: int, models: bool = True, **extra: Any) -> Any:
    sections: dict[str, Any] = {
        "gateway": {"name": "edge", "data_dir": str(tmp_path / "edge")},
        "publishers": [{"name": "cloud", "type": "sitewise", "endpoint_url": f"http://127.0.0.1:{cloud_port}",
                        "batch_interval": "50ms", "max_retry_interval": "500ms"}],
        **extra,
    }
    if not models:
        sections["models"] = []
    return gateway_config(tmp_path, **sections)


def cloud_config(tmp_path: Path, port: int) -> Any:
    return gateway_config(tmp_path, gateway={"name": "cloud", "data_dir": str(tmp_path / "cloud")},
                          api={"host": "127.0.0.1", "port": port})


async def rows_at(gw: Any, stream: str) -> list[dict[str, Any]]:
    table = await gw.query(lambda r: r.history(stream, None, None))
    return to_sitewise_values(table)


def test_requests_respect_sitewise_limits() -> None:
    streams = [f"/s{i % 13}" for i in range(1000)]
    batch = from_columns(streams, [NOW_NS + i for i in range(1000)], double=[float(i) for i in range(1000)])
    lanes = build_requests(batch, 4)
    requests = [r for lane in lanes for r in lane]
    assert all(len(r) <= 10 for r in requests)
    lane_of: dict[str, int] = {}
    for i, lane in enumerate(lanes):  # one stream, one lane: its values go out in order
        for entries in lane:
            for e in entries:
                assert lane_of.setdefault(e["propertyAlias"], i) == i
    seen = 0
    for entries in requests:
        ids = [e["entryId"] for e in entries]
        assert len(set(ids)) == len(ids)
        for e in entries:
            assert 1 <= len(e["propertyValues"]) <= 10
            stamps = [(v["timestamp"]["timeInSeconds"], v["timestamp"]["offsetInNanos"]) for v in e["propertyValues"]]
            assert stamps == sorted(stamps)
            seen += len(stamps)
    assert seen == 1000


def test_unaliased_properties_are_sent_by_id() -> None:
    batch = from_columns(["asset:a1/p1"], [NOW_NS], double=[1.0])
    (entry,) = build_requests(batch)[0][0]
    assert entry["assetId"] == "a1" and entry["propertyId"] == "p1" and "propertyAlias" not in entry


async def test_values_reach_the_endpoint_with_types_times_and_qualities(tmp_path: Path, start_gateway: Any) -> None:
    cloud = await start_gateway(cloud_config(tmp_path, 0))
    edge = await start_gateway(edge_config(tmp_path, cloud.api_port))
    batch = from_columns(
        ["/plant1/line1/press1/temperature"] * 3 + ["/plant1/line1/press1/state", "/unmapped/tag"],
        [NOW_NS + 1, NOW_NS + 2, NOW_NS + 3, NOW_NS + 4, NOW_NS + 5],
        double=[1.5, None, 2.5, None, None], integer=[None, None, None, 1111, None],
        string=[None, None, None, None, "text"], quality=[0, 1, 2, 0, 0],
    )
    await edge.ingest(batch)
    temp = await eventually(lambda: _rows_when(cloud, "/plant1/line1/press1/temperature", 3))
    assert temp == await rows_at(edge, "/plant1/line1/press1/temperature")
    assert [v["quality"] for v in temp] == ["GOOD", "BAD", "UNCERTAIN"]
    state = await eventually(lambda: _rows_when(cloud, "/plant1/line1/press1/state", 1))
    assert state[0]["value"] == {"integerValue": 1111}
    free = await eventually(lambda: _rows_when(cloud, "/unmapped/tag", 1))  # forwarded by alias, no asset
    assert free[0]["value"] == {"stringValue": "text"}
    # the endpoint stores a value before the publisher has read the answer: wait for the count
    await eventually(lambda: edge.publishers[0].stats.values_sent == 5)


async def _rows_when(gw: Any, stream: str, n: int) -> list[dict[str, Any]] | None:
    rows = await rows_at(gw, stream)
    return rows if len(rows) >= n else None


async def test_outage_then_everything_delivered(tmp_path: Path, start_gateway: Any) -> None:
    port = free_port()
    edge = await start_gateway(edge_config(tmp_path, port))
    streams = [f"/outage/s{i % 7}" for i in range(700)]
    await edge.ingest(from_columns(streams, [NOW_NS + i for i in range(700)], double=[float(i) for i in range(700)]))
    pub = edge.publishers[0]
    await eventually(lambda: pub.stats.retries >= 2)  # the endpoint is down: the publisher keeps trying
    assert pub.stats.values_sent == 0
    cloud = await start_gateway(cloud_config(tmp_path, port))
    await eventually(lambda: pub.stats.values_sent == 700, within=30)
    total = 0
    for i in range(7):
        rows = await rows_at(cloud, f"/outage/s{i}")
        times = [v["timestamp"]["offsetInNanos"] for v in rows]
        assert times == sorted(times)  # time order per stream
        total += len(rows)
    assert total == 700


async def test_permanent_rejections_go_to_the_dead_letter_file(tmp_path: Path, start_gateway: Any) -> None:
    cloud = await start_gateway(cloud_config(tmp_path, 0))
    edge = await start_gateway(edge_config(tmp_path, cloud.api_port, models=False))
    # the edge has no models, so it accepts an integer for a property the endpoint knows as DOUBLE
    await edge.ingest(from_columns(["/plant1/line1/press1/temperature", "/plant1/line1/press1/temperature"],
                                   [NOW_NS + 1, NOW_NS + 2], integer=[7, 8]))
    await edge.ingest(from_columns(["/ok"], [NOW_NS + 3], double=[1.0]))
    pub = edge.publishers[0]
    await eventually(lambda: pub.stats.values_rejected == 2 and pub.stats.values_sent == 1)
    lines = [json.loads(x) for x in pub.deadletter_path.read_text().splitlines()]
    assert sum(len(x["entry"]["propertyValues"]) for x in lines) == 2
    assert all("InvalidRequestException" in x["reason"] and "DOUBLE" in x["reason"] for x in lines)
    assert await rows_at(cloud, "/ok")


async def test_cursor_survives_a_restart_without_resending(tmp_path: Path, start_gateway: Any) -> None:
    cloud = await start_gateway(cloud_config(tmp_path, 0))
    cfg = edge_config(tmp_path, cloud.api_port)
    edge = await start_gateway(cfg)
    values = [float(i) for i in range(50)]
    await edge.ingest(from_columns(["/r/a"] * 50, [NOW_NS + i for i in range(50)], double=values))
    await eventually(lambda: edge.publishers[0].stats.values_sent == 50)
    await eventually(lambda: (tmp_path / "edge" / "cursors" / "publisher-cloud.json").exists())
    await edge.stop()
    edge2 = await start_gateway(cfg)
    await edge2.ingest(from_columns(["/r/a"], [NOW_NS + 100], double=[100.0]))
    await eventually(lambda: edge2.publishers[0].stats.values_sent >= 1)
    assert edge2.publishers[0].stats.values_sent == 1  # only the new value
    assert len(await rows_at(cloud, "/r/a")) == 51


@pytest.fixture(autouse=True)
def _short_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")


async def test_nan_is_delivered_and_values_sitewise_refuses_are_dead_lettered_before_sending(
    tmp_path: Path, start_gateway: Any
) -> None:
    cloud = await start_gateway(cloud_config(tmp_path, 0))
    edge = await start_gateway(edge_config(tmp_path, cloud.api_port, models=False))
    await edge.ingest(from_columns(["/n/x", "/n/x", "/n/x", "/n/y"], [NOW_NS + 1, NOW_NS + 2, NOW_NS + 3, NOW_NS + 4],
                                   double=[float("nan"), float("inf"), 1.0, None], integer=[None, None, None, 2**40]))
    pub = edge.publishers[0]
    await eventually(lambda: pub.stats.values_sent == 2 and pub.stats.values_rejected == 2)
    delivered = await rows_at(cloud, "/n/x")
    assert [v["value"] for v in delivered] == [{"doubleValue": "NaN"}, {"doubleValue": 1.0}]
    reasons = [json.loads(x)["reason"] for x in pub.deadletter_path.read_text().splitlines()]
    assert any("infinite" in r for r in reasons) and any("32-bit" in r for r in reasons)


async def test_authentication_errors_are_retried_not_dead_lettered(tmp_path: Path, start_gateway: Any) -> None:
    cloud = await start_gateway(gateway_config(tmp_path, gateway={"name": "cloud", "data_dir": str(tmp_path / "c")},
                                               api={"host": "127.0.0.1", "port": 0, "token": "right"}))
    edge = await start_gateway(edge_config(tmp_path, cloud.api_port))
    await edge.ingest(from_columns(["/auth/x"], [NOW_NS], double=[1.0]))
    pub = edge.publishers[0]
    await eventually(lambda: pub.stats.retries >= 2)
    assert pub.stats.state == "auth-error"
    assert pub.stats.values_rejected == 0 and not pub.deadletter_path.exists()
