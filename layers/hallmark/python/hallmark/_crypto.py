"""Canonical JSON and ECDSA P-256 helpers used by governance, ceremony and market.

Private module: ``hallmark.canonical`` / ``hallmark.signing`` provide the public versions;
the lead will merge these into them. Only verification and test/CLI-side signing live here:
production signatures come from KMS through the ``Signer`` port.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


def canonical(obj: Any) -> bytes:
    """RFC 8785 (JCS) canonical JSON bytes of ``obj``."""
    return rfc8785.dumps(obj)


def sha256_hex(data: bytes) -> str:
    """Lowercase hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def digest_of(obj: Any) -> str:
    """``sha256_hex(canonical(obj))``."""
    return sha256_hex(canonical(obj))


def load_p256_public_key(pem: str | bytes) -> ec.EllipticCurvePublicKey:
    """Load a SubjectPublicKeyInfo PEM and insist on an EC key on NIST P-256.

    Raises ``ValueError`` for anything else.
    """
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnicodeError) as exc:
        raise ValueError(f"not a PEM public key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("public key must be ECDSA on NIST P-256 (secp256r1)")
    return key


def public_key_fingerprint(pem: str | bytes) -> str:
    """sha256 hex of the DER SubjectPublicKeyInfo (stable across PEM formatting)."""
    key = load_p256_public_key(pem)
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return sha256_hex(der)


def verify_p256(public_key_pem: str | bytes, message: bytes, der_signature: bytes) -> bool:
    """True iff ``der_signature`` is a valid ECDSA P-256/SHA-256 signature of ``message``."""
    key = load_p256_public_key(public_key_pem)
    try:
        key.verify(der_signature, message, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def sign_p256(private_key: ec.EllipticCurvePrivateKey, message: bytes) -> bytes:
    """DER ECDSA P-256/SHA-256 signature (tests and the approver/witness CLI; the key stays local)."""
    if not isinstance(private_key.curve, ec.SECP256R1):
        raise ValueError("private key must be on NIST P-256 (secp256r1)")
    return private_key.sign(message, ec.ECDSA(hashes.SHA256()))


def public_pem_of(private_key: ec.EllipticCurvePrivateKey) -> str:
    """The SubjectPublicKeyInfo PEM of a private key's public half."""
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def b64encode(data: bytes) -> str:
    """Standard base64 with padding."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    """Strict standard base64; raises ``ValueError`` on anything malformed."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeError, AttributeError) as exc:
        raise ValueError("malformed base64") from exc
