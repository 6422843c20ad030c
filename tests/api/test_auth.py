"""Authentication clients already speak (issue 14): SigV4 with configured keys, SiteWise Edge's
``Authenticate``, the dashboard's session, the bearer token, over real boto3, the real AWS CLI and raw HTTP.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from sitewise_edge.config import parse_config
from sitewise_edge.errors import ConfigError
from tests.conftest import ROOT, gateway_config

TEMP = "/plant1/line1/press1/temperature"
READER = ("EDGEREADER00000001", "reader-secret-0123456789")
WRITER = ("EDGEWRITER00000001", "writer-secret-0123456789")
TOKEN = "script-token-0123456789"
USERS = [{"name": "operator", "password": "operator-pass", "access": "read"},
         {"name": "engineer", "password": "engineer-pass", "access": "write"}]


def put_request(value: float = 66.6) -> dict[str, Any]:
    return {"entries": [{"entryId": "e", "propertyAlias": TEMP, "propertyValues": [
        {"value": {"doubleValue": value}, "timestamp": {"timeInSeconds": int(time.time()) - 5, "offsetInNanos": 0},
         "quality": "GOOD"}]}]}


def api_section(**extra: Any) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": 0, "auth": "read", "token": TOKEN, "users": USERS,
            "access_keys": [{"id": READER[0], "secret": READER[1], "access": "read"},
                            {"id": WRITER[0], "secret": WRITER[1], "access": "write"}], **extra}


@pytest.fixture
async def gw(tmp_path: Path, start_gateway: Any) -> Any:
    return await start_gateway(gateway_config(tmp_path, api=api_section()))


def client(port: int, key: tuple[str, str], token: str | None = None, region: str = "us-east-1",
           scheme: str = "http", verify: str | bool = True) -> Any:
    return boto3.client("iotsitewise", region_name=region, endpoint_url=f"{scheme}://127.0.0.1:{port}",
                        aws_access_key_id=key[0], aws_secret_access_key=key[1], aws_session_token=token,
                        verify=verify, config=botocore.config.Config(inject_host_prefix=False,
                                                                     retries={"max_attempts": 1}))


async def call(c: Any, operation: str, **kwargs: Any) -> Any:
    return await asyncio.to_thread(getattr(c, operation), **kwargs)


async def error_of(c: Any, operation: str, **kwargs: Any) -> tuple[str, int]:
    with pytest.raises(botocore.exceptions.ClientError) as err:
        await call(c, operation, **kwargs)
    return err.value.response["Error"]["Code"], err.value.response["ResponseMetadata"]["HTTPStatusCode"]


def failures(gw: Any) -> dict[str, int]:
    return dict(gw._server.config.app.state.auth.failures)  # the API app's Authenticator


# --- SigV4 with configured keys ---------------------------------------------------------------


async def test_a_read_only_key_reads_and_cannot_write(gw: Any) -> None:
    writer, reader = client(gw.api_port, WRITER), client(gw.api_port, READER)
    assert (await call(writer, "batch_put_asset_property_value", **put_request()))["errorEntries"] == []
    latest = await call(reader, "get_asset_property_value", propertyAlias=TEMP)
    assert latest["propertyValue"]["value"] == {"doubleValue": 66.6}
    rows = await call(reader, "execute_query", queryStatement="SELECT 1 AS one")  # a read that is a POST
    assert rows["rows"] == [{"data": [{"scalarValue": "1"}]}]
    assert await error_of(reader, "batch_put_asset_property_value", **put_request(1.0)) == ("AccessDeniedException",
                                                                                           403)
    assert await error_of(reader, "create_asset_model", assetModelName="Nope") == ("AccessDeniedException", 403)
    model = await call(writer, "create_asset_model", assetModelName="Pump")  # a control-plane write
    await call(writer, "delete_asset_model", assetModelId=model["assetModelId"])  # a bodyless DELETE
    assert failures(gw) == {"AccessDeniedException": 2}


@pytest.mark.parametrize(("key", "code"), [
    ((READER[0], "not-the-secret-000000"), "InvalidSignatureException"),
    (("EDGEUNKNOWN0000001", READER[1]), "UnrecognizedClientException"),
], ids=["wrong-secret", "unknown-key"])
async def test_wrong_credentials_get_aws_codes_and_are_counted(gw: Any, key: tuple[str, str], code: str) -> None:
    c = client(gw.api_port, key)
    assert await error_of(c, "get_asset_property_value", propertyAlias=TEMP) == (code, 403)
    assert await error_of(c, "batch_put_asset_property_value", **put_request()) == (code, 403)
    assert failures(gw) == {code: 2}
    assert gw.store.stats.values_accepted == 0


async def test_a_wrong_key_is_refused_even_where_no_credentials_are_needed(tmp_path: Path,
                                                                          start_gateway: Any) -> None:
    """With ``auth: write`` reads are open; a client that signs with a wrong secret is still told so."""
    gw = await start_gateway(gateway_config(tmp_path, api=api_section(auth="write")))
    assert (await call(client(gw.api_port, READER), "get_asset_property_value", propertyAlias=TEMP))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        assert (await http.get("/properties/latest", params={"propertyAlias": TEMP})).status_code == 200
    assert await error_of(client(gw.api_port, (READER[0], "x" * 20)), "get_asset_property_value",
                          propertyAlias=TEMP) == ("InvalidSignatureException", 403)


async def test_missing_credentials_are_refused_and_counted(gw: Any) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        r = await http.get("/properties/latest", params={"propertyAlias": TEMP})
        assert r.status_code == 401
        assert r.headers["x-amzn-errortype"] == "UnauthorizedException"
        assert "SigV4" in r.json()["message"]
        assert (await http.get("/health")).status_code == 200  # orchestrators need no key
    assert failures(gw) == {"UnauthorizedException": 1}


def signed(method: str, url: str, body: bytes, key: tuple[str, str], amz_date: str | None = None,
           region: str = "us-east-1") -> dict[str, str]:
    """The headers botocore's signer gives a request, signed at ``amz_date`` (default: now)."""
    request = AWSRequest(method=method, url=url, data=body, headers={"content-type": "application/json"})
    signer = SigV4Auth(Credentials(*key), "iotsitewise", region)
    if amz_date is None:
        signer.add_auth(request)
    else:
        request.context["timestamp"] = amz_date
        request.headers["X-Amz-Date"] = amz_date
        request.headers["host"] = url.split("/")[2]
        canonical = signer.canonical_request(request)
        signature = signer.signature(signer.string_to_sign(request, canonical), request)
        request.headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={key[0]}/{amz_date[:8]}/{region}/iotsitewise/aws4_request, "
            f"SignedHeaders={signer.signed_headers(signer.headers_to_sign(request))}, Signature={signature}")
    return dict(request.headers.items())


