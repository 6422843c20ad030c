"""The gateway's OPC UA certificates: its own (made once, then reused) and the trust list of servers.

    cert = make_certificate(key, "urn:host1:sitewise-edge", clock)   # self-signed, for a client and a server
    verdict = server_verdict(cert, "urn:plc1", clock.time())         # None, or why it is not acceptable
    trusted(cert, trust_list)                                        # in trusted/, or issued by a CA there
    reject(cert, trust_list)                                         # copied to rejected/: its path

The layout, as OPC UA stacks keep it (UaExpert, Prosys, open62541 use the same trusted/rejected pair)::

    <pki_dir>/own/cert.der      the gateway's client certificate (generated when none is configured)
    <pki_dir>/own/key.pem       its private key (mode 0600)
    <trust_list>/trusted/       server certificates (PEM or DER, any file name), or the CAs that issued them
    <trust_list>/rejected/      unknown server certificates, one file each: move one to trusted/ to trust it

Everything here but :func:`trusted`, :func:`reject` and :func:`write_own` is pure.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import socket
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sitewise_edge.clock import Clock
from sitewise_edge.files import write_bytes_atomic

OWN_CERT = Path("own") / "cert.der"
OWN_KEY = Path("own") / "key.pem"
TRUSTED = "trusted"
REJECTED = "rejected"
VALID_DAYS = 5 * 365
"""Validity of a generated certificate: long enough that a gateway is not cut off by surprise; ``opcua cert``
shows the end date."""
KEY_BITS = 2048  # every policy from Basic256Sha256 to Aes256_Sha256_RsaPss accepts 2048-bit RSA
_CERT_SUFFIXES = (".der", ".pem", ".crt", ".cer")


def default_application_uri() -> str:
    """``urn:<host name>:sitewise-edge``: unique per machine, as OPC UA wants application URIs."""
    return f"urn:{socket.gethostname()}:sitewise-edge"


def fingerprint(cert: x509.Certificate) -> str:
    """The SHA-256 fingerprint as servers and UaExpert show it: ``AB:CD:...`` (32 pairs)."""
    return colons(sha256_hex(cert))


def sha256_hex(cert: x509.Certificate) -> str:
    """The SHA-256 fingerprint as 64 lower-case hex digits (the form ``server_certificate_sha256`` is kept in)."""
    return cert.fingerprint(hashes.SHA256()).hex()


def colons(hexed: str) -> str:
    """Hex digits as a fingerprint is shown: ``ab12cd`` -> ``AB:12:CD``."""
    return ":".join(hexed[i:i + 2] for i in range(0, len(hexed), 2)).upper()


def common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.subject.rfc4514_string()


def certificate_uris(cert: x509.Certificate) -> list[str]:
    """The URIs in a certificate's subject alternative names (an application's URI is one)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return list(san.value.get_values_for_type(x509.UniformResourceIdentifier))


def make_certificate(key: CertificateIssuerPrivateKeyTypes, app_uri: str, clock: Clock, *,
                     common: str = "sitewise-edge", days: int = VALID_DAYS) -> x509.Certificate:
    """A self-signed OPC UA application certificate for ``key``: ``app_uri``, the host name and ``localhost``
    in its subject alternative names, key usages for signing and encryption, usable by a client and a server."""
    host = socket.gethostname()
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(app_uri)]
    for name in dict.fromkeys([host, "localhost"]):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            names.append(x509.DNSName(name))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{common}@{host}"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sitewise-edge")])
    now = dt.datetime.fromtimestamp(clock.time(), dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))  # a server whose clock lags a little accepts it
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=True,
                                     data_encipherment=True, key_agreement=False, key_cert_sign=True,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def write_own(folder: Path, app_uri: str, clock: Clock) -> tuple[Path, Path]:
    """Generate the gateway's key and certificate into ``folder`` (own/cert.der, own/key.pem): their paths.

    The key is written first with mode 0600, each file to a temporary name then renamed, so that a crash
    leaves either both files or a key alone (which the next start replaces), never a torn file.
    """
    cert_path, key_path = folder / OWN_CERT, folder / OWN_KEY
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    write_bytes_atomic(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()), 0o600)
    cert = make_certificate(key, app_uri, clock)
    write_bytes_atomic(cert_path, cert.public_bytes(serialization.Encoding.DER))
    return cert_path, key_path


def server_verdict(cert: x509.Certificate, server_uri: str | None, now: float) -> str | None:
    """Why a server certificate is not acceptable whatever the trust (expired, not yet valid, made for another
    application), or None. ``server_uri``: the application URI the server states in its endpoints."""
    when = dt.datetime.fromtimestamp(now, dt.UTC)
    if when > cert.not_valid_after_utc:
        return f"it expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
    if when < cert.not_valid_before_utc:
        return f"it is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC (check the clocks)"
    uris = certificate_uris(cert)
    if server_uri and uris and server_uri not in uris:
        return (f"it was made for application {', '.join(uris)}, but the server says it is {server_uri} "
                "(BadCertificateUriInvalid)")
    return None


def read_certificates(folder: Path) -> list[x509.Certificate]:
    """The certificates in a folder (PEM or DER by content, any of .der .pem .crt .cer); unreadable files skipped."""
    out: list[x509.Certificate] = []
    try:
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in _CERT_SUFFIXES and p.is_file())
    except FileNotFoundError:
        return out
    for path in files:
        try:
            content = path.read_bytes()
            if content.lstrip().startswith(b"-----BEGIN"):
                out.extend(x509.load_pem_x509_certificates(content))
            else:
                out.append(x509.load_der_x509_certificate(content))
        except (OSError, ValueError):
            continue
    return out


def trusted(cert: x509.Certificate, trust_list: Path) -> bool:
    """Whether ``trust_list``/trusted holds ``cert`` itself, or the CA certificate that signed it."""
    for known in read_certificates(trust_list / TRUSTED):
        if known == cert:
            return True
        if known.subject == cert.issuer and known.subject != cert.subject:
            try:
                cert.verify_directly_issued_by(known)
            except (ValueError, TypeError, InvalidSignature):
                continue
            return True
    return False


def reject(cert: x509.Certificate, trust_list: Path) -> Path:
    """Copy ``cert`` (DER) to ``trust_list``/rejected as ``<common name> [<fingerprint>].der``: the file to move."""
    folder = trust_list / REJECTED
    folder.mkdir(parents=True, exist_ok=True)
    (trust_list / TRUSTED).mkdir(exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9._@-]+", "_", common_name(cert)).strip("_") or "server"
    path = folder / f"{name} [{sha256_hex(cert)[:16]}].der"
    if not path.exists():
        write_bytes_atomic(path, cert.public_bytes(serialization.Encoding.DER))
    return path
