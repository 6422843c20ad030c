"""OPC UA security against a real asyncua server: every policy and mode, the trust of the server's certificate
(trust list, pins, trust-any), the generated client certificate, user name and X.509 user identities."""

from __future__ import annotations

import datetime as dt
import logging
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from asyncua import ua
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from connectors.opcua import pki
from connectors.opcua.config import OpcUaSource
from connectors.opcua.connector import make_opcua_connector
from connectors.opcua.security import load_certificate
from sitewise_edge.clock import NS_PER_S, SYSTEM_CLOCK, ManualClock
from sitewise_edge.config import load_config
from sitewise_edge.errors import ConfigError, ConnectorError
from sitewise_edge.simulators.opcua import OpcUaSimulator, example_nodes, generate_certificate
from tests.opcua.conftest import USERS

live = pytest.mark.asyncio(loop_scope="module")
POLICIES = ["Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"]
NODES = example_nodes()[:2]


@pytest.fixture(scope="module")
def user_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("opcua-user")
    cert, key = folder / "user-cert.der", folder / "user-key.pem"
    generate_certificate(cert, key, "operator jane", "urn:sitewise-edge:test-user")
    return cert, key


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(user_cert: tuple[Path, Path]) -> AsyncIterator[OpcUaSimulator]:
    """Every policy (the deprecated Basic256 too), secured endpoints only, users and one user certificate;
    it validates the client certificate's time range and application URI as asyncua's stack does."""
    sim = OpcUaSimulator(port=0, update_interval=0.2, security=True, allow_none=False, users=USERS,
                         user_certificates={"jane": user_cert[0]}, policies=[*POLICIES, "Basic256"])
    await sim.start()
    assert sim.server is not None
    sim.server.iserver.certificate_validator = CertificateValidator(
        CertificateValidatorOptions.BASIC_VALIDATION | CertificateValidatorOptions.PEER_CLIENT)
    yield sim
    await sim.stop()


def trusting(sim: OpcUaSimulator, folder: Path) -> Path:
    """A trust list in ``folder`` that holds the simulator's certificate."""
    assert sim.server_certificate is not None
    (folder / "trusted").mkdir(parents=True, exist_ok=True)
    shutil.copy(sim.server_certificate, folder / "trusted" / "simulator.der")
    return folder


def secured(sim: OpcUaSimulator, pki_dir: Path, **kw: Any) -> OpcUaSource:
    fields: dict[str, Any] = {"name": "sec", "type": "opcua", "endpoint": sim.endpoint, "mode": "poll",
                              "timeout": 3, "security_policy": "Basic256Sha256", "security_mode": "SignAndEncrypt",
                              "pki_dir": pki_dir, "nodes": NODES}
    fields.update(kw)
    return OpcUaSource(**fields)


async def poll_once(cfg: OpcUaSource) -> dict[str, object]:
    """Open, poll, close: the source's connection status (every row GOOD)."""
    connector = make_opcua_connector(cfg)
    await connector.open()
    try:
        batch = await connector.poll()  # type: ignore[union-attr]
        assert batch.num_rows == len(cfg.nodes)
        assert set(batch.column("quality").to_pylist()) == {0}
        return dict(connector.status.connection)
    finally:
        await connector.close()


# --- configuration -------------------------------------------------------------------


def issues(source: dict[str, Any]) -> list[str]:
    from sitewise_edge.config import parse_config

    with pytest.raises(ConfigError) as err:
        parse_config({"sources": [{"name": "s", "type": "opcua", "endpoint": "opc.tcp://h:4840",
                                   "nodes": [{"node_id": "i=1", "alias": "/a"}], **source}]}, {}, "gateway.yaml")
    return [str(i) for i in err.value.issues]


SIGN = {"security_policy": "Basic256Sha256", "security_mode": "Sign"}


