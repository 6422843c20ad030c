"""OPC UA security: the gateway's certificate, the check of the server's, the policy, mode and user identity.

    own = own_certificate(config, clock)                    # configured, else generated once into pki_dir/own
    endpoint = pick_endpoint(endpoints, config)             # the server's endpoint with the policy and mode
    trust = check_server(server_cert, endpoint, config, clock)   # raises PkiError when not trusted
    apply_security(client, config, own, server_cert)        # before client.connect()
    apply_identity(client, config)                          # anonymous, user name, or X.509 user certificate

The server certificate is checked before any secured message is sent (and before a password leaves), in
the way ``trust_list``, ``server_certificate_sha256``, ``server_certificate`` or ``trust_any_server`` say;
the default is the trust list in the data directory, which refuses an unknown server. Everything but the
file reads, :func:`apply_security`, :func:`apply_identity` and :func:`server_endpoints` is pure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from asyncua import Client, ua
from asyncua.crypto import security_policies
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from connectors.opcua import pki
from connectors.opcua.config import OpcUaSource
from sitewise_edge.clock import Clock

_IO_ERRORS = (OSError, ua.UaError, asyncio.TimeoutError)


class PkiError(ValueError):
    """A certificate or key file that is missing, unreadable or not what it should be, or a server
    certificate that is not trusted."""

    def __init__(self, message: str, *, field: str, path: Path | None) -> None:
        super().__init__(message)
        self.field = field
        self.path = path


@dataclass(frozen=True)
class Own:
    """The gateway's application instance certificate for a source."""

    certificate: x509.Certificate
    key: PrivateKeyTypes
    cert_path: Path
    key_path: Path
    application_uri: str
    generated: bool
    """Made by the gateway (in pki_dir/own), not configured."""


