"""In-memory fakes (tests only; never in the Lambda layer)."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec

from hallmark.signing import public_key_fingerprint, public_key_pem, sign_p256


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
        return sign_p256(self._key, message)

    def public_key_pem(self) -> bytes:
        return self._pem

    def __repr__(self) -> str:  # never show key material
        return f"LocalSigner(key_id={self._key_id!r})"