@pytest.mark.parametrize(
    ("source", "message"),
    [
        pytest.param({"security_policy": "Basic256", "security_mode": "Sign"},
                     "security_policy Basic256 is deprecated (SHA-1", id="deprecated-basic256"),
        pytest.param({"security_policy": "Basic128Rsa15", "security_mode": "SignAndEncrypt"},
                     "or set allow_deprecated_policies: true", id="deprecated-basic128"),
        pytest.param({**SIGN, "trust_any_server": True, "server_certificate_sha256": "ab" * 32},
                     "server_certificate_sha256 and trust_any_server exclude each other", id="two-trusts"),
        pytest.param({**SIGN, "server_certificate_sha256": "12:34"},
                     "sources[0].server_certificate_sha256: '12:34' is not a SHA-256 fingerprint",
                     id="short-fingerprint"),
        pytest.param({**SIGN, "username": "u", "user_certificate": "u.der", "user_private_key": "u.pem"},
                     "username and user_certificate exclude each other", id="two-identities"),
        pytest.param({"user_certificate": "u.der", "user_private_key": "u.pem"},
                     "user_certificate) needs a security_policy other than None", id="x509-unsecured"),
        pytest.param({**SIGN, "user_certificate": "u.der"}, "user_certificate and user_private_key go together",
                     id="x509-no-key"),
        pytest.param({"security_policy": "Basic512"}, "unknown security policy 'Basic512'", id="unknown-policy"),
    ],
)
def test_security_config_errors(source: dict[str, Any], message: str) -> None:
    found = issues(source)
    assert any(message in i for i in found), found


def test_deprecated_policy_allowed_explicitly() -> None:
    cfg = OpcUaSource(name="s", type="opcua", endpoint="opc.tcp://h:4840", nodes=[{"node_id": "i=1", "alias": "/a"}],
                      security_policy="Basic128Rsa15", security_mode="Sign", allow_deprecated_policies=True)
    assert cfg.security_policy == "Basic128Rsa15"


def test_fingerprint_forms_are_normalised() -> None:
    fp = "AB:" * 31 + "AB"
    cfg = OpcUaSource(name="s", type="opcua", endpoint="opc.tcp://h:4840", nodes=[{"node_id": "i=1", "alias": "/a"}],
                      **SIGN, server_certificate_sha256=fp)
    assert cfg.server_certificate_sha256 == "ab" * 32


def test_pki_dir_defaults_under_the_data_dir(tmp_path: Path) -> None:
    (tmp_path / "gw.yaml").write_text(yaml.safe_dump({
        "gateway": {"data_dir": "state"},
        "sources": [{"name": "s", "type": "opcua", "endpoint": "opc.tcp://h:4840", **SIGN,
                     "nodes": [{"node_id": "i=1", "alias": "/a"}]},
                    {"name": "t", "type": "opcua", "endpoint": "opc.tcp://h:4840", **SIGN, "pki_dir": "/etc/gw/pki",
                     "trust_list": "trust", "nodes": [{"node_id": "i=2", "alias": "/b"}]}]}))
    s, t = load_config(tmp_path / "gw.yaml", env={}).sources
    assert isinstance(s, OpcUaSource) and isinstance(t, OpcUaSource)
    assert s.pki_folder == tmp_path / "state" / "pki" / "opcua"
    assert (t.pki_folder, t.trust_list) == (Path("/etc/gw/pki"), tmp_path / "trust")


# --- pure checks ------------------------------------------------------------------------


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_server_verdict_validity_and_uri() -> None:
    clock = ManualClock(1_800_000_000 * NS_PER_S)
    cert = pki.make_certificate(_key(), "urn:plc1", clock, days=10)
    assert pki.server_verdict(cert, "urn:plc1", clock.time()) is None
    assert pki.server_verdict(cert, None, clock.time()) is None
    assert "made for application urn:plc1, but the server says it is urn:plc2" in (
        pki.server_verdict(cert, "urn:plc2", clock.time()) or "")
    clock.advance(11 * 86400)
    expired = dt.datetime.fromtimestamp(1_800_000_000 + 10 * 86400, dt.UTC)
    assert pki.server_verdict(cert, "urn:plc1", clock.time()) == f"it expired on {expired:%Y-%m-%d %H:%M} UTC"
    assert "is not valid before" in (pki.server_verdict(cert, "urn:plc1", 1_700_000_000) or "")


