"""Envelope encryption of delivered artifacts with the AWS Encryption SDK over a KMS key.

* ``StrictAwsKmsMasterKeyProvider`` naming exactly one symmetric KMS key ARN: decryption
  never discovers or calls any other key. (The keyring API needs the optional
  ``aws-cryptographic-material-providers`` package, which the layer does not ship.)
* ``CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT``: key commitment on both ways, so a
  ciphertext decrypts to one plaintext only; ``max_encrypted_data_keys=1``.
* The encryption context (``hallmark.market.delivery.encryption_context``: orderId, buyer,
  manifestDigest) is authenticated into the message; :meth:`EnvelopeEncryptor.decrypt`
  refuses a message whose context differs from the expected one in any key.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from hallmark.errors import DomainError

if TYPE_CHECKING:
    import botocore.session

__all__ = ["EnvelopeEncryptor", "EnvelopeError"]

RESERVED_PREFIX = "aws-crypto-"
#: KMS errors that mean "this ciphertext is not for this key", not a transient fault.
_KMS_REJECTIONS = frozenset({"InvalidCiphertextException", "IncorrectKeyException", "AccessDeniedException"})


class EnvelopeError(DomainError):
    """``context_mismatch`` (403) or ``decryption_failed`` (422)."""


class EnvelopeEncryptor:
    def __init__(self, key_arn: str, *, botocore_session: botocore.session.Session | None = None) -> None:
        import aws_encryption_sdk  # deferred: the SDK is only needed once an encryptor is built
        from aws_encryption_sdk import CommitmentPolicy

        self._key_arn = key_arn
        self._client = aws_encryption_sdk.EncryptionSDKClient(
            commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT,
            max_encrypted_data_keys=1,
        )
        kwargs = {"botocore_session": botocore_session} if botocore_session is not None else {}
        self._provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=[key_arn], **kwargs)

    @property
    def key_arn(self) -> str:
        return self._key_arn

    def encrypt(self, plaintext: bytes, context: Mapping[str, str]) -> bytes:
        """An ESDK message (data key from KMS ``GenerateDataKey``) bound to ``context``."""
        bad = [k for k in context if k.startswith(RESERVED_PREFIX)]
        if bad:
            raise EnvelopeError("invalid_input", "encryption context keys may not use the reserved prefix",
                                details={"keys": bad})
        ciphertext, _header = self._client.encrypt(
            source=plaintext, key_provider=self._provider, encryption_context=dict(context)
        )
        return bytes(ciphertext)

    def decrypt(self, ciphertext: bytes, expected_context: Mapping[str, str]) -> bytes:
        """Plaintext, only if the message is intact, was made with our key, and carries every
        ``expected_context`` key with the same value. Raises :class:`EnvelopeError`."""
        from aws_encryption_sdk.exceptions import AWSEncryptionSDKClientError
        from cryptography.exceptions import InvalidSignature, InvalidTag

        try:
            plaintext, header = self._client.decrypt(source=ciphertext, key_provider=self._provider)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _KMS_REJECTIONS:
                raise EnvelopeError("decryption_failed", "the data key does not decrypt with this KMS key") from None
            raise
        except (AWSEncryptionSDKClientError, InvalidTag, InvalidSignature, ValueError, struct.error,
                EOFError, KeyError, IndexError) as exc:
            raise EnvelopeError("decryption_failed", "the ciphertext is malformed or has been tampered with",
                                details={"reason": type(exc).__name__}) from None
        actual = header.encryption_context
        differing = sorted(k for k, v in expected_context.items() if actual.get(k) != v)
        if differing:
            raise EnvelopeError("context_mismatch", "the ciphertext was made for another context",
                                details={"keys": differing})
        return bytes(plaintext)
