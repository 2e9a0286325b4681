"""The endpoint's HTTPS certificate: made once, kept beside the service's state, trusted by hand.

Azure SDKs send a Microsoft Entra ID bearer token only over TLS, so ``serve --https`` needs a
certificate a client can trust. `endpoint_certificate` makes a self-signed one (an EC P-256 key,
valid for ``localhost``, ``127.0.0.1`` and ``::1`` and the host served, for 825 days, usable as
its own trust anchor: CA and server-authentication bits set) in a directory of its own, and
keeps using it while it has more than 30 days left and names the host, so a client trusts it
once. The PEM is what a client adds to its trust store (``SSL_CERT_FILE`` for Python's ssl and
aiohttp, ``REQUESTS_CA_BUNDLE`` for requests, ``NODE_EXTRA_CA_CERTS`` for Node.js).
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERTIFICATE_FILE = "endpoint-cert.pem"
KEY_FILE = "endpoint-key.pem"
LIFETIME = timedelta(days=825)
RENEW_BEFORE = timedelta(days=30)
_LOOPBACK = ("localhost", "127.0.0.1", "::1")
_KEY_USAGE = {
    **dict.fromkeys(
        ("content_commitment", "key_encipherment", "data_encipherment", "key_agreement"), False
    ),
    **dict.fromkeys(("crl_sign", "encipher_only", "decipher_only"), False),
    "digital_signature": True,  # TLS handshakes (ECDSA)
    "key_cert_sign": True,  # its own trust anchor
}


@dataclass(frozen=True, slots=True)
class Certificate:
    """The endpoint's certificate (PEM, what clients trust) and its private key (PEM, 0600)."""

    certificate: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.certificate, self.key)
        return context


def _names(host: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for name in dict.fromkeys((*_LOOPBACK, host)):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            names.append(x509.DNSName(name))
    return names


def _usable(path: Path, host: str, now: datetime) -> bool:
    try:
        existing = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return False
    if existing.not_valid_after_utc - now < RENEW_BEFORE:
        return False
    names = existing.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return all(name in names for name in _names(host))


def endpoint_certificate(directory: Path, host: str) -> Certificate:
    """The certificate in `directory` for `host`, made (or made again) when missing, about to
    expire or not naming `host`. `OSError` when the directory cannot be written."""
    found = Certificate(directory / CERTIFICATE_FILE, directory / KEY_FILE)
    now = datetime.now(UTC)
    if found.key.is_file() and _usable(found.certificate, host, now):
        return found
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jobprep_release local Batch")])
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + LIFETIME)
        .add_extension(x509.SubjectAlternativeName(_names(host)), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(**_KEY_USAGE), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(found.key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "wb") as written:
        written.write(key_pem)
    found.certificate.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return found
