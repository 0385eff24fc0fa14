"""The sandbox's webhook signing certificate, and PayPal's transmission signature.

PayPal signs each webhook delivery with its private key: RSA-SHA256 (PAYPAL-AUTH-ALGO
`SHA256withRSA`) over `<transmission id>|<transmission time>|<webhook id>|<CRC32 of the
body as an unsigned decimal>`, base64 in PAYPAL-TRANSMISSION-SIG; the receiver fetches the
X.509 certificate from PAYPAL-CERT-URL (paypalrestsdk's `WebhookEvent.verify` does the same).
The sandbox makes a self-signed certificate with `cryptography` (kept in `cert_dir` so a
restarted sandbox signs with the same one and a receiver configured with
PAYPAL_WEBHOOK_CERT_FILE keeps accepting it). Receivers check a certificate's validity window,
so it is valid from a day ago for ten years, and a kept one that is not valid now is replaced.
"""

from __future__ import annotations

import base64
import datetime
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

CERT_NAME = "CERT-360caa42-fca2a594-sandbox"  # shaped like PayPal's certificate names
_KEY_FILE, _CERT_FILE = "paypal-sandbox-key.pem", "paypal-sandbox-cert.pem"


def transmission_message(transmission_id: str, time: str, webhook_id: str, body: bytes) -> bytes:
    """What PayPal signs: CRC32 of the exact body bytes, as an unsigned decimal."""
    return f"{transmission_id}|{time}|{webhook_id}|{zlib.crc32(body) & 0xFFFFFFFF}".encode()


@dataclass(frozen=True)
class SigningCertificate:
    key: rsa.RSAPrivateKey
    pem: bytes
    file: Path

    def sign(self, message: bytes) -> str:
        signature = self.key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(signature).decode()

    def verifies(self, message: bytes, signature: str) -> bool:
        try:
            raw = base64.b64decode(signature, validate=True)
            self.key.public_key().verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            return False
        return True


def valid_now(pem: bytes) -> bool:
    """Whether the PEM certificate's validity window holds the present moment."""
    certificate = x509.load_pem_x509_certificate(pem)
    moment = datetime.datetime.now(datetime.UTC)
    return certificate.not_valid_before_utc <= moment <= certificate.not_valid_after_utc


def load_or_make(cert_dir: Path) -> SigningCertificate:
    """The certificate in `cert_dir`, or a new one written there (key readable by owner only)."""
    key_file, cert_file = cert_dir / _KEY_FILE, cert_dir / _CERT_FILE
    if key_file.is_file() and cert_file.is_file():
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        pem = cert_file.read_bytes()
        if isinstance(key, rsa.RSAPrivateKey) and valid_now(pem):
            return SigningCertificate(key, pem, cert_file)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "PayPal sandbox (local)"),
            x509.NameAttribute(NameOID.COMMON_NAME, "messageverificationcerts.sandbox.paypal.com"),
        ]
    )
    start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    cert_dir.mkdir(parents=True, exist_ok=True)
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key_bytes)
    cert_file.write_bytes(pem)
    return SigningCertificate(key, pem, cert_file)
