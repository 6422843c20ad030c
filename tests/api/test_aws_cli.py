"""The AWS CLI (a second real client) against a gateway: the new operations, their paging and errors; Host prefixes.

The CLI runs with ``AWS_DISABLE_HOST_PREFIX_INJECTION=true`` (README); a client that cannot turn
the prefix off sends ``Host: data.<host>`` or ``api.<host>``, which the gateway accepts as ``<host>``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from tests.api.test_control_plane import LINE1, MACHINE, PRESS1, SPEED, api, create_pump_model, tqv
from tests.api.test_exposure import aws_cli

__all__ = ["api"]

LOOSE = "/site/cli/level"


async def cli(port: int, *args: str) -> Any:
    out = await asyncio.to_thread(aws_cli, port, *args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout) if out.stdout.strip() else None


async def test_aws_cli_time_series_and_asset_properties(api: Any) -> None:
    gw, client = api
    await client("batch_put_asset_property_value", entries=[
        {"entryId": "e", "propertyAlias": LOOSE, "propertyValues": [tqv(4.0, 1_700_000_000)]}])
    port = gw.api_port
    listed = await cli(port, "list-time-series", "--time-series-type", "DISASSOCIATED")
    assert [s["alias"] for s in listed["TimeSeriesSummaries"]] == [LOOSE]
    # the CLI pages by itself: --page-size 4 is several requests, one answer
    props = await cli(port, "list-asset-properties", "--asset-id", PRESS1, "--filter", "ALL", "--page-size", "4")
    assert len(props["assetPropertySummaries"]) == len(gw.registry.asset(PRESS1).properties)
    described = await cli(port, "describe-time-series", "--asset-id", PRESS1, "--property-id", SPEED)
    assert described["alias"] == "/plant1/line1/press1/speed"
    await cli(port, "disassociate-time-series-from-asset-property", "--alias", described["alias"],
              "--asset-id", PRESS1, "--property-id", SPEED)
    assert gw.registry.property(PRESS1, SPEED).alias is None
    await cli(port, "associate-time-series-to-asset-property", "--alias", described["alias"],
              "--asset-id", PRESS1, "--property-id", SPEED)
    assert gw.registry.property(PRESS1, SPEED).alias == described["alias"]


@pytest.mark.parametrize(("args", "expected"), [
    (("describe-time-series", "--alias", "/no/such/stream"),
     "(ResourceNotFoundException) when calling the DescribeTimeSeries operation: Time series /no/such/stream"),
    (("describe-default-encryption-configuration",),
     "(NotImplementedException) when calling the DescribeDefaultEncryptionConfiguration operation: "
     "DescribeDefaultEncryptionConfiguration is not supported"),
], ids=["not-found", "not-supported"])
async def test_aws_cli_errors_name_the_problem(api: Any, args: tuple[str, ...], expected: str) -> None:
    gw, _ = api
    out = await asyncio.to_thread(aws_cli, gw.api_port, *args)
    assert out.returncode != 0
    assert expected in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize(("host", "ok"), [
    ("data.127.0.0.1", True), ("api.127.0.0.1:8080", True), ("data.localhost", True),
    ("data.evil.example", False), ("data.", False), ("monitor.evil.example", False),
])
async def test_a_host_prefix_before_a_name_of_this_gateway_is_accepted(api: Any, host: str, ok: bool) -> None:
    gw, _ = api
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        r = await http.get("/timeseries/describe/", params={"assetId": PRESS1, "propertyId": SPEED},
                           headers={"host": host})
    assert r.status_code == (200 if ok else 400), r.text
    if ok:
        assert r.json()["propertyId"] == SPEED


async def test_aws_cli_modelling_operations(api: Any) -> None:
    gw, client = api
    port = gw.api_port
    props = await cli(port, "list-asset-model-properties", "--asset-model-id", MACHINE, "--page-size", "10")
    assert [p["name"] for p in props["assetModelPropertySummaries"]] == [
        p.name for p in gw.registry.model(MACHINE).properties]
    path = await cli(port, "list-asset-relationships", "--asset-id", PRESS1, "--traversal-type", "PATH_TO_ROOT")
    assert path["assetRelationshipSummaries"][0]["hierarchyInfo"] == {"parentAssetId": LINE1, "childAssetId": PRESS1}
    assert await cli(port, "list-asset-model-composite-models", "--asset-model-id", MACHINE) == {
        "assetModelCompositeModelSummaries": []}
    model_id = await create_pump_model(client)
    asset_id = (await client("create_asset", assetName="Pump 1", assetModelId=model_id))["assetId"]
    updated = await cli(port, "update-asset", "--asset-id", asset_id, "--asset-name", "Feed pump")
    assert updated["assetStatus"]["state"] == "UPDATING" and gw.registry.asset(asset_id).name == "Feed pump"
    out = await asyncio.to_thread(aws_cli, port, "update-asset-model", "--asset-model-id", MACHINE,
                                  "--asset-model-name", "Machine")
    assert out.returncode != 0
    assert "(InvalidRequestException) when calling the UpdateAssetModel operation" in out.stderr
    assert "defined in the configuration file" in out.stderr
