"""The bytes an approver signs, and the signing helper used by ``hallmark approve``.

An approval is an ECDSA P-256/SHA-256 signature (DER, base64 on the wire) over the RFC 8785
canonical JSON of ``{upgradeId, manifestDigest, decision, expiresAt, nonce}`` (for a
settlement plan: ``{settlementId, planDigest, decision, expiresAt, nonce}``).
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import TYPE_CHECKING, Any

from hallmark.canonical import canonical_bytes, parse_rfc3339, to_rfc3339
from hallmark.governance.models import ApprovalSubject, Decision, SubjectKind
from hallmark.signing import b64encode, sign_p256

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

_KEYS: dict[SubjectKind, tuple[str, str]] = {
    "upgrade": ("upgradeId", "manifestDigest"),
    "settlement": ("settlementId", "planDigest"),
}


def approval_message(upgrade_id: str, manifest_digest: str, decision: str, expires_at: str, nonce: str) -> bytes:
    """RFC 8785 bytes of ``{upgradeId, manifestDigest, decision, expiresAt, nonce}``."""
    return subject_message("upgrade", upgrade_id, manifest_digest, decision, expires_at, nonce)


def settlement_approval_message(
    settlement_id: str, plan_digest: str, decision: str, expires_at: str, nonce: str
) -> bytes:
    """RFC 8785 bytes of ``{settlementId, planDigest, decision, expiresAt, nonce}``."""
    return subject_message("settlement", settlement_id, plan_digest, decision, expires_at, nonce)


def subject_message(
    kind: SubjectKind, subject_id: str, digest: str, decision: str, expires_at: str, nonce: str
) -> bytes:
    """The signed bytes for a subject of either kind."""
    id_key, digest_key = _KEYS[kind]
    return canonical_bytes(
        {id_key: subject_id, digest_key: digest, "decision": decision, "expiresAt": expires_at, "nonce": nonce}
    )


def message_for(subject: ApprovalSubject, decision: str, expires_at: str, nonce: str) -> bytes:
    """The bytes a signature over ``subject`` must cover (its own id and digest)."""
    return subject_message(subject.kind, subject.subject_id, subject.digest, decision, expires_at, nonce)


def new_nonce() -> str:
    """A fresh 128-bit nonce (32 hex characters)."""
    return secrets.token_hex(16)


def sign_approval(
    private_key: ec.EllipticCurvePrivateKey,
    *,
    approver_id: str,
    subject_id: str,
    digest: str,
    decision: Decision,
    expires_at: datetime | str,
    nonce: str | None = None,
    kind: SubjectKind = "upgrade",
) -> dict[str, Any]:
    """Sign a decision locally and return the JSON form to POST (the key never leaves the caller).

    The form echoes ``upgradeId``/``manifestDigest`` (or ``settlementId``/``planDigest``) so the
    server can tell a form posted to the wrong subject (``wrong_subject``) from a forgery.
    """
    expires = expires_at if isinstance(expires_at, str) else to_rfc3339(expires_at, "auto")
    parse_rfc3339(expires)
    nonce = nonce or new_nonce()
    message = subject_message(kind, subject_id, digest, decision, expires, nonce)
    id_key, digest_key = _KEYS[kind]
    return {
        "approverId": approver_id,
        id_key: subject_id,
        digest_key: digest,
        "decision": decision,
        "expiresAt": expires,
        "nonce": nonce,
        "signature": b64encode(sign_p256(private_key, message)),
    }