async def test_a_body_changed_after_signing_is_refused(gw: Any) -> None:
    url = f"http://127.0.0.1:{gw.api_port}/properties"
    body = json.dumps(put_request(1.0)).encode()
    headers = signed("POST", url, body, WRITER)
    async with httpx.AsyncClient() as http:
        r = await http.post(url, content=body.replace(b"1.0", b"9.0"), headers=headers)
        assert r.status_code == 403, r.text
        assert r.headers["x-amzn-errortype"] == "InvalidSignatureException"
        r = await http.post(url, content=body, headers=headers)
        assert r.status_code == 200, r.text
        headers["x-amz-content-sha256"] = hashlib.sha256(b"other").hexdigest()
        r = await http.post(url, content=body, headers=headers)
        assert r.headers["x-amzn-errortype"] == "InvalidSignatureException"


async def test_a_signature_older_than_15_minutes_is_refused(gw: Any) -> None:
    url = f"http://127.0.0.1:{gw.api_port}/properties/latest?propertyAlias=%2Fplant1%2Fline1%2Fpress1%2Ftemperature"
    old = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() - 16 * 60))
    recent = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() - 10 * 60))
    async with httpx.AsyncClient() as http:
        r = await http.get(url, headers=signed("GET", url, b"", READER, old))
        assert r.status_code == 403
        assert r.headers["x-amzn-errortype"] == "InvalidSignatureException"
        assert r.json()["message"].startswith(f"Signature expired: {old}")
        r = await http.get(url, headers=signed("GET", url, b"", READER, recent))
        assert r.status_code == 200, r.text


