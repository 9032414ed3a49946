"""Signed checkpoints of a chain.

Wire format (``docs/wire-format.md``): ``{"chain", "seq", "ts", "headHash", "merkleRoot",
"prevCheckpointHash", "keyId", "keyFingerprint", "signature"}``. A checkpoint covers events ``1..seq``;
``headHash`` is the hash of event ``seq``; ``merkleRoot`` the RFC 6962 head over the event
hashes (hex); ``prevCheckpointHash = sha256(RFC8785(previous checkpoint))`` -- the whole
previous checkpoint, its ``signature`` included -- or 64 zeros for the first;
``keyFingerprint`` = lowercase hex SHA-256 of the signing key's DER SubjectPublicKeyInfo (as
``GET /keys`` lists it; absent on checkpoints made before it was added);
``signature`` = base64 DER ECDSA P-256/SHA-256 over ``RFC8785(checkpoint without "signature")``.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from hallmark.canonical import canonical_bytes, sha256_hex
from hallmark.ports import Signer
from hallmark.signing import public_key_fingerprint, verify_signature

__all__ = [
    "CHECKPOINT_FIELDS",
    "GENESIS_CHECKPOINT_HASH",
    "LEGACY_CHECKPOINT_FIELDS",
    "CheckpointPolicy",
    "build_checkpoint",
    "checkpoint_hash",
    "checkpoint_signing_bytes",
    "verify_checkpoint_signature",
]

GENESIS_CHECKPOINT_HASH: Final = "0" * 64
CHECKPOINT_FIELDS: Final = (
    "chain", "seq", "ts", "headHash", "merkleRoot", "prevCheckpointHash", "keyId", "keyFingerprint", "signature",
)  # fmt: skip
#: checkpoints signed before ``keyFingerprint`` existed carry every other field; replay accepts both
LEGACY_CHECKPOINT_FIELDS: Final = tuple(f for f in CHECKPOINT_FIELDS if f != "keyFingerprint")


def checkpoint_signing_bytes(checkpoint: Mapping[str, Any]) -> bytes:
    """``RFC8785(checkpoint without "signature")``: the bytes the checkpoint key signs."""
    return canonical_bytes({k: v for k, v in checkpoint.items() if k != "signature"})


def checkpoint_hash(checkpoint: Mapping[str, Any]) -> str:
    """``sha256(RFC8785(checkpoint))`` over the full checkpoint, signature included (lowercase hex).

    This is the value the next checkpoint carries as ``prevCheckpointHash``.
    """
    return sha256_hex(canonical_bytes(dict(checkpoint)))


def build_checkpoint(
    *,
    chain: str,
    seq: int,
    ts: str,
    head_hash: str,
    merkle_root: str,
    prev_checkpoint_hash: str,
    signer: Signer,
) -> dict[str, Any]:
    """Assemble and sign a checkpoint covering events ``1..seq`` of ``chain``."""
    body: dict[str, Any] = {
        "chain": chain,
        "seq": seq,
        "ts": ts,
        "headHash": head_hash,
        "merkleRoot": merkle_root,
        "prevCheckpointHash": prev_checkpoint_hash,
        "keyId": signer.key_id,
        "keyFingerprint": public_key_fingerprint(signer.public_key_pem()),
    }
    signature = signer.sign(canonical_bytes(body))
    body["signature"] = base64.b64encode(signature).decode("ascii")
    return body


def verify_checkpoint_signature(checkpoint: Mapping[str, Any], public_key_pem: bytes) -> bool:
    """True if the checkpoint's ``signature`` verifies with ``public_key_pem``."""
    sig = checkpoint.get("signature")
    if not isinstance(sig, str):
        return False
    try:
        der = base64.b64decode(sig, validate=True)
    except (binascii.Error, ValueError):
        return False
    if base64.b64encode(der).decode("ascii") != sig:
        return False  # only the canonical base64 text: one checkpoint, one byte string
    try:
        message = checkpoint_signing_bytes(checkpoint)
    except ValueError:
        return False
    return verify_signature(public_key_pem, message, der)


@dataclass(frozen=True)
class CheckpointPolicy:
    """A checkpoint is due every ``every_n`` events or ``every_seconds`` seconds.

    ``every_seconds`` counts from the previous checkpoint (or, before the first, from the
    first uncovered event); ``math.inf`` turns the time trigger off. Nothing is due when
    every event is already covered.
    """

    every_n: int = 1000
    every_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.every_n < 1:
            raise ValueError("every_n must be >= 1")
        if not self.every_seconds > 0 or math.isnan(self.every_seconds):
            raise ValueError("every_seconds must be > 0 (math.inf disables the time trigger)")

    def due(self, *, uncovered: int, seconds_since_last: float | None) -> bool:
        """Is a checkpoint due with ``uncovered`` events past the last one, ``seconds_since_last`` later?"""
        if uncovered <= 0:
            return False
        if uncovered >= self.every_n:
            return True
        return seconds_since_last is not None and seconds_since_last >= self.every_seconds
