"""``Signer`` over an asymmetric KMS key (``ECC_NIST_P256``, ``SIGN_VERIFY``, ``ECDSA_SHA_256``).

Messages up to ``raw_max_bytes`` (4096, the KMS limit for ``MessageType=RAW``) are sent as
they are; longer ones are hashed here and sent as ``MessageType=DIGEST``. Either way the
signature is a plain ECDSA P-256/SHA-256 signature over the message, verifiable with the
public key alone.

moto 5.2.1 ignores ``MessageType`` (it always hashes what it receives), so a DIGEST
request against moto yields a signature over sha256(sha256(message)). Every signature is
therefore verified locally against the cached public key before it is returned (about
0.1 ms); a DIGEST signature that does not verify is retried once as RAW with the whole
message (moto accepts any size; real KMS refuses RAW above 4096 bytes, so on AWS the retry
can only fail), and a signature that still does not verify raises :class:`KmsSigningError`.
``raw_max_bytes=None`` always sends RAW.

Errors: throttling and other transient KMS/network faults propagate unchanged as
botocore ``ClientError`` / ``BotoCoreError`` (the names in
``hallmark.errors.TRANSIENT_AWS_ERRORS``, which every state machine task retries) so that
Step Functions / Lambda / SQS retry them (botocore's
retry metadata stays intact); permanent faults (unknown or disabled key, wrong key usage,
access denied, ...) become :class:`KmsSigningError` chained to the original error.
"""

from __future__ import annotations

import hashlib
import threading
from typing import TYPE_CHECKING, Final

from botocore.exceptions import ClientError

from hallmark.errors import TRANSIENT_AWS_ERRORS
from hallmark.signing import load_public_key, verify_signature

if TYPE_CHECKING:
    from mypy_boto3_kms.client import KMSClient

__all__ = ["RETRIABLE_KMS_ERRORS", "KmsSigner", "KmsSigningError"]

SIGNING_ALGORITHM: Final = "ECDSA_SHA_256"
RAW_LIMIT: Final = 4096

RETRIABLE_KMS_ERRORS: Final = frozenset(TRANSIENT_AWS_ERRORS)


class KmsSigningError(RuntimeError):
    """A permanent KMS signing failure (not worth retrying as is)."""

    def __init__(self, message: str, *, key_id: str, code: str | None = None, retriable: bool = False):
        super().__init__(message)
        self.key_id = key_id
        self.code = code
        self.retriable = retriable


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class KmsSigner:
    """Signs with an asymmetric KMS key; caches the public key PEM (SubjectPublicKeyInfo)."""

    def __init__(
        self,
        kms_client: KMSClient,
        key_id: str,
        *,
        raw_max_bytes: int | None = RAW_LIMIT,
        verify_after_sign: bool = True,
    ):
        self._kms = kms_client
        self._key_id = key_id
        self._raw_max = raw_max_bytes
        self._verify = verify_after_sign
        self._pem: bytes | None = None
        self._arn: str | None = None
        self._lock = threading.Lock()

    @property
    def key_id(self) -> str:
        """The ``KeyId`` that ``GetPublicKey`` reports (the key ARN on AWS; moto reports the bare id).

        Resolved once and cached, so it never changes between calls; the id given is the
        fallback when KMS reports none.
        """
        if self._pem is None:
            self.public_key_pem()
        return self._arn or self._key_id

    def _raise(self, exc: ClientError, action: str) -> None:
        code = _error_code(exc)
        if code in RETRIABLE_KMS_ERRORS:
            raise exc  # transient: let Lambda / SQS retry with the original error
        raise KmsSigningError(
            f"KMS {action} failed for key {self._key_id!r}: {code or 'error'}: {exc}",
            key_id=self._key_id,
            code=code or None,
        ) from exc

    def public_key_pem(self) -> bytes:
        """The key's public half as PEM SubjectPublicKeyInfo (fetched once, then cached)."""
        if self._pem is not None:
            return self._pem
        with self._lock:
            if self._pem is None:
                try:
                    resp = self._kms.get_public_key(KeyId=self._key_id)
                except ClientError as exc:
                    self._raise(exc, "GetPublicKey")
                    raise  # unreachable, for the type checker
                spec = resp.get("KeySpec") or resp.get("CustomerMasterKeySpec")
                if spec and spec != "ECC_NIST_P256":
                    raise KmsSigningError(
                        f"key {self._key_id!r} is {spec}, not ECC_NIST_P256", key_id=self._key_id
                    )
                if resp.get("KeyUsage", "SIGN_VERIFY") != "SIGN_VERIFY":
                    raise KmsSigningError(
                        f"key {self._key_id!r} is not a SIGN_VERIFY key", key_id=self._key_id
                    )
                from cryptography.hazmat.primitives import serialization

                der = resp["PublicKey"]
                key = serialization.load_der_public_key(der)
                pem = key.public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
                load_public_key(pem)  # validates P-256
                self._arn = resp.get("KeyId") or self._arn
                self._pem = pem
        assert self._pem is not None
        return self._pem

    def _kms_sign(self, message: bytes, message_type: str) -> bytes:
        try:
            resp = self._kms.sign(
                KeyId=self._key_id,
                Message=message,
                MessageType=message_type,  # type: ignore[arg-type]
                SigningAlgorithm=SIGNING_ALGORITHM,
            )
        except ClientError as exc:
            self._raise(exc, "Sign")
            raise  # unreachable, for the type checker
        return bytes(resp["Signature"])

    def sign(self, message: bytes) -> bytes:
        """DER ECDSA P-256/SHA-256 signature of ``message`` made by KMS.

        RAW up to ``raw_max_bytes``, DIGEST beyond. Should a DIGEST signature not verify (moto
        ignores ``MessageType``), the full message is sent once more as RAW: moto accepts any
        size, while real KMS refuses RAW above 4096 bytes, so that retry never hides a real fault.
        """
        if self._raw_max is None or len(message) <= self._raw_max:
            signature = self._kms_sign(message, "RAW")
            if self._verify and not verify_signature(self.public_key_pem(), message, signature):
                raise KmsSigningError(
                    f"KMS returned a signature that does not verify with key {self._key_id!r}",
                    key_id=self._key_id,
                    code="SignatureMismatch",
                )
            return signature
        signature = self._kms_sign(hashlib.sha256(message).digest(), "DIGEST")
        if not self._verify or verify_signature(self.public_key_pem(), message, signature):
            return signature
        try:
            signature = self._kms_sign(message, "RAW")
        except KmsSigningError as exc:
            raise KmsSigningError(
                f"KMS DIGEST signature does not verify with key {self._key_id!r}, and RAW was refused: {exc}",
                key_id=self._key_id,
                code="SignatureMismatch",
            ) from exc
        if not verify_signature(self.public_key_pem(), message, signature):
            raise KmsSigningError(
                f"KMS returned signatures that do not verify with key {self._key_id!r}",
                key_id=self._key_id,
                code="SignatureMismatch",
            )
        return signature

    def __repr__(self) -> str:
        return f"KmsSigner(key_id={self.key_id!r})"
