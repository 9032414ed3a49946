"""Encrypted delivery: the encryption context that binds a ciphertext to one order, and
the signed delivery proof that ties the delivery to the manifest and the payment."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hallmark._domain import EventDraft
from hallmark.canonical import as_utc, to_rfc3339
from hallmark.errors import InvalidInput
from hallmark.market.proofs import SignedProof, sign_proof
from hallmark.ports import Signer

CONTEXT_KEYS = ("orderId", "buyer", "manifestDigest")
#: The presigned download URL and the delivery proof expire together (15 minutes default).
DEFAULT_DELIVERY_TTL = timedelta(minutes=15)
MAX_DELIVERY_TTL = timedelta(days=7)  # the S3 presigned-URL maximum


def encryption_context(order_id: str, buyer: str, manifest_digest: str) -> dict[str, str]:
    """``{orderId, buyer, manifestDigest}``: authenticated (not secret) data bound into the
    ciphertext; decryption with any other order's context fails."""
    context = {"orderId": order_id, "buyer": buyer, "manifestDigest": manifest_digest}
    for key, value in context.items():
        if not isinstance(value, str) or not value or len(value) > 1024:
            raise InvalidInput(f"encryption context {key} must be a non-empty string", {"field": key})
    return context


def delivery_proof(
    *,
    order_id: str,
    manifest_signature_id: str,
    ledger_proof_id: str,
    ciphertext_digest: str,
    now: datetime,
    ttl: timedelta = DEFAULT_DELIVERY_TTL,
) -> dict[str, Any]:
    """``{orderId, manifestSignatureId, ledgerProofId, ciphertextDigest, expiresAt}``."""
    if not timedelta(0) < ttl <= MAX_DELIVERY_TTL:
        raise InvalidInput("delivery ttl must be within (0, 7 days]", {"ttlSeconds": ttl.total_seconds()})
    for name, value in (("orderId", order_id), ("manifestSignatureId", manifest_signature_id),
                        ("ledgerProofId", ledger_proof_id), ("ciphertextDigest", ciphertext_digest)):
        if not value:
            raise InvalidInput(f"{name} is required", {"field": name})
    return {
        "orderId": order_id,
        "manifestSignatureId": manifest_signature_id,
        "ledgerProofId": ledger_proof_id,
        "ciphertextDigest": ciphertext_digest,
        "expiresAt": to_rfc3339(as_utc(now) + ttl, "auto"),
    }


def sign_delivery_proof(proof: dict[str, Any], signer: Signer) -> SignedProof:
    """Sign with the proof key; ``proof_id`` is ``delivery-<sha256>``."""
    return sign_proof("delivery", proof, signer)


def delivery_issued_event(signed: SignedProof, actor: str = "system") -> EventDraft:
    return EventDraft("DeliveryIssued", signed.proof["orderId"], {
        "deliveryProofId": signed.proof_id, "keyId": signed.key_id, **signed.proof}, actor=actor)
