"""Browser and network exposure (issue 9, item 6): CSRF, DNS rebinding, ``api.auth: read``, redaction.

A browser is played by raw HTTP with the headers a browser sends (``Origin``, a ``text/plain`` body, a
foreign ``Host``); the SDKs by real boto3 and the real AWS CLI, which must keep working unchanged.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import botocore.exceptions
import httpx
import pytest

from tests.conftest import ROOT, ended, eventually, free_port, gateway_config, sitewise_client

TEMP = "/plant1/line1/press1/temperature"
TOKEN = "test-token-0123456789"
PUT = {"entries": [{"entryId": "e", "propertyAlias": TEMP, "propertyValues": [
    {"value": {"doubleValue": 66.6}, "timestamp": {"timeInSeconds": int(time.time()) - 5, "offsetInNanos": 0},
     "quality": "GOOD"}]}]}


def api_section(**extra: Any) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": 0, **extra}


@pytest.fixture
async def gw(tmp_path: Path, start_gateway: Any) -> Any:
    return await start_gateway(gateway_config(tmp_path, api=api_section(allowed_origins=["https://grafana.plant"],
                                                                        allowed_hosts=["*.plant.local"])))


def base(gw: Any) -> str:
    return f"http://127.0.0.1:{gw.api_port}"


async def stored(gw: Any) -> int:
    return int(gw.store.stats.values_accepted)


# --- CSRF -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("headers", "status", "code"), [
    ({"content-type": "text/plain", "origin": "http://evil.example"}, 403, "AccessDeniedException"),
    ({"content-type": "text/plain"}, 415, "InvalidRequestException"),  # a form or a no-cors fetch
    ({"content-type": "application/x-www-form-urlencoded"}, 415, "InvalidRequestException"),
    ({"content-type": "application/json", "origin": "http://evil.example"}, 403, "AccessDeniedException"),
    ({"content-type": "application/json", "origin": "null"}, 403, "AccessDeniedException"),  # a sandboxed frame
    ({}, 415, "InvalidRequestException"),  # a body without a type
], ids=["text-plain-cross-origin", "text-plain", "form", "json-cross-origin", "null-origin", "untyped"])
async def test_a_write_a_web_page_can_send_is_refused(gw: Any, headers: dict[str, str], status: int,
                                                     code: str) -> None:
    async with httpx.AsyncClient(base_url=base(gw)) as http:
        r = await http.post("/properties", content=json.dumps(PUT).encode(), headers=headers)
        assert r.status_code == status, r.text
        assert r.headers["x-amzn-errortype"] == code
        r = await http.post("/asset-models", content=b'{"assetModelName": "Evil"}', headers=headers)
        assert r.status_code == status
    assert await stored(gw) == 0
    assert not [m for m in gw.registry.models() if m.name == "Evil"]


@pytest.mark.parametrize("origin", [None, "SAME", "https://grafana.plant"], ids=["no-origin", "same-origin",
                                                                                 "allowed-origin"])
async def test_a_json_write_from_an_allowed_origin_is_accepted(gw: Any, origin: str | None) -> None:
    headers = {"content-type": "application/json; charset=utf-8"}
    if origin is not None:
        headers["origin"] = base(gw) if origin == "SAME" else origin
    async with httpx.AsyncClient(base_url=base(gw)) as http:
        r = await http.post("/properties", content=json.dumps(PUT).encode(), headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"errorEntries": []}


async def test_a_cross_origin_read_is_refused_too_when_it_is_a_post(gw: Any) -> None:
    """A POST read (ExecuteQuery) costs the gateway work: a foreign page cannot make it run."""
    async with httpx.AsyncClient(base_url=base(gw)) as http:
        r = await http.post("/queries/execution", content=b'{"queryStatement": "SELECT 1"}',
                            headers={"content-type": "application/json", "origin": "http://evil.example"})
    assert r.status_code == 403


# --- DNS rebinding ----------------------------------------------------------------------------


@pytest.mark.parametrize(("host", "ok"), [
    ("evil.example", False), ("evil.example:8080", False), ("127.0.0.1.evil.example", False),
    ("localhost", True), ("data.localhost:8080", True), ("127.0.0.1", True), ("[::1]:8080", True),
    ("gw.plant.local", True), ("plant.local.evil.example", False),
])
async def test_the_host_header_must_name_this_gateway(gw: Any, host: str, ok: bool) -> None:
    async with httpx.AsyncClient(base_url=base(gw)) as http:
        r = await http.get("/properties/latest", params={"propertyAlias": TEMP}, headers={"host": host})
    if ok:
        assert r.status_code == 200, r.text
    else:
        assert r.status_code == 400
        assert r.json()["message"] == (f"the Host header {host!r} is not a name of this gateway: "
                                       "add it to api.allowed_hosts")


async def test_boto3_keeps_working_with_every_check_on(gw: Any) -> None:
    client = sitewise_client(gw.api_port)
    resp = await asyncio.to_thread(client.batch_put_asset_property_value, **PUT)
    assert resp["errorEntries"] == []
    model = await asyncio.to_thread(client.create_asset_model, assetModelName="Pump")
    await asyncio.to_thread(client.delete_asset_model, assetModelId=model["assetModelId"])  # a bodyless DELETE
    latest = await asyncio.to_thread(client.get_asset_property_value, propertyAlias=TEMP)
    assert latest["propertyValue"]["value"] == {"doubleValue": 66.6}


def aws_cli(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
           "AWS_DISABLE_HOST_PREFIX_INJECTION": "true"}  # a local endpoint has no data. subdomain (README)
    return subprocess.run([sys.executable, "-m", "awscli", "iotsitewise", *args,
                           "--endpoint-url", f"http://127.0.0.1:{port}", "--output", "json"],
                          capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)


async def test_the_aws_cli_keeps_working_with_every_check_on(gw: Any) -> None:
    out = await asyncio.to_thread(aws_cli, gw.api_port, "batch-put-asset-property-value", "--cli-input-json",
                                  json.dumps(PUT))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"errorEntries": []}
    out = await asyncio.to_thread(aws_cli, gw.api_port, "get-asset-property-value", "--property-alias", TEMP)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["propertyValue"]["value"] == {"doubleValue": 66.6}


# --- auth: read -------------------------------------------------------------------------------


@pytest.fixture
async def locked(tmp_path: Path, start_gateway: Any) -> Any:
    return await start_gateway(gateway_config(tmp_path, api=api_section(token=TOKEN, auth="read")))


def with_token(client: Any) -> Any:
    def add(request: Any, **_: Any) -> None:
        request.headers["x-api-token"] = TOKEN

    client.meta.events.register("before-sign.iotsitewise.*", add)
    return client


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", f"/properties/latest?propertyAlias={TEMP}", None),
    ("GET", f"/properties/history?propertyAlias={TEMP}", None),
    ("POST", "/queries/execution", {"queryStatement": "SELECT 1"}),
    ("POST", "/properties/batch/latest", {"entries": [{"entryId": "e", "propertyAlias": TEMP}]}),
    ("GET", "/deadletters", None), ("GET", "/publishers", None), ("GET", "/dashboard/values", None),
    ("GET", "/asset-models", None), ("POST", "/properties", PUT),
], ids=lambda v: v if isinstance(v, str) else None)
async def test_auth_read_needs_the_token_for_every_read(locked: Any, method: str, path: str,
                                                        body: dict[str, Any] | None) -> None:
    content = json.dumps(body).encode() if body is not None else None
    headers = {"content-type": "application/json"} if body is not None else {}
    async with httpx.AsyncClient(base_url=base(locked)) as http:
        r = await http.request(method, path, content=content, headers=headers)
        assert r.status_code == 401, r.text
        assert r.headers["x-amzn-errortype"] == "UnauthorizedException"
        r = await http.request(method, path, content=content, headers={**headers, "authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200, r.text
        r = await http.request(method, path, content=content, headers={**headers, "x-api-token": TOKEN + "x"})
        assert r.status_code == 401


async def test_auth_read_leaves_health_and_the_dashboard_page_open(locked: Any) -> None:
    async with httpx.AsyncClient(base_url=base(locked)) as http:
        assert (await http.get("/health")).status_code == 200
        page = await http.get("/")
        assert page.status_code == 200 and "#token=" in page.text  # how the page gets its token


async def test_auth_read_with_boto3(locked: Any) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as err:
        await asyncio.to_thread(sitewise_client(locked.api_port).get_asset_property_value, propertyAlias=TEMP)
    assert err.value.response["Error"]["Code"] == "UnauthorizedException"
    client = with_token(sitewise_client(locked.api_port))
    assert (await asyncio.to_thread(client.batch_put_asset_property_value, **PUT))["errorEntries"] == []
    rows = await asyncio.to_thread(client.execute_query, queryStatement="SELECT 1 AS one")
    assert rows["rows"] == [{"data": [{"scalarValue": "1"}]}]


async def test_auth_write_keeps_reads_open_and_writes_closed(tmp_path: Path, start_gateway: Any) -> None:
    gw = await start_gateway(gateway_config(tmp_path, api=api_section(token=TOKEN)))
    client = sitewise_client(gw.api_port)
    await asyncio.to_thread(client.get_asset_property_value, propertyAlias=TEMP)
    await asyncio.to_thread(client.execute_query, queryStatement="SELECT 1")
    with pytest.raises(botocore.exceptions.ClientError) as err:
        await asyncio.to_thread(client.batch_put_asset_property_value, **PUT)
    assert err.value.response["Error"]["Code"] == "UnauthorizedException"


def test_auth_read_without_a_token_is_a_configuration_error() -> None:
    from sitewise_edge.config import parse_config
    from sitewise_edge.errors import ConfigError

    with pytest.raises(ConfigError, match="auth: read needs a token"):
        parse_config({"api": {"auth": "read"}}, env={})
    with pytest.raises(ConfigError, match="unknown auth 'all'; expected one of write, read"):
        parse_config({"api": {"auth": "all", "token": "x"}}, env={})


# --- a password inside an endpoint URL -----------------------------------------------------------


async def test_a_password_in_an_endpoint_shows_nowhere(tmp_path: Path) -> None:
    """A real gateway process whose OPC UA source cannot connect: the error it logs and shows in /health
    names the endpoint, without its password."""
    port, dead = free_port(), free_port()
    config = tmp_path / "gateway.yaml"
    config.write_text(f"""