@pytest.mark.parametrize("authorization", [
    "AWS4-HMAC-SHA256 Credential=EDGEREADER00000001/20260101/x/iotsitewise/aws4_request",
    "AWS4-HMAC-SHA256 garbage",
], ids=["no-signature", "garbage"])
async def test_a_malformed_signature_is_a_clear_400(gw: Any, authorization: str) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        r = await http.get("/properties/latest", params={"propertyAlias": TEMP},
                           headers={"authorization": authorization, "x-amz-date": "20260101T000000Z"})
    assert r.status_code == 400
    assert r.headers["x-amzn-errortype"] == "IncompleteSignatureException"
    assert "Credential, SignedHeaders, Signature" in r.json()["message"]


async def test_the_bearer_token_still_works_beside_the_keys(gw: Any) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        r = await http.post("/properties", json=put_request(), headers={"authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200, r.text
        r = await http.post("/properties", json=put_request(), headers={"authorization": "Bearer wrong"})
        assert r.status_code == 401


def aws_cli(port: int, key: tuple[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": key[0], "AWS_SECRET_ACCESS_KEY": key[1],
           "AWS_DEFAULT_REGION": "eu-central-1", "AWS_CONFIG_FILE": os.devnull,
           "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
           "AWS_MAX_ATTEMPTS": "1"}
    return subprocess.run([sys.executable, "-m", "awscli", "iotsitewise", *args,
                           "--endpoint-url", f"http://127.0.0.1:{port}", "--output", "json"],
                          capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)


async def test_the_aws_cli_signs_with_the_configured_keys(gw: Any) -> None:
    put = json.dumps(put_request())
    out = await asyncio.to_thread(aws_cli, gw.api_port, WRITER, "batch-put-asset-property-value",
                                  "--cli-input-json", put)
    assert out.returncode == 0, out.stderr
    out = await asyncio.to_thread(aws_cli, gw.api_port, READER, "get-asset-property-value", "--property-alias", TEMP)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["propertyValue"]["value"] == {"doubleValue": 66.6}
    out = await asyncio.to_thread(aws_cli, gw.api_port, READER, "batch-put-asset-property-value",
                                  "--cli-input-json", put)
    assert out.returncode != 0
    assert "AccessDeniedException" in out.stderr
    out = await asyncio.to_thread(aws_cli, gw.api_port, (READER[0], "wrong-secret-000000000"),
                                  "get-asset-property-value", "--property-alias", TEMP)
    assert out.returncode != 0
    assert "InvalidSignatureException" in out.stderr


# --- Authenticate (SiteWise Edge) ----------------------------------------------------------------


async def test_authenticate_hands_out_temporary_keys_that_sign(gw: Any) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        r = await http.post("/authenticate", json={"username": "engineer", "password": "engineer-pass",
                                                   "authMechanism": "linux"})
    assert r.status_code == 200, r.text
    creds = r.json()
    assert set(creds) == {"accessKeyId", "secretAccessKey", "sessionToken", "region"}
    assert creds["region"] == "edge"
    c = client(gw.api_port, (creds["accessKeyId"], creds["secretAccessKey"]), creds["sessionToken"], region="edge")
    assert (await call(c, "batch_put_asset_property_value", **put_request()))["errorEntries"] == []
    without_token = client(gw.api_port, (creds["accessKeyId"], creds["secretAccessKey"]))
    assert await error_of(without_token, "get_asset_property_value",
                          propertyAlias=TEMP) == ("UnrecognizedClientException", 403)


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"username": "engineer", "password": "wrong-password", "authMechanism": "linux"}, 403, "AccessDeniedException"),
    ({"username": "nobody", "password": "engineer-pass", "authMechanism": "ldap"}, 403, "AccessDeniedException"),
    ({"username": "engineer", "authMechanism": "linux"}, 400, "IllegalArgumentException"),
    ({"username": "engineer", "password": "engineer-pass", "authMechanism": "kerberos"}, 400,
     "IllegalArgumentException"),
    ([1, 2], 400, "IllegalArgumentException"),
], ids=["wrong-password", "unknown-user", "no-password", "unknown-mechanism", "not-an-object"])
async def test_authenticate_refusals(gw: Any, body: Any, status: int, code: str) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        r = await http.post("/authenticate", json=body)
    assert r.status_code == status, r.text
    assert r.headers["x-amzn-errortype"] == code
    assert "engineer-pass" not in r.text


