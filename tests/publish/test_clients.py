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


def entries_of_every_kind() -> list[dict[str, Any]]:
    def tqv(value: dict[str, Any], n: int, quality: str = "GOOD") -> dict[str, Any]:
        stamp = {"timeInSeconds": NOW_S + n, "offsetInNanos": 999_999_999}
        return {"value": value, "timestamp": stamp, "quality": quality}

    return [
        {"entryId": "e0", "propertyAlias": "/clients/dbl", "propertyValues": [
            tqv({"doubleValue": 1.5}, 0), tqv({"doubleValue": float("nan")}, 1, "BAD"), tqv({"doubleValue": -0.0}, 2),
            tqv({"doubleValue": 1e-300}, 3, "UNCERTAIN")]},
        {"entryId": "e1", "assetId": "5f3a0b7e-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
         "propertyId": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "propertyValues": [tqv({"integerValue": -2**31}, 0)]},
        {"entryId": "e2", "propertyAlias": "/clients/str \"q\" ü", "propertyValues": [
            tqv({"stringValue": "x: NaN, \"quoted\" \u00e9 \u2603 \n"}, 0), tqv({"booleanValue": False}, 1),
            tqv({"nullValue": {"valueType": "D"}}, 2)]},
    ]


@pytest.mark.usefixtures("_credentials")
async def test_the_fast_body_is_botocore_s_own_and_still_signed() -> None:
    """The publisher's client encodes the body itself (no per-value validation and serialisation in
    botocore): byte for byte what a plain boto3 client sends, signed by botocore, accepted."""
    import boto3
    import botocore.config

    async with FaultEndpoint() as endpoint:
        sent: list[tuple[bytes, str]] = []

        def capture(request: Any, **_: Any) -> None:
            sent.append((bytes(request.body), request.headers.get("Authorization", b"").decode()))

        plain = boto3.client("iotsitewise", region_name="eu-west-1", endpoint_url=endpoint.url,
                             config=botocore.config.Config(inject_host_prefix=False))
        fast = await asyncio.to_thread(sitewise_client, publisher(endpoint.url))
        for client in (plain, fast):
            client.meta.events.register("before-send.iotsitewise.*", capture)
            answer = await asyncio.to_thread(client.batch_put_asset_property_value, entries=entries_of_every_kind(),
                                             enablePartialEntryProcessing=True)
            assert answer["errorEntries"] == []
        (plain_body, plain_auth), (fast_body, fast_auth) = sent
        assert fast_body == plain_body and b'"NaN"' in fast_body
        assert fast_auth.startswith("AWS4-HMAC-SHA256 Credential=test/") and plain_auth.startswith("AWS4-HMAC-SHA256")
        assert len(endpoint.received) == 2 * 8
