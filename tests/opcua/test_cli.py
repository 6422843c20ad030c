"""``sitewise-edge opcua cert`` and ``sitewise-edge opcua browse`` as a user runs them (subprocesses), against
real asyncua servers in this process (so the commands run with asyncio's subprocess API: the servers go on
answering meanwhile)."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest
import yaml

from connectors.opcua import pki
from connectors.opcua.security import load_certificate
from sitewise_edge.simulators.opcua import OpcUaSimulator
from tests.opcua.conftest import USERS

live = pytest.mark.asyncio(loop_scope="module")
ROOT = Path(__file__).resolve().parents[2]


async def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sitewise_edge", *args, cwd=ROOT, env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(60):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def gateway_file(tmp_path: Path, endpoint: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump({"gateway": {"data_dir": "data"}, "sources": [{
        "name": "press", "type": "opcua", "endpoint": endpoint, "timeout": "3s",
        "security_policy": "Basic256Sha256", "security_mode": "SignAndEncrypt",
        "username": "operator", "password": "${OPCUA_PASSWORD}",
        "nodes": [{"node_id": "ns=2;s=Press1.Speed", "alias": "/p/speed"}]}]}))
    return path


@live
async def test_cert_creates_then_shows_the_same_certificate(tmp_path: Path) -> None:
    config = gateway_file(tmp_path, "opc.tcp://127.0.0.1:4840")
    env = {"OPCUA_PASSWORD": "x"}
    code, out, err = await cli("opcua", "cert", "-c", str(config), "--source", "press", env=env)
    assert code == 0, err
    own = tmp_path / "data" / "pki" / "opcua" / "own" / "cert.der"
    cert = load_certificate(own, "x")
    assert f"client certificate  {own} (generated now)" in out
    assert f"SHA-256             {pki.fingerprint(cert)}" in out
    assert f"application URI     {pki.default_application_uri()}" in out
    assert re.search(r"valid\s+\d{4}-\d\d-\d\d to \d{4}-\d\d-\d\d \(UTC\)", out)
    assert f"server trust        trust list {tmp_path / 'data' / 'pki' / 'opcua'}" in out
    code, again, _ = await cli("opcua", "cert", "-c", str(config), env=env)
    assert code == 0 and "(generated earlier)" in again and pki.fingerprint(cert) in again
    code, _, err = await cli("opcua", "cert", "-c", str(config), "--source", "nope", env=env)
    assert code == 2 and "--source: no OPC UA source 'nope' (the file has press)" in err


@live
async def test_browse_a_secured_server_after_trusting_it(secure_sim: OpcUaSimulator, tmp_path: Path) -> None:
    """First attempt: refused, the server's certificate lands in rejected/; ``opcua cert --trust`` moves it;
    then the browse prints the variables with their node ids, types and values."""
    config = gateway_file(tmp_path, secure_sim.endpoint)
    env = {"OPCUA_PASSWORD": USERS["operator"]}
    code, _, err = await cli("opcua", "browse", "-c", str(config), "/Plant1/Line1", "--depth", "2", env=env)
    assert code == 2 and "is not trusted: it was saved as" in err and "Traceback" not in err
    (rejected,) = (tmp_path / "data" / "pki" / "opcua" / "rejected").iterdir()
    code, out, err = await cli("opcua", "cert", "-c", str(config), "--trust", str(rejected), env=env)
    assert code == 0, err
    assert not rejected.exists() and (tmp_path / "data" / "pki" / "opcua" / "trusted" / rejected.name).exists()
    assert "trusted/ (1)" in out and "rejected/ (0): empty" in out
    code, out, err = await cli("opcua", "browse", "-c", str(config), "/Plant1/Line1", "--depth", "2", env=env)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["BROWSE", "PATH", "NODE", "ID", "CLASS", "TYPE", "VALUE"]
    assert lines[1].split() == ["/Plant1/Line1/Press1", "ns=2;s=Press1", "Object"]
    speed = next(line.split() for line in lines if line.startswith("/Plant1/Line1/Press1/Speed "))
    assert speed[:3] == ["/Plant1/Line1/Press1/Speed", "ns=2;s=Press1.Speed", "Variable"] and speed[3] == "Double"
    float(speed[4])
    assert len(lines) == 1 + 3 + 30  # three machines, ten signals each
    assert 'select them with browse: {include: ["/Plant1/Line1/**"]}' in err


@live
async def test_browse_errors_exit_2_without_traceback(sim: OpcUaSimulator) -> None:
    code, _, err = await cli("opcua", "browse", sim.endpoint, "/Plant1/Line9")
    assert (code, err.strip().splitlines()[-1]) == (2, "error: browse path '/Plant1/Line9' not found: /Plant1 has "
                                                       "no 'Line9' (it has Line1)")
    code, _, err = await cli("opcua", "browse", "opc.tcp://127.0.0.1:9", "--timeout", "2")
    assert code == 2 and "cannot connect: Connection refused" in err and "Traceback" not in err
    code, out, err = await cli("opcua", "browse", sim.endpoint, "/Plant1/Line1/Oven1")
    assert code == 0, err
    assert any(line.split()[:4] == ["/Plant1/Line1/Oven1/Status", "ns=2;s=Oven1.Status", "Variable", "String"]
               for line in out.splitlines())
