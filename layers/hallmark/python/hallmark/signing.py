"""ECDSA P-256 / SHA-256 signing helpers.

Production signatures come from KMS (``hallmark.adapters.kms_signer.KmsSigner``). This module
holds what needs no AWS: verification with a public key in PEM (SubjectPublicKeyInfo), and
:class:`LocalSigner`, a signer over a key generated in memory for tests and local
development. Its private key is never serialized by this module.
"""

from __future__ import annotations

import functools
import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = [
    "LocalSigner",
    "load_public_key",
    "public_key_fingerprint",
    "public_key_pem",
    "verify_signature",
]

_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


def public_key_pem(key: ec.EllipticCurvePublicKey) -> bytes:
    """The SubjectPublicKeyInfo PEM of ``key``."""
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@functools.lru_cache(maxsize=64)
def load_public_key(pem: bytes) -> ec.EllipticCurvePublicKey:
    """Load a P-256 public key from PEM (SubjectPublicKeyInfo); ``ValueError`` for anything else."""
    try:
        key = serialization.load_pem_public_key(bytes(pem))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a PEM public key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("expected an EC P-256 (secp256r1) public key")
    return key


def public_key_fingerprint(pem: bytes) -> str:
    """Lowercase hex SHA-256 of the DER SubjectPublicKeyInfo (stable across PEM line wrapping)."""
    der = load_public_key(pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def verify_signature(public_key_pem: bytes, message: bytes, der_sig: bytes) -> bool:
    """True if ``der_sig`` is a valid ECDSA P-256/SHA-256 DER signature of ``message``.

    Returns False for a wrong or malformed signature; raises ``ValueError`` for an unusable key.
    """
    key = load_public_key(public_key_pem)
    try:
        key.verify(der_sig, message, _ECDSA_SHA256)
    except InvalidSignature:
        return False
    return True


class LocalSigner:
    """A :class:`hallmark.ports.Signer` over an in-memory P-256 key (tests and local dev only).

    ``key_id`` defaults to ``local:<first 16 hex of the public key fingerprint>``.
    """

    def __init__(self, private_key: ec.EllipticCurvePrivateKey | None = None, key_id: str | None = None):
        self._key = private_key if private_key is not None else ec.generate_private_key(ec.SECP256R1())
        if not isinstance(self._key.curve, ec.SECP256R1):
            raise ValueError("LocalSigner needs a P-256 (secp256r1) key")
        self._pem = public_key_pem(self._key.public_key())
        self._key_id = key_id if key_id is not None else f"local:{public_key_fingerprint(self._pem)[:16]}"

    @classmethod
    def generate(cls, key_id: str | None = None) -> LocalSigner:
        """A signer over a freshly generated key."""
        return cls(ec.generate_private_key(ec.SECP256R1()), key_id)

    @property
    def key_id(self) -> str:
        return self._key_id

    def sign(self, message: bytes) -> bytes:
        """DER ECDSA P-256/SHA-256 signature of ``message``."""
        return self._key.sign(message, _ECDSA_SHA256)

    def public_key_pem(self) -> bytes:
        return self._pem

    def __repr__(self) -> str:  # never show key material
        return f"LocalSigner(key_id={self._key_id!r})"