gateway: {{name: redact, data_dir: {tmp_path / 'data'}}}
api: {{host: 127.0.0.1, port: {port}}}
sources:
  - name: press
    type: opcua
    endpoint: opc.tcp://operator:Sup3rS3cret@127.0.0.1:{dead}
    nodes: [{{node_id: "ns=2;s=T", alias: /t}}]
""")
    proc = subprocess.Popen([sys.executable, "-m", "sitewise_edge", "run", "-c", str(config)], cwd=ROOT,  # noqa: ASYNC220
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            async def failed() -> Any:
                try:
                    health = (await http.get("/health")).json()
                except httpx.TransportError:
                    return None
                return health if health["sources"]["press"]["lastError"] else None

            health = await eventually(failed, within=30)
        proc.terminate()
        _, log = await asyncio.to_thread(proc.communicate, timeout=20)
    finally:
        ended(proc)
    shown = json.dumps(health)
    assert f"opc.tcp://operator:***@127.0.0.1:{dead}" in shown
    assert "Sup3rS3cret" not in shown, [m for m in re.findall(r".{0,160}Sup3rS3cret.{0,40}", shown)]
    assert "Sup3rS3cret" not in log


def test_the_log_of_the_gateway_process_redacts_passwords_in_urls() -> None:
    """Whoever logs a URL with a password (asyncua does, on a failed connect), the line shows ``***``."""
    script = ("import logging; from sitewise_edge.cli import _setup_logging; _setup_logging('info'); "
              "logging.getLogger('asyncua.client').warning('connect to %s failed', 'opc.tcp://op:Sup3rS3cret@plc:4840');"
              "logging.getLogger('x').error('no URL here: %d', 7)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert "connect to opc.tcp://op:***@plc:4840 failed" in out.stderr
    assert "no URL here: 7" in out.stderr
    assert "Sup3rS3cret" not in out.stderr
