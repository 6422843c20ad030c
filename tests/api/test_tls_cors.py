"""HTTPS from a configured certificate (and ``sitewise-edge tls generate``), and CORS (issue 14)."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from sitewise_edge.errors import ConfigError
from tests.api.test_auth import READER, TEMP, WRITER, api_section, call, client, put_request
from tests.conftest import ROOT, gateway_config


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed pair made by the real command, as a user makes it."""
    out = tmp_path_factory.mktemp("tls")
    done = subprocess.run([sys.executable, "-m", "sitewise_edge", "tls", "generate", "--out", str(out),
                           "--host", "gateway-line1.plant.local"], capture_output=True, text=True, timeout=60,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "tls: {cert:" in done.stdout
    cert, key = out / "cert.pem", out / "key.pem"
    assert key.stat().st_mode & 0o077 == 0  # the key is its owner's alone
    return cert, key


@pytest.fixture
async def https_gw(tmp_path: Path, start_gateway: Any, pair: tuple[Path, Path]) -> Any:
    cert, key = pair
    return await start_gateway(gateway_config(tmp_path, api=api_section(tls={"cert": str(cert), "key": str(key)})))


async def test_boto3_signs_over_https_with_the_generated_certificate(https_gw: Any, pair: tuple[Path, Path]) -> None:
    cert = str(pair[0])
    writer = client(https_gw.api_port, WRITER, scheme="https", verify=cert)
    assert (await call(writer, "batch_put_asset_property_value", **put_request()))["errorEntries"] == []
    reader = client(https_gw.api_port, READER, scheme="https", verify=cert)
    latest = await call(reader, "get_asset_property_value", propertyAlias=TEMP)
    assert latest["propertyValue"]["value"] == {"doubleValue": 66.6}
    async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=cert)) as http:
        r = await http.get(f"https://localhost:{https_gw.api_port}/health")
        assert r.status_code == 200
        r = await http.post(f"https://localhost:{https_gw.api_port}/auth/login",
                            json={"username": "operator", "password": "operator-pass"})
        assert "Secure" in r.headers["set-cookie"]  # a session cookie over HTTPS never travels in clear
    with pytest.raises(httpx.TransportError):  # plain HTTP to the HTTPS port
        async with httpx.AsyncClient() as http:
            await http.get(f"http://127.0.0.1:{https_gw.api_port}/health")


async def test_the_aws_cli_over_https(https_gw: Any, pair: tuple[Path, Path]) -> None:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": READER[0], "AWS_SECRET_ACCESS_KEY": READER[1],
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
           "AWS_DISABLE_HOST_PREFIX_INJECTION": "true"}
    out = await asyncio.to_thread(subprocess.run, [
        sys.executable, "-m", "awscli", "iotsitewise", "list-asset-models", "--endpoint-url",
        f"https://127.0.0.1:{https_gw.api_port}", "--ca-bundle", str(pair[0]), "--output", "json"],
        capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "assetModelSummaries" in json.loads(out.stdout)


@pytest.mark.parametrize("broken", ["missing", "not-pem", "other-key"])
async def test_a_certificate_that_does_not_load_is_a_configuration_error(tmp_path: Path, start_gateway: Any,
                                                                        pair: tuple[Path, Path], broken: str) -> None:
    cert, key = pair
    if broken == "missing":
        key = tmp_path / "nope.pem"
    elif broken == "not-pem":
        key = tmp_path / "key.pem"
        key.write_text("not a key\n")
    else:
        other = tmp_path / "other"
        await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "sitewise_edge", "tls", "generate", "--out",
                                                 str(other)], check=True, capture_output=True, timeout=60, cwd=ROOT)
        key = other / "key.pem"
    with pytest.raises(ConfigError) as err:
        await start_gateway(gateway_config(tmp_path, api=api_section(tls={"cert": str(cert), "key": str(key)})))
    message = str(err.value.issues[0])
    assert message.startswith("api.tls: ")
    assert ("nope.pem" in message and "tls generate" in message) if broken == "missing" else "do not load" in message


async def test_cors_lets_the_configured_origin_read_and_keeps_others_out(tmp_path: Path, start_gateway: Any) -> None:
    gw = await start_gateway(gateway_config(tmp_path, api=api_section(cors={"origins": ["https://grafana.plant"]})))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        preflight = await http.options("/properties/latest", headers={
            "origin": "https://grafana.plant", "access-control-request-method": "GET",
            "access-control-request-headers": "authorization,x-amz-date,x-amz-security-token"})
        assert preflight.status_code == 200, preflight.text  # no credentials needed for a preflight
        assert preflight.headers["access-control-allow-origin"] == "https://grafana.plant"
        assert "x-amz-date" in preflight.headers["access-control-allow-headers"].lower()
        assert preflight.headers["access-control-max-age"] == "600"
        refused = await http.get("/properties/latest", params={"propertyAlias": TEMP},
                                 headers={"origin": "https://grafana.plant"})
        assert refused.status_code == 401  # CORS opens the browser's door, not the gateway's
        assert refused.headers["access-control-allow-origin"] == "https://grafana.plant"  # the page sees why
        assert refused.headers["access-control-expose-headers"].lower().startswith("x-amzn-errortype")
        other = await http.options("/properties/latest", headers={
            "origin": "https://evil.example", "access-control-request-method": "GET"})
        assert other.status_code == 400
        assert "access-control-allow-origin" not in other.headers
