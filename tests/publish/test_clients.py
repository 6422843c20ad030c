"""The one client factory, against real endpoints: botocore's retries off, the API token, unsigned requests."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from sitewise_edge.config import SitewisePublisher
from sitewise_edge.publish.clients import sitewise_client
from sitewise_edge.publish.retry import sitewise_policy
from tests.conftest import gateway_config
from tests.gateway.fault_endpoint import FaultEndpoint

NOW_S = int(time.time()) - 60
ENTRY = {"entryId": "e0", "propertyAlias": "/clients/x", "propertyValues": [
    {"value": {"doubleValue": 1.5}, "timestamp": {"timeInSeconds": NOW_S, "offsetInNanos": 0}, "quality": "GOOD"}]}


@pytest.fixture
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")


@pytest.fixture
def _no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def publisher(url: str, **kw: Any) -> SitewisePublisher:
    return SitewisePublisher.model_validate({"name": "cloud", "type": "sitewise", "endpoint_url": url, **kw})


async def put(client: Any) -> dict[str, Any]:
    answer: dict[str, Any] = await asyncio.to_thread(client.batch_put_asset_property_value, entries=[ENTRY],
                                                     enablePartialEntryProcessing=True)
    return answer


@pytest.mark.usefixtures("_credentials")
async def test_botocore_does_not_retry_behind_the_policy() -> None:
    async with FaultEndpoint() as endpoint:
        endpoint.fail_next(1, 503, "ServiceUnavailableException")
        client = await asyncio.to_thread(sitewise_client, publisher(endpoint.url))
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            await put(client)
        assert len(endpoint.requests) == 1  # one attempt: the publisher's policy decides about the next
        assert sitewise_policy(0.5, 60.0).classify_error(raised.value).retryable
        assert (await put(client))["errorEntries"] == [] and len(endpoint.received) == 1


@pytest.mark.usefixtures("_credentials")
async def test_the_api_token_reaches_a_gateway_that_requires_one(tmp_path: Path, start_gateway: Any) -> None:
    cloud = await start_gateway(gateway_config(tmp_path, api={"host": "127.0.0.1", "port": 0, "token": "right"}))
    url = f"http://127.0.0.1:{cloud.api_port}"
    with_token = await asyncio.to_thread(sitewise_client, publisher(url, token="right"))
    assert (await put(with_token))["errorEntries"] == []
    without = await asyncio.to_thread(sitewise_client, publisher(url))
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        await put(without)
    failure = sitewise_policy(0.5, 60.0).classify_error(raised.value)
    assert failure.retryable and failure.auth  # credentials can be fixed while the publisher waits


@pytest.mark.usefixtures("_no_credentials")
async def test_without_credentials_a_local_endpoint_gets_unsigned_requests(caplog: pytest.LogCaptureFixture) -> None:
    async with FaultEndpoint() as endpoint:
        with caplog.at_level("INFO", logger="sitewise_edge.publish.clients"):
            client = await asyncio.to_thread(sitewise_client, publisher(endpoint.url))
        assert any("sending unsigned requests" in r.getMessage() for r in caplog.records)
        assert (await put(client))["errorEntries"] == [] and len(endpoint.received) == 1