def _read(path: Path, field: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise PkiError(f"{field} file {str(path)!r} does not exist", field=field, path=path) from None
    except OSError as exc:
        raise PkiError(f"cannot read {field} file {str(path)!r}: {exc.strerror or exc}", field=field,
                       path=path) from exc


def load_certificate(path: Path, field: str) -> x509.Certificate:
    """A certificate file, PEM or DER (told apart by content, not by file name)."""
    content = _read(path, field)
    try:
        if content.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(content)
        return x509.load_der_x509_certificate(content)
    except ValueError as exc:
        raise PkiError(f"{field} file {str(path)!r} is not an unencrypted PEM or DER certificate: {exc}",
                       field=field, path=path) from exc


def load_private_key(path: Path, field: str) -> PrivateKeyTypes:
    """The one place a private key is loaded (the client's and the X.509 user's): PEM or DER, unencrypted.

    asyncua takes the returned object as it is, so a key that lives in a token (an object with the same
    interface, which signs and decrypts without exporting the key) can be returned here instead.
    """
    content = _read(path, field)
    pem = content.lstrip().startswith(b"-----BEGIN")
    try:
        load = serialization.load_pem_private_key if pem else serialization.load_der_private_key
        return load(content, password=None)
    except (ValueError, TypeError) as exc:  # TypeError: an encrypted key
        raise PkiError(f"{field} file {str(path)!r} is not an unencrypted PEM or DER private key: {exc}",
                       field=field, path=path) from exc


def own_certificate(config: OpcUaSource, clock: Clock) -> Own:
    """The configured certificate and key, or the ones in ``<pki_dir>/own``, generated at the first call.

    A generated certificate is reused at every later start (the server trusts it once); one whose URI is
    not the configured ``application_uri`` is refused, not silently replaced.
    """
    if config.certificate is not None and config.private_key is not None:
        cert = load_certificate(config.certificate, "certificate")
        uris = pki.certificate_uris(cert)
        if config.application_uri and config.application_uri not in uris:
            raise PkiError(f"certificate file {str(config.certificate)!r} is for application "
                           f"{', '.join(uris) or '(no URI)'}, not application_uri {config.application_uri}: servers "
                           "refuse a client whose URI is not in its certificate", field="certificate",
                           path=config.certificate)
        key = load_private_key(config.private_key, "private_key")
        uri = config.application_uri or (uris[0] if uris else pki.default_application_uri())
        return Own(cert, key, config.certificate, config.private_key, uri, generated=False)
    folder = config.pki_folder
    uri = config.application_uri or pki.default_application_uri()
    cert_path, key_path = folder / pki.OWN_CERT, folder / pki.OWN_KEY
    if not cert_path.exists():
        try:
            pki.write_own(folder, uri, clock)
        except OSError as exc:
            raise PkiError(f"cannot write the client certificate into {str(cert_path.parent)!r}: "
                           f"{exc.strerror or exc}", field="pki_dir", path=folder) from exc
        generated = True
    else:
        generated = False
    cert = load_certificate(cert_path, "certificate")
    uris = pki.certificate_uris(cert)
    if uri not in uris:
        raise PkiError(f"the client certificate {str(cert_path)!r} was made for application "
                       f"{', '.join(uris) or '(no URI)'}, not {uri}: set application_uri to that, or delete "
                       f"{str(cert_path.parent)!r} to make a new one (and trust the new one on the server)",
                       field="application_uri", path=cert_path)
    return Own(cert, load_private_key(key_path, "private_key"), cert_path, key_path, uri, generated)


def policy_class(name: str) -> type[security_policies.SecurityPolicy]:
    """``Basic256Sha256`` -> asyncua's policy class (``None`` included)."""
    policy: type[security_policies.SecurityPolicy] = getattr(security_policies,
                                                              "SecurityPolicy" + name.replace("_", ""))
    return policy


def message_mode(name: str) -> ua.MessageSecurityMode:
    """``None``, ``Sign``, ``SignAndEncrypt`` -> the OPC UA enum."""
    return ua.MessageSecurityMode.None_ if name == "None" else ua.MessageSecurityMode[name]


def pick_endpoint(endpoints: Iterable[ua.EndpointDescription],
                  config: OpcUaSource) -> ua.EndpointDescription | None:
    """The server's opc.tcp endpoint with the configured policy and mode, or None."""
    uri, mode = policy_class(config.security_policy).URI, message_mode(config.security_mode)
    for ep in endpoints:
        if ep.EndpointUrl.startswith(ua.OPC_TCP_SCHEME) and ep.SecurityMode == mode and ep.SecurityPolicyUri == uri:
            return ep
    return None


def offers_endpoint(endpoints: Iterable[ua.EndpointDescription], config: OpcUaSource) -> bool:
    """Whether one of a server's endpoints has the configured policy and mode (as asyncua picks them)."""
    return pick_endpoint(endpoints, config) is not None


def offered(endpoints: Sequence[ua.EndpointDescription]) -> str:
    """What a server offers, for a message: ``None/None, Basic256Sha256/Sign, ...``."""
    names = []
    for ep in endpoints:
        policy = (ep.SecurityPolicyUri or "").rsplit("#", 1)[-1]
        mode = "None" if ep.SecurityMode == ua.MessageSecurityMode.None_ else ua.MessageSecurityMode(
            ep.SecurityMode).name
        names.append(f"{policy}/{mode}")
    return ", ".join(dict.fromkeys(names)) or "nothing"


def first_certificate(chain: bytes) -> bytes:
    """The first DER certificate of a chain (servers may send theirs followed by its issuers)."""
    if len(chain) < 2 or chain[0] != 0x30:
        return chain
    size = chain[1]
    if size < 0x80:
        return chain[:2 + size]
    n = size & 0x7F
    return chain[:2 + n + int.from_bytes(chain[2:2 + n], "big")]


def server_certificate(endpoint: ua.EndpointDescription) -> x509.Certificate:
    """The certificate a server states in an endpoint; PkiError when there is none or it is not one."""
    der = endpoint.ServerCertificate
    if not der:
        raise PkiError("the server's endpoint carries no certificate", field="server_certificate", path=None)
    try:
        return x509.load_der_x509_certificate(first_certificate(der))
    except ValueError as exc:
        raise PkiError(f"the server's certificate cannot be read: {exc}", field="server_certificate",
                       path=None) from exc


def trust_kind(config: OpcUaSource) -> str:
    """How a source checks its server: ``trust_list``, ``sha256``, ``certificate`` or ``any``."""
    if config.trust_any_server:
        return "any"
    if config.server_certificate_sha256:
        return "sha256"
    if config.server_certificate:
        return "certificate"
    return "trust_list"


def trust_folder(config: OpcUaSource) -> Path:
    return config.trust_list if config.trust_list is not None else config.pki_folder


def check_server(cert: x509.Certificate, endpoint: ua.EndpointDescription, config: OpcUaSource,
                 clock: Clock) -> None:
    """Refuse (PkiError) a server certificate the source's configuration does not trust.

    Validity period and application URI are checked unless ``trust_any_server``; then the pin (fingerprint
    or file), or the trust list: an unknown certificate is copied to rejected/ and the message says which
    file to move to trusted/.
    """
    kind = trust_kind(config)
    if kind == "any":
        return
    fp = pki.fingerprint(cert)
    what = f"the server certificate ({pki.common_name(cert)}, SHA-256 {fp})"
    server_uri = endpoint.Server.ApplicationUri if endpoint.Server is not None else None
    problem = pki.server_verdict(cert, server_uri, clock.time())
    if problem is not None:
        raise PkiError(f"{what} is refused: {problem}", field="server_certificate", path=None)
    if kind == "sha256":
        if pki.sha256_hex(cert) != config.server_certificate_sha256:
            raise PkiError(f"{what} is not the pinned one (server_certificate_sha256 "
                           f"{pki.colons(config.server_certificate_sha256 or '')})", field="server_certificate_sha256",
                           path=None)
        return
    if kind == "certificate":
        assert config.server_certificate is not None
        pinned = load_certificate(config.server_certificate, "server_certificate")
        if pinned != cert:
            raise PkiError(f"{what} is not the pinned one (server_certificate {str(config.server_certificate)!r}, "
                           f"SHA-256 {pki.fingerprint(pinned)})", field="server_certificate",
                           path=config.server_certificate)
        return
    folder = trust_folder(config)
    if pki.trusted(cert, folder):
        return
    try:
        saved = pki.reject(cert, folder)
    except OSError as exc:
        raise PkiError(f"{what} is not trusted (not in {str(folder / pki.TRUSTED)!r}), and it cannot be saved "
                       f"to rejected/: {exc.strerror or exc}", field="trust_list", path=folder) from exc
    raise PkiError(f"{what} is not trusted: it was saved as {str(saved)!r}; if it is your server's, move that "
                   f"file to {str(folder / pki.TRUSTED)!r} and the next attempt connects", field="trust_list",
                   path=saved)


def apply_security(client: Client, config: OpcUaSource, own: Own, server_cert: x509.Certificate) -> None:
    """Set the policy and mode with the gateway's certificate and key, and the server's (already checked)
    certificate: asyncua then refuses a session whose server presents another one."""
    # The client's application URI must be the one in its certificate, or servers refuse it.
    client.application_uri = own.application_uri
    policy = policy_class(config.security_policy)(server_cert, own.certificate, own.key,
                                                  message_mode(config.security_mode))
    client.security_policy = policy  # type: ignore[assignment]  # asyncua annotates its default only
    client.uaclient.set_security(policy)


def apply_identity(client: Client, config: OpcUaSource) -> None:
    """The user identity: a user name and password, an X.509 user certificate, or anonymous."""
    if config.user_certificate is not None and config.user_private_key is not None:
        client.user_certificate = load_certificate(config.user_certificate, "user_certificate")
        client.user_private_key = load_private_key(config.user_private_key, "user_private_key")
    elif config.username:
        client.set_user(config.username)
        if config.password:
            client.set_password(config.password)


async def server_endpoints(config: OpcUaSource) -> list[ua.EndpointDescription] | None:
    """The endpoints the source's server offers (GetEndpoints over an unsecured channel, within
    ``timeout``); None when it does not say."""
    client = Client(config.endpoint, timeout=config.timeout)
    try:
        async with asyncio.timeout(config.timeout):
            endpoints: list[ua.EndpointDescription] = await client.connect_and_get_server_endpoints()
            return endpoints
    except _IO_ERRORS:
        return None
