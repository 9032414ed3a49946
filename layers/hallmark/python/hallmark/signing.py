"""ECDSA P-256 / SHA-256 signing helpers (the one place keys are loaded and signatures checked).

Production signatures come from KMS (``hallmark.adapters.kms_signer.KmsSigner``). This module
holds what needs no AWS: loading and fingerprinting a public key in PEM (SubjectPublicKeyInfo),
verification, strict base64, and signing with a local private key (tests, the approver and
witness CLIs: the key stays on the caller's machine). No private key is serialized here.
"""

from __future__ import annotations

import base64
import binascii
import functools
from typing import TYPE_CHECKING

from hallmark.canonical import sha256_hex

if TYPE_CHECKING:  # cryptography loads on the first key operation, not with every handler
    from cryptography.hazmat.primitives.asymmetric import ec

__all__ = [
    "b64decode",
    "b64encode",
    "load_public_key",
    "public_key_fingerprint",
    "public_key_pem",
    "public_pem_of",
    "sign_p256",
    "verify_signature",
]



@functools.cache
def _ecdsa_sha256() -> ec.ECDSA:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.ECDSA(hashes.SHA256())


def public_key_pem(key: ec.EllipticCurvePublicKey) -> bytes:
    """The SubjectPublicKeyInfo PEM of ``key``."""
    from cryptography.hazmat.primitives import serialization
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def public_pem_of(private_key: ec.EllipticCurvePrivateKey) -> str:
    """The SubjectPublicKeyInfo PEM (text) of a private key's public half."""
    return public_key_pem(private_key.public_key()).decode("ascii")


def load_public_key(pem: str | bytes) -> ec.EllipticCurvePublicKey:
    """Load a P-256 public key from PEM (SubjectPublicKeyInfo); ``ValueError`` for anything else."""
    if isinstance(pem, str):
        try:
            pem = pem.encode("ascii")
        except UnicodeError as exc:
            raise ValueError(f"not a PEM public key: {exc}") from exc
    return _load_public_key(bytes(pem))


@functools.lru_cache(maxsize=64)
def _load_public_key(pem: bytes) -> ec.EllipticCurvePublicKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a PEM public key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("expected an EC P-256 (secp256r1) public key")
    return key


@functools.lru_cache(maxsize=64)
def public_key_fingerprint(pem: str | bytes) -> str:
    """Lowercase hex SHA-256 of the DER SubjectPublicKeyInfo (stable across PEM line wrapping)."""
    from cryptography.hazmat.primitives import serialization
    der = load_public_key(pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return sha256_hex(der)


def verify_signature(public_key_pem: str | bytes, message: bytes, der_sig: bytes) -> bool:
    """True if ``der_sig`` is a valid ECDSA P-256/SHA-256 DER signature of ``message``.

    Returns False for a wrong or malformed signature; raises ``ValueError`` for an unusable key.
    """
    from cryptography.exceptions import InvalidSignature
    key = load_public_key(public_key_pem)
    try:
        key.verify(der_sig, message, _ecdsa_sha256())
    except (InvalidSignature, ValueError):
        return False
    return True


def sign_p256(private_key: ec.EllipticCurvePrivateKey, message: bytes) -> bytes:
    """DER ECDSA P-256/SHA-256 signature with a local key (tests and the approver/witness CLIs)."""
    from cryptography.hazmat.primitives.asymmetric import ec
    if not isinstance(private_key.curve, ec.SECP256R1):
        raise ValueError("private key must be on NIST P-256 (secp256r1)")
    return private_key.sign(message, _ecdsa_sha256())


def b64encode(data: bytes) -> str:
    """Standard base64 with padding."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    """Strict standard base64; raises ``ValueError`` on anything malformed."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeError, AttributeError) as exc:
        raise ValueError("malformed base64") from exc


