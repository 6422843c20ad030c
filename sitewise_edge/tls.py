"""A self-signed certificate and key for a first HTTPS setup (``sitewise-edge tls generate``).

    cert, key = generate_self_signed(Path("tls"), ["gateway-line1.plant.local", "10.0.0.5"], clock)

The pair names the given host names and addresses (and ``localhost``, ``127.0.0.1``) as subject alternative
names, as clients check; the key is written readable by its owner only. For production use a certificate
of the plant's CA: point ``api.tls.cert`` and ``api.tls.key`` at it.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sitewise_edge.clock import Clock


def generate_self_signed(out: Path, names: list[str], clock: Clock, days: int = 825) -> tuple[Path, Path]:
    """Write ``cert.pem`` and ``key.pem`` into ``out``; their paths."""
    names = list(dict.fromkeys([*names, "localhost", "127.0.0.1"]))
    alternatives: list[x509.GeneralName] = []
    for name in names:
        try:
            alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternatives.append(x509.DNSName(name))
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sitewise-edge (self-signed)")])
    now = datetime.datetime.fromtimestamp(clock.time(), datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    out.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = out / "cert.pem", out / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cert_path, key_path