# --- the dashboard's session -----------------------------------------------------------------------


async def test_signing_in_gives_a_session_cookie_with_the_users_access(gw: Any) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
        page = await http.get("/login")
        assert page.status_code == 200 and 'type="password"' in page.text
        r = await http.post("/auth/login", json={"username": "operator", "password": "wrong-password"})
        assert r.status_code == 403 and "set-cookie" not in r.headers
        r = await http.post("/auth/login", json={"username": "operator", "password": "operator-pass"})
        assert r.status_code == 200, r.text
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        assert (await http.get("/auth/session")).json() == {"user": "operator", "access": "read"}
        assert (await http.get("/properties/latest", params={"propertyAlias": TEMP})).status_code == 200
        r = await http.post("/properties", json=put_request())
        assert r.status_code == 403 and r.headers["x-amzn-errortype"] == "AccessDeniedException"
        await http.post("/auth/logout")
        assert (await http.get("/properties/latest", params={"propertyAlias": TEMP})).status_code == 401
        r = await http.post("/auth/login", json={"username": "engineer", "password": "engineer-pass"})
        assert (await http.post("/properties", json=put_request())).status_code == 200
        # a forged cookie is no session
        http.cookies.clear()
        http.cookies.set("sitewise_edge_session", "forged")
        assert (await http.get("/properties/latest", params={"propertyAlias": TEMP})).status_code == 401


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(("api", "message"), [
    ({"access_keys": [{"id": "EDGEREADER00000001", "secret": "short"}]},
     "api.access_keys[0].secret: String should have at least 16 characters"),
    ({"access_keys": [{"id": "bad id with spaces", "secret": "s" * 20}]}, "api.access_keys[0].id: String should match"),
    ({"access_keys": [{"id": READER[0], "secret": READER[1], "access": "admin"}]},
     "api.access_keys[0].access: unknown access 'admin'; expected one of read, write"),
    ({"access_keys": [{"id": READER[0], "secret": READER[1]}, {"id": READER[0], "secret": WRITER[1]}]},
     f"api.access_keys[1]: {READER[0]!r} is listed twice"),
    ({"users": [{"name": "op", "password": "1234"}]}, "api.users[0].password: String should have at least 8"),
    ({"host": "0.0.0.0"}, "set token, access_keys or users"),
    ({"tls": {"cert": "cert.pem"}}, "api.tls.key: required key is missing"),
], ids=["short-secret", "bad-id", "bad-access", "duplicate-key", "short-password", "exposed", "tls-half"])
def test_bad_auth_configuration_is_named(api: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"api": api}, env={})
    text = "\n".join(str(i) for i in err.value.issues)
    assert message in text
    assert "short" not in text.replace("short-", "") and "1234" not in text  # a secret is never echoed


def test_keys_alone_may_expose_the_api() -> None:
    config = parse_config({"api": {"host": "0.0.0.0", "auth": "read", "access_keys": [
        {"id": READER[0], "secret": "${READER_SECRET}"}]}}, env={"READER_SECRET": READER[1]})
    assert config.api.access_keys[0].secret == READER[1]
    assert READER[1] not in repr(config)
