"""An OPC UA server that serves the simulated plant of :mod:`sitewise_edge.simulators.plant`.

Used in-process by the tests and the demo, and by ``sitewise-edge simulate opcua``:

    sim = OpcUaSimulator(port=0)              # 0: pick a free port
    await sim.start()                         # sim.endpoint == "opc.tcp://127.0.0.1:<port>"
    ...
    await sim.stop()

Address space: ``Objects/Plant1/Line1/<Machine>/<Signal>``; each signal is a variable with the
string node id ``ns=2;s=<Machine>.<Signal>`` in namespace :data:`~sitewise_edge.simulators.plant.NAMESPACE_URI`
(index 2). Values come from :func:`~sitewise_edge.simulators.plant.machine_values` every
``update_interval`` seconds, with a source timestamp.

With ``security=True`` the server also offers ``policies`` (default Basic256Sha256; Sign and
SignAndEncrypt each) with its own certificate, and trusts every client certificate (no trust list): it
is a simulator. With ``users`` (name -> password) a user name must come with its password; with
``user_certificates`` (name -> certificate file) an X.509 user identity must be one of those (asyncua's
server checks the token's signature, proof that the client holds the key); anonymous clients are always
accepted.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import socket
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from asyncua import Server, ua
from asyncua.common.utils import ServiceError
from asyncua.crypto import cert_gen
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.user_managers import UserManager
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from sitewise_edge.simulators.plant import MACHINES, NAMESPACE_URI, SIGNALS, alias, machine_values

log = logging.getLogger(__name__)

SERVER_APP_URI = "urn:sitewise-edge:simulator:server"

# OPC UA variant type of each plant signal; counters are unsigned as on a real PLC.
VARIANT_TYPES: dict[str, ua.VariantType] = {
    "Speed": ua.VariantType.Double,
    "Temperature": ua.VariantType.Double,
    "Pressure": ua.VariantType.Double,
    "State": ua.VariantType.Int32,
    "GoodCount": ua.VariantType.UInt32,
    "BadCount": ua.VariantType.UInt32,
    "TemperatureX10": ua.VariantType.Int32,
    "Running": ua.VariantType.Boolean,
    "Fault": ua.VariantType.Boolean,
    "Status": ua.VariantType.String,
}


def node_id(machine: str, signal: str) -> str:
    """The node id of one signal: ``ns=2;s=Press1.Temperature``."""
    return f"ns=2;s={machine}.{signal}"


def example_nodes(prefix: str = "/plant1/line1") -> list[dict[str, str]]:
    """Configuration node entries (``node_id``, ``alias``) for every signal of every machine."""
    return [
        {"node_id": node_id(machine, signal), "alias": alias(machine, signal, prefix)}
        for machine in MACHINES
        for signal, _ in SIGNALS
    ]


def generate_certificate(
    path_cert: str | Path,
    path_key: str | Path,
    common_name: str,
    app_uri: str,
    *,
    hostname: str | None = None,
    days: int = 365,
) -> None:
    """Write a self-signed OPC UA application certificate (DER) and its private key (PEM).

    The certificate carries ``app_uri``, this machine's host name, ``localhost`` and ``hostname``
    (a name or an IP address) in its subject alternative names, as OPC UA applications check them.
    It may be used by a client and by a server.
    """
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(app_uri)]
    for name in dict.fromkeys([socket.gethostname(), "localhost", hostname or "localhost"]):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            names.append(x509.DNSName(name))
    key = cert_gen.generate_private_key()
    cert = cert_gen.generate_self_signed_app_certificate(
        key,
        common_name,
        {},
        names,
        extended=[ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH],
        days=days,
    )
    Path(path_key).write_bytes(cert_gen.dump_private_key_as_pem(key))
    Path(path_cert).write_bytes(cert.public_bytes(Encoding.DER))


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class OpcUaSimulator:
    """The plant, served over OPC UA. Start with :meth:`start`, stop with :meth:`stop`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 4840,
        update_interval: float = 0.5,
        security: bool = False,
        certificate: str | Path | None = None,
        private_key: str | Path | None = None,
        *,
        allow_none: bool = True,
        users: Mapping[str, str] | None = None,
        user_certificates: Mapping[str, str | Path] | None = None,
        policies: Sequence[str] = ("Basic256Sha256",),
    ) -> None:
        self.host = host
        self.port = port
        self.update_interval = update_interval
        self.security = security
        self.certificate = Path(certificate) if certificate else None
        self.private_key = Path(private_key) if private_key else None
        self.allow_none = allow_none
        self.users = dict(users) if users else None
        self.user_certificates = {name: Path(p) for name, p in (user_certificates or {}).items()}
        self.policies = tuple(policies)
        self.server: Server | None = None
        self.start_time = 0.0
        self.updates = 0
        self._nodes: list[list[tuple[str, ua.NodeId, ua.VariantType]]] = []
        self._task: asyncio.Task[None] | None = None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def endpoint(self) -> str:
        """The URL a local client uses (127.0.0.1 when the server listens on every interface)."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0", "::") else self.host
        return f"opc.tcp://{host}:{self.port}"

    @property
    def server_certificate(self) -> Path | None:
        """The server's certificate (DER), for clients that pin it; None without security."""
        return self.certificate if self.security else None

    async def start(self) -> None:
        """Build the address space and listen. Takes about a second: asyncua loads the standard nodes."""
        if self.port == 0:
            self.port = free_port(self.host)
        certs = {_der(p.read_bytes()): name for name, p in self.user_certificates.items()}
        server = Server(user_manager=_UserManager(self.users, certs))
        await server.init()
        _check_x509_token(server, certs)
        server.set_endpoint(f"opc.tcp://{self.host}:{self.port}/")
        server.set_server_name("sitewise-edge plant simulator")
        await server.set_application_uri(SERVER_APP_URI)
        if self.security:
            await self._setup_security(server)
        else:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
            # X509 user tokens need a signing endpoint; offer anonymous and user name only.
            server.set_identity_tokens([ua.AnonymousIdentityToken, ua.UserNameIdentityToken])
        idx = await server.register_namespace(NAMESPACE_URI)
        if idx != 2:
            raise RuntimeError(f"namespace {NAMESPACE_URI} got index {idx}, expected 2")
        await self._build_address_space(server, idx)
        self.start_time = time.time()
        await self._update(server, self.start_time)
        await server.start()
        self.server = server
        self._task = asyncio.create_task(self._update_loop(server), name="opcua-simulator-update")
        log.info("OPC UA simulator listening on %s (security %s)", self.endpoint, "on" if self.security else "off")

    async def _setup_security(self, server: Server) -> None:
        if self.certificate is None or self.private_key is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="sitewise-edge-opcua-")
            self.certificate = Path(self._tmpdir.name) / "server-cert.der"
            self.private_key = Path(self._tmpdir.name) / "server-key.pem"
            generate_certificate(self.certificate, self.private_key, "sitewise-edge simulator", SERVER_APP_URI,
                                 hostname=self.host)
        # Read here: asyncua's loader reads files in an AnyIO worker thread that outlives the call.
        cert, key = _read_pki(self.certificate, self.private_key)
        await server.load_certificate(cert, "pem" if cert.lstrip().startswith(b"-----BEGIN") else "der")
        await server.load_private_key(key, format="pem" if key.lstrip().startswith(b"-----BEGIN") else "der")
        policies = [ua.SecurityPolicyType[f"{name.replace('_', '')}_{mode}"]
                    for name in self.policies for mode in ("SignAndEncrypt", "Sign")]
        if self.allow_none:
            policies.insert(0, ua.SecurityPolicyType.NoSecurity)
        server.set_security_policy(policies)

    async def _build_address_space(self, server: Server, idx: int) -> None:
        plant = await server.nodes.objects.add_folder(_node_id("Plant1", idx), ua.QualifiedName("Plant1", idx))
        line = await plant.add_folder(_node_id("Plant1.Line1", idx), ua.QualifiedName("Line1", idx))
        self._nodes = []
        for machine in MACHINES:
            folder = await line.add_folder(_node_id(machine, idx), ua.QualifiedName(machine, idx))
            signals = []
            for signal, _ in SIGNALS:
                vtype = VARIANT_TYPES[signal]
                nid = _node_id(f"{machine}.{signal}", idx)
                await folder.add_variable(nid, ua.QualifiedName(signal, idx), ua.Variant(_zero(vtype), vtype))
                signals.append((signal, nid, vtype))
            self._nodes.append(signals)

    async def _update(self, server: Server, now: float) -> None:
        stamp = cast(ua.DateTime, dt.datetime.fromtimestamp(now, dt.UTC))  # asyncua's DateTime is a datetime
        for i, signals in enumerate(self._nodes):
            values = machine_values(i, now, self.start_time)
            for signal, nid, vtype in signals:
                dv = ua.DataValue(ua.Variant(values[signal], vtype), SourceTimestamp=stamp, ServerTimestamp=stamp)
                await server.write_attribute_value(nid, dv)
        self.updates += 1

    async def _update_loop(self, server: Server) -> None:
        while True:
            await asyncio.sleep(self.update_interval)
            await self._update(server, time.time())

    async def stop(self) -> None:
        """Stop serving; connected clients see the connection drop."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self.server is not None:
            server, self.server = self.server, None
            await server.stop()
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None
        log.info("OPC UA simulator on %s stopped", self.endpoint)

    async def serve_forever(self) -> None:
        """Start (unless started) and serve until cancelled."""
        if self.server is None:
            await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def __aenter__(self) -> OpcUaSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _node_id(name: str, namespace: int) -> ua.NodeId:
    return ua.NodeId(ua.String(name), ua.Int16(namespace))


class _UserManager(UserManager):
    """Anonymous clients are welcome; a user name must match its password when ``users`` is set; an X.509
    user certificate must be one of ``certificates`` (DER -> user name)."""

    def __init__(self, users: Mapping[str, str] | None, certificates: Mapping[bytes, str]) -> None:
        self._users = users
        self._certificates = certificates

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None,
                 certificate: Any = None) -> User | None:
        # ``certificate`` is the X.509 token's, or the client's own for other tokens on a secured channel;
        # an unknown token certificate is refused before (see _check_x509_token)
        name = self._certificates.get(bytes(certificate)) if certificate is not None else None
        if name is not None:
            return User(role=UserRole.User, name=name)
        if username is None or self._users is None:
            return User(role=UserRole.User)
        if self._users.get(username) == password:
            return User(role=UserRole.User, name=username)
        return None


def _zero(vtype: ua.VariantType) -> bool | int | float | str:
    if vtype is ua.VariantType.Boolean:
        return False
    if vtype is ua.VariantType.String:
        return ""
    if vtype is ua.VariantType.Double:
        return 0.0
    return 0


def _check_x509_token(server: Server, certificates: Mapping[bytes, str]) -> None:
    """Refuse an X.509 user token whose certificate is not one of ``certificates``, after asyncua has checked
    its signature (the proof that the client holds the key); a user manager cannot tell that token from an
    anonymous one on a secured channel, where asyncua hands it the client's own certificate."""
    iserver = server.iserver
    verify = iserver.verify_x509_token

    def checked(isession: Any, token: ua.X509IdentityToken, signature: ua.SignatureData) -> bytes:
        data = verify(isession, token, signature)
        if bytes(data) not in certificates:
            raise ServiceError(ua.StatusCodes.BadIdentityTokenRejected)
        return data

    iserver.verify_x509_token = checked  # type: ignore[method-assign]


def _der(content: bytes) -> bytes:
    """A certificate file's DER bytes (PEM or DER)."""
    if content.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(content).public_bytes(Encoding.DER)
    return content


def _read_pki(certificate: Path, private_key: Path) -> tuple[bytes, bytes]:
    return certificate.read_bytes(), private_key.read_bytes()
