"""Operations (issue 14): /metrics, JSON log lines, ``--version``, ``sitewise-edge status``, the LICENSE."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT, gateway_config, sitewise_client

TEMP = "/plant1/line1/press1/temperature"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_metrics_show_the_store_the_api_and_refused_credentials(tmp_path: Path, start_gateway: Any) -> None:
    gw = await start_gateway(gateway_config(tmp_path, api={
        "host": "127.0.0.1", "port": 0, "auth": "read", "token": "metrics-token-0123",
        "access_keys": [{"id": "EDGEREADER00000001", "secret": "reader-secret-0123456789"}]}))
    headers = {"authorization": "Bearer metrics-token-0123"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}", headers=headers) as http:
        put = {"entries": [{"entryId": "e", "propertyAlias": TEMP, "propertyValues": [
            {"value": {"doubleValue": 1.5}, "timestamp": {"timeInSeconds": int(gw.clock.time()) - 5}}]}]}
        assert (await http.post("/properties", json=put)).status_code == 200
        for _ in range(3):
            assert (await http.get("/properties/latest", params={"propertyAlias": TEMP})).status_code == 200
        assert (await http.get("/health", headers={"authorization": "Bearer wrong"})).status_code == 200
        assert (await http.get("/properties/latest", headers={"authorization": "Bearer wrong"})).status_code == 401
        assert (await http.get("/metrics", headers={"authorization": ""})).status_code == 401  # auth: read
        r = await http.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=")
    m = samples(r.text)
    assert m[("sitewise_edge_store_values_accepted_total", ())] == gw.store.stats.values_accepted >= 1
    assert m[("sitewise_edge_up", ())] == 1 and m[("sitewise_edge_ready", ())] == 1
    assert m[("sitewise_edge_api_requests_total", (("operation", "/properties/latest"), ("status", "200")))] == 3
    assert m[("sitewise_edge_api_requests_total", (("operation", "/properties"), ("status", "200")))] == 1
    assert m[("sitewise_edge_api_request_seconds_count", (("operation", "/properties/latest"),))] == 3
    assert m[("sitewise_edge_api_auth_failures_total", (("code", "UnauthorizedException"),))] == 2
    # with SigV4 keys configured, a wrong signature is counted under its own code
    client = sitewise_client(gw.api_port)  # signs with key id "test": not one of the gateway's
    with pytest.raises(Exception, match="UnrecognizedClientException"):
        await asyncio.to_thread(client.get_asset_property_value, propertyAlias=TEMP)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}", headers=headers) as http:
        m = samples((await http.get("/metrics")).text)
    assert m[("sitewise_edge_api_auth_failures_total", (("code", "UnrecognizedClientException"),))] == 1


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sitewise_edge", *args], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)


def test_version_is_the_packages() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    out = run_cli("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"sitewise-edge {project['version']}"


def test_the_license_file_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License") and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_json_log_lines_redact_and_carry_exceptions() -> None:
    script = ("import logging, sys; from sitewise_edge.cli import _setup_logging; _setup_logging('info', 'json');"
              "logging.getLogger('asyncua.client').warning('connect to %s failed', 'opc.tcp://op:Sup3rS3cret@plc:4840');"
              "\ntry:\n    1/0\nexcept ZeroDivisionError:\n"
              "    logging.getLogger('sitewise_edge.x').exception('boom %d', 7)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT)
    lines = [json.loads(line) for line in out.stderr.splitlines()]
    assert lines[0]["message"] == "connect to opc.tcp://op:***@plc:4840 failed"
    assert lines[0]["level"] == "WARNING" and lines[0]["logger"] == "asyncua.client"
    assert lines[0]["time"].endswith("+00:00")
    assert lines[1]["message"] == "boom 7" and "ZeroDivisionError" in lines[1]["exception"]
    assert "Sup3rS3cret" not in out.stderr


def test_an_unknown_log_format_is_refused() -> None:
    out = run_cli("--log-format", "xml", "--version")
    assert out.returncode == 2
    assert "invalid choice: 'xml'" in out.stderr


async def test_status_prints_the_overview_of_a_running_gateway(tmp_path: Path, start_gateway: Any) -> None:
    gw = await start_gateway(gateway_config(tmp_path))
    url = f"http://127.0.0.1:{gw.api_port}"
    async with httpx.AsyncClient(base_url=url) as http:
        put = {"entries": [{"entryId": "e", "propertyAlias": TEMP, "propertyValues": [
            {"value": {"doubleValue": 1.5}, "timestamp": {"timeInSeconds": int(gw.clock.time()) - 5}}]}]}
        assert (await http.post("/properties", json=put)).status_code == 200
    out = await asyncio.to_thread(run_cli, "status", "--url", url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"gateway test at {url}: OK")
    assert f"{gw.store.stats.values_accepted} values accepted" in out.stdout
    assert "sources (0)" in out.stdout and "publishers (0)" in out.stdout
    out = await asyncio.to_thread(run_cli, "status", "--url", url, "--json")
    assert json.loads(out.stdout)["store"]["valuesAccepted"] == gw.store.stats.values_accepted


def test_status_without_a_gateway_says_so() -> None:
    from tests.conftest import free_port

    port = free_port()
    out = run_cli("status", "--url", f"http://127.0.0.1:{port}")
    assert out.returncode == 1
    assert f"error: no gateway answers at http://127.0.0.1:{port}: " in out.stderr
    assert "Traceback" not in out.stderr
    out = run_cli("status")
    assert out.returncode == 2 and "-c gateway.yaml or --url" in out.stderr