def test_trust_list_accepts_a_certificate_its_ca_issued(tmp_path: Path) -> None:
    ca_key, leaf_key = _key(), _key()
    now = dt.datetime.now(dt.UTC)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Plant CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "plc1")]))
            .issuer_name(ca_name).public_key(leaf_key.public_key()).serial_number(2).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1)).sign(ca_key, hashes.SHA256()))
    other = pki.make_certificate(_key(), "urn:x", SYSTEM_CLOCK)
    assert not pki.trusted(leaf, tmp_path)
    (tmp_path / "trusted").mkdir()
    (tmp_path / "trusted" / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    assert pki.trusted(leaf, tmp_path)
    assert not pki.trusted(other, tmp_path)
    saved = pki.reject(other, tmp_path)
    assert saved.parent == tmp_path / "rejected" and load_certificate(saved, "x") == other


# --- against the server -----------------------------------------------------------------


@live
@pytest.mark.parametrize("mode", ["Sign", "SignAndEncrypt"])
@pytest.mark.parametrize("policy", POLICIES)
async def test_every_policy_and_mode(server: OpcUaSimulator, tmp_path: Path, policy: str, mode: str) -> None:
    status = await poll_once(secured(server, tmp_path, security_policy=policy, security_mode=mode,
                                     trust_list=trusting(server, tmp_path / "trust")))
    assert (status["securityPolicy"], status["securityMode"], status["serverTrust"]) == (policy, mode, "trust_list")


@live
async def test_deprecated_policy_when_allowed(server: OpcUaSimulator, tmp_path: Path) -> None:
    await poll_once(secured(server, tmp_path, security_policy="Basic256", allow_deprecated_policies=True,
                            trust_list=trusting(server, tmp_path)))


@live
async def test_unknown_server_is_refused_then_trusted(server: OpcUaSimulator, tmp_path: Path) -> None:
    """The default trust list (<pki_dir>): the unknown certificate lands in rejected/, the message says which
    file to move; once it is moved to trusted/, the next open connects."""
    cfg = secured(server, tmp_path, username="operator", password=USERS["operator"])
    connector = make_opcua_connector(cfg)
    with pytest.raises(ConnectorError, match=r"the server certificate \(sitewise-edge simulator, SHA-256 "
                                             r"([0-9A-F]{2}:){31}[0-9A-F]{2}\) is not trusted: it was saved as "
                                             r"'.*/rejected/sitewise-edge_simulator \[[0-9a-f]{16}\]\.der'; if it is "
                                             r"your server's, move that file to '.*/trusted'") as err:
        await connector.open()
    (rejected,) = (tmp_path / "rejected").iterdir()
    assert str(rejected) in str(err.value)
    assert server.server_certificate is not None
    assert load_certificate(rejected, "x") == load_certificate(server.server_certificate, "x")
    rejected.rename(tmp_path / "trusted" / rejected.name)
    await connector.open()
    try:
        assert connector.status.connection["identity"] == "username"
    finally:
        await connector.close()


@live
@pytest.mark.parametrize("good", [True, False], ids=["right", "wrong"])
async def test_pinned_fingerprint(server: OpcUaSimulator, tmp_path: Path, good: bool) -> None:
    assert server.server_certificate is not None
    real = pki.sha256_hex(load_certificate(server.server_certificate, "x"))
    pin = real if good else "00" * 32
    cfg = secured(server, tmp_path, server_certificate_sha256=pin)
    if good:
        status = await poll_once(cfg)
        assert status["serverCertificate"]["sha256"].replace(":", "").lower() == real  # type: ignore[index]
        return
    with pytest.raises(ConnectorError, match=r"is not the pinned one \(server_certificate_sha256 00:00:"):
        await make_opcua_connector(cfg).open()
    assert not (tmp_path / "rejected").exists()


@live
async def test_trust_any_server_is_logged_once(server: OpcUaSimulator, tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    connector = make_opcua_connector(secured(server, tmp_path, trust_any_server=True))
    with caplog.at_level(logging.WARNING, logger="connectors.opcua.connector"):
        for _ in range(2):
            await connector.open()
            await connector.close()
    warnings = [r.getMessage() for r in caplog.records if "trust_any_server" in r.getMessage()]
    assert len(warnings) == 1 and "the server certificate is not checked" in warnings[0]


@live
async def test_generated_client_certificate_is_reused(server: OpcUaSimulator, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """Made at the first start with the application URI the client then presents (the server's validator
    checks that URI against the certificate), reused by a later start, logged with path and fingerprint."""
    seen: list[str] = []
    assert server.server is not None
    validator = server.server.iserver.certificate_validator

    async def record(cert: x509.Certificate, app: ua.ApplicationDescription) -> None:
        seen.append(app.ApplicationUri)
        assert validator is not None
        await validator(cert, app)

    server.server.iserver.certificate_validator = record
    try:
        trust = trusting(server, tmp_path / "trust")
        uri = "urn:line1-gateway:sitewise-edge"
        with caplog.at_level(logging.INFO, logger="connectors.opcua.connector"):
            first = await poll_once(secured(server, tmp_path / "pki", application_uri=uri, trust_list=trust))
        cert = load_certificate(tmp_path / "pki" / "own" / "cert.der", "x")
        assert pki.certificate_uris(cert) == [uri] and seen == [uri]
        assert (tmp_path / "pki" / "own" / "key.pem").stat().st_mode & 0o077 == 0
        assert first["clientCertificate"] == {"path": str(tmp_path / "pki" / "own" / "cert.der"),
                                              "applicationUri": uri, "sha256": pki.fingerprint(cert)}
        assert any(f"generated client certificate {tmp_path / 'pki' / 'own' / 'cert.der'}" in r.getMessage()
                   and pki.fingerprint(cert) in r.getMessage() for r in caplog.records)
        second = await poll_once(secured(server, tmp_path / "pki", application_uri=uri, trust_list=trust))
        assert second["clientCertificate"] == first["clientCertificate"]
        with pytest.raises(ConnectorError, match=r"was made for application urn:line1-gateway:sitewise-edge, not "
                                                 r"urn:other: set application_uri to that, or delete"):
            await make_opcua_connector(secured(server, tmp_path / "pki", application_uri="urn:other",
                                               trust_list=trust)).open()
    finally:
        server.server.iserver.certificate_validator = validator


@live
@pytest.mark.parametrize("known", [True, False], ids=["known-user", "unknown-user"])
async def test_x509_user_identity(server: OpcUaSimulator, tmp_path: Path, user_cert: tuple[Path, Path],
                                  known: bool) -> None:
    cert, key = user_cert
    if not known:
        cert, key = tmp_path / "intruder.der", tmp_path / "intruder.pem"
        generate_certificate(cert, key, "intruder", "urn:intruder")
    cfg = secured(server, tmp_path, user_certificate=cert, user_private_key=key, trust_list=trusting(server, tmp_path))
    if known:
        status = await poll_once(cfg)
        assert status["identity"] == "x509"
        return
    with pytest.raises(ConnectorError, match=r"connection refused: BadIdentityTokenRejected \(user identity: x509\)"):
        await make_opcua_connector(cfg).open()


@live
async def test_password_from_the_environment(server: OpcUaSimulator, tmp_path: Path) -> None:
    (tmp_path / "gw.yaml").write_text(yaml.safe_dump({"gateway": {"data_dir": "data"}, "sources": [{
        "name": "sec", "type": "opcua", "endpoint": server.endpoint, "mode": "poll", "timeout": "3s",
        "security_policy": "Aes256_Sha256_RsaPss", "security_mode": "SignAndEncrypt",
        "trust_list": str(trusting(server, tmp_path / "trust")),
        "username": "${OPCUA_USER}", "password": "${OPCUA_PASSWORD}", "nodes": NODES}]}))
    cfg = load_config(tmp_path / "gw.yaml", env={"OPCUA_USER": "operator", "OPCUA_PASSWORD": USERS["operator"]})
    source = cfg.sources[0]
    assert isinstance(source, OpcUaSource)
    assert (await poll_once(source))["identity"] == "username"
    assert (tmp_path / "data" / "pki" / "opcua" / "own" / "cert.der").exists()


@live
async def test_pinned_certificate_file_of_another_server(server: OpcUaSimulator, tmp_path: Path) -> None:
    """A pinned file that is not the server's is refused by name at once (it used to time out: the server
    could not decrypt a request encrypted for another certificate)."""
    other, other_key = tmp_path / "other.der", tmp_path / "other.pem"
    generate_certificate(other, other_key, "another server", "urn:another")
    with pytest.raises(ConnectorError, match=rf"is not the pinned one \(server_certificate '{re.escape(str(other))}'"
                                             r", SHA-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}\)"):
        await make_opcua_connector(secured(server, tmp_path, server_certificate=other)).open()
