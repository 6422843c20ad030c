"""``sitewise-edge models pull`` against a gateway as the SiteWise endpoint; a second gateway loads the files."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from sitewise_edge import cli
from tests.conftest import gateway_config, sitewise_client

MACHINE = "b17cff1d-0f50-4a16-bb5c-b976b38ccfa1"
LINE = "4a384ff5-835e-47b0-9e23-247b35d30658"
MACHINES_HIERARCHY = "a21b66a1-b82f-41f1-a62a-c0c60c7a044c"
LINE1 = "b2fb3ddf-f62c-4302-9796-c73c8ea2c296"


@pytest.fixture(autouse=True)
def _aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The standard credential chain, as a user's shell would set it (never the developer's own files)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


def call(client: Any, op: str, **kwargs: Any) -> Any:
    return asyncio.to_thread(getattr(client, op), **kwargs)


def body(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


async def pull(port: int, out: Path, *extra: str) -> int:
    argv = ["models", "pull", "--endpoint-url", f"http://127.0.0.1:{port}", "--region", "us-east-1",
            "--out", str(out), *extra]
    return await asyncio.to_thread(cli.main, argv)


async def test_pulled_files_load_into_a_gateway_that_answers_the_same(tmp_path: Path, start_gateway: Any) -> None:
    source = await start_gateway(gateway_config(tmp_path / "a"))
    client = sitewise_client(source.api_port)
    # objects created through the API are pulled like the configuration's
    model_id = (await call(client, "create_asset_model", assetModelName="Pump", assetModelProperties=[
        {"name": "Flow", "dataType": "DOUBLE", "unit": "m3/h", "type": {"measurement": {}}}]))["assetModelId"]
    pump = (await call(client, "create_asset", assetName="Pump 1", assetModelId=model_id,
                       assetDescription="feed pump"))["assetId"]
    flow = source.registry.model(model_id).properties[0].id
    await call(client, "update_asset_property", assetId=pump, propertyId=flow, propertyAlias="/plant1/pump1/flow",
               propertyNotificationState="ENABLED")
    press9 = (await call(client, "create_asset", assetName="Press9", assetModelId=MACHINE))["assetId"]
    await call(client, "associate_assets", assetId=LINE1, hierarchyId=MACHINES_HIERARCHY, childAssetId=press9)

    out = tmp_path / "pulled"
    assert await pull(source.api_port, out) == 0
    names = sorted(p.name for p in out.glob("*.json"))
    assert "associations.json" in names
    assert f"asset-model-{model_id}.json" in names and f"asset-{pump}.json" in names
    assert json.loads((out / f"asset-{pump}.json").read_text())["assetName"] == "Pump 1"

    copy = await start_gateway(gateway_config(tmp_path / "b", models=[{"path": str(out)}]))
    mirror = sitewise_client(copy.api_port)
    assert len(copy.registry.assets()) == len(source.registry.assets())
    for asset in source.registry.assets():
        want = body(await call(client, "describe_asset", assetId=asset.id))
        assert body(await call(mirror, "describe_asset", assetId=asset.id)) == want
    for model in source.registry.models():
        want = body(await call(client, "describe_asset_model", assetModelId=model.id))
        assert body(await call(mirror, "describe_asset_model", assetModelId=model.id)) == want
    want = body(await call(client, "list_associated_assets", assetId=LINE1, hierarchyId=MACHINES_HIERARCHY))
    got = body(await call(mirror, "list_associated_assets", assetId=LINE1, hierarchyId=MACHINES_HIERARCHY))
    assert got == want and press9 in [a["id"] for a in got["assetSummaries"]]
    assert copy.registry.property_by_alias("/plant1/pump1/flow").asset_id == pump


async def test_pull_one_model_brings_the_models_of_its_hierarchies(tmp_path: Path, start_gateway: Any) -> None:
    source = await start_gateway(gateway_config(tmp_path / "a"))
    client = sitewise_client(source.api_port)
    await call(client, "create_asset_model", assetModelName="Unrelated")
    out = tmp_path / "pulled"
    assert await pull(source.api_port, out, "--asset-model-id", LINE) == 0
    models = {json.loads(p.read_text())["assetModelName"] for p in out.glob("asset-model-*.json")}
    assert models == {"Line", "Machine"}
    await start_gateway(gateway_config(tmp_path / "b", models=[{"path": str(out)}]))


async def test_pull_reports_an_unreachable_endpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import free_port

    assert await pull(free_port(), tmp_path / "out") == 1
    assert "error: models pull:" in capsys.readouterr().err


@pytest.mark.parametrize("endpoint", [[], ["--endpoint-url", "http://127.0.0.1:9"]], ids=["aws", "gateway"])
async def test_pull_without_a_region_says_how_to_give_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str],
                                                          endpoint: list[str]) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    argv = ["models", "pull", *endpoint, "--out", str(tmp_path / "out")]
    assert await asyncio.to_thread(cli.main, argv) == 1
    err = capsys.readouterr().err
    assert "error: models pull: no AWS region: pass --region, or set AWS_REGION or AWS_DEFAULT_REGION" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()
