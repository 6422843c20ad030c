"""OPC UA security: the certificate files, the policy and mode, and which endpoints a server offers.

    pki = load_pki(config)                       # reads and checks the files; raises PkiError
    await apply_security(client, config, pki)    # before client.connect()
    offers_endpoint(await server_endpoints(config), config)   # diagnosis after a failure

Everything but :func:`apply_security` and :func:`server_endpoints` is pure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path

from asyncua import Client, ua
from asyncua.crypto import security_policies, uacrypto
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from connectors.opcua.config import PATH_FIELDS, OpcUaSource

Pki = dict[str, tuple[uacrypto.CertProperties, object]]
"""Field name (``certificate``, ``private_key``, ``server_certificate``) -> (asyncua's form, the parsed object)."""

_IO_ERRORS = (OSError, ua.UaError, asyncio.TimeoutError)


class PkiError(ValueError):
    """A certificate or key file that is missing, unreadable or not what it should be."""

    def __init__(self, message: str, *, field: str, path: Path) -> None:
        super().__init__(message)
        self.field = field
        self.path = path


def load_pki(config: OpcUaSource) -> Pki:
    """Read and check the certificate files (PEM or DER, told apart by content, not by file name).

    They are small, so they are read here; asyncua's own loader would start a worker thread.
    """
    out: Pki = {}
    for key in PATH_FIELDS:
        path = getattr(config, key)
        if path is None:
            continue
        try:
            content = Path(path).read_bytes()
        except FileNotFoundError:
            raise PkiError(f"{key} file {str(path)!r} does not exist", field=key, path=path) from None
        except OSError as exc:
            raise PkiError(f"cannot read {key} file {str(path)!r}: {exc.strerror or exc}", field=key,
                           path=path) from exc
        pem = content.lstrip().startswith(b"-----BEGIN")
        try:
            parsed: object
            if key == "private_key":
                load_key = serialization.load_pem_private_key if pem else serialization.load_der_private_key
                parsed = load_key(content, password=None)
            else:
                parsed = (x509.load_pem_x509_certificate if pem else x509.load_der_x509_certificate)(content)
        except (ValueError, TypeError) as exc:  # TypeError: an encrypted key
            what = "private key" if key == "private_key" else "certificate"
            raise PkiError(f"{key} file {str(path)!r} is not an unencrypted PEM or DER {what}: {exc}", field=key,
                           path=path) from exc
        out[key] = (uacrypto.CertProperties(content, "pem" if pem else "der"), parsed)
    return out


def certificate_uri(cert: x509.Certificate) -> str | None:
    """The application URI in a certificate's subject alternative names (servers check it)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return None
    uris = san.value.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None


def policy_class(name: str) -> type[security_policies.SecurityPolicy]:
    """``Basic256Sha256`` -> asyncua's policy class (``None`` included)."""
    policy: type[security_policies.SecurityPolicy] = getattr(security_policies,
                                                              "SecurityPolicy" + name.replace("_", ""))
    return policy


def message_mode(name: str) -> ua.MessageSecurityMode:
    """``None``, ``Sign``, ``SignAndEncrypt`` -> the OPC UA enum."""
    return ua.MessageSecurityMode.None_ if name == "None" else ua.MessageSecurityMode[name]


async def apply_security(client: Client, config: OpcUaSource, pki: Pki) -> None:
    """Configure a secured connection; without ``server_certificate``, asyncua asks the server for it."""
    cert = pki["certificate"][1]
    assert isinstance(cert, x509.Certificate)
    # The client's application URI must be the one in its certificate, or servers refuse it.
    uri = certificate_uri(cert)
    if uri:
        client.application_uri = uri
    server_cert = pki.get("server_certificate")
    await client.set_security(
        policy_class(config.security_policy),
        pki["certificate"][0],
        pki["private_key"][0],
        server_certificate=server_cert[0] if server_cert else None,
        mode=message_mode(config.security_mode),
    )


def offers_endpoint(endpoints: Iterable[ua.EndpointDescription], config: OpcUaSource) -> bool:
    """Whether one of a server's endpoints has the configured policy and mode (as asyncua picks them)."""
    uri, mode = policy_class(config.security_policy).URI, message_mode(config.security_mode)
    return any(ep.EndpointUrl.startswith(ua.OPC_TCP_SCHEME) and ep.SecurityMode == mode
               and ep.SecurityPolicyUri == uri for ep in endpoints)


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
