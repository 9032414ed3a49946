"""What witnesses sign, and the provenance record KMS signs when a ceremony completes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hallmark._crypto import b64decode, canonical, sha256_hex, verify_p256
from hallmark._domain import format_rfc3339
from hallmark.ceremony.models import Ceremony, ProvenanceAttestation, Tier

WITNESS_PURPOSE = "hallmark/ceremony-witness/v1"
PROVENANCE_TYPE = "hallmark/provenance/v1"

#: Turns a provenance record into the bytes that are signed (default: RFC 8785). The lead may
#: inject a DSSE PAE encoder here; verification must use the same encoder.
RecordEncoder = Callable[[dict[str, Any]], bytes]


def ceremony_payload(ceremony: Ceremony) -> bytes:
    """The canonical statement every witness signs (the same bytes for all witnesses).

    It binds the ceremony id, initiator, target tier, type, sorted artifacts, description and
    the ceremony's window, so a witness signature cannot be moved to another ceremony.
    """
    return canonical({
        "purpose": WITNESS_PURPOSE,
        "ceremonyId": ceremony.ceremony_id,
        "initiator": ceremony.initiator,
        "tier": ceremony.tier,
        "type": ceremony.type,
        "artifacts": sorted(ceremony.artifacts),
        "blessing": ceremony.blessing,
        "createdAt": format_rfc3339(ceremony.created_at),
        "deadline": format_rfc3339(ceremony.deadline),
    })


def provenance_record(ceremony: Ceremony, completed_at_rfc3339: str) -> dict[str, Any]:
    """``{initiator, timestamp, tier, witnesses (sorted), artifacts (sorted), blessing, ...}``.

    Beyond the seed's fields it carries the ceremony id and type, the blessing superadmin,
    and each witness's signature with the digest of the statement they signed, so a
    verifier can re-check every witness as well as the KMS signature.
    """
    witness_sigs = sorted(ceremony.witnesses, key=lambda w: w.witness_id)
    return {
        "_type": PROVENANCE_TYPE,
        "ceremonyId": ceremony.ceremony_id,
        "type": ceremony.type,
        "initiator": ceremony.initiator,
        "timestamp": format_rfc3339(ceremony.created_at),
        "completedAt": completed_at_rfc3339,
        "tier": ceremony.tier,
        "witnesses": sorted(w.witness_id for w in witness_sigs),
        "artifacts": sorted(ceremony.artifacts),
        "blessing": ceremony.blessing,
        "blessedBy": ceremony.blessed_by.superadmin if ceremony.blessed_by else None,
        "witnessStatementDigest": sha256_hex(ceremony_payload(ceremony)),
        "witnessSignatures": [
            {"witnessId": w.witness_id, "keyFingerprint": w.key_fingerprint, "signature": w.signature}
            for w in witness_sigs
        ],
    }


def provenance_payload(record: dict[str, Any]) -> bytes:
    """RFC 8785 bytes of the record (what the proof key signs unless an encoder is injected)."""
    return canonical(record)


def signature_id(tier: Tier, payload: bytes) -> str:
    """``provenance-<tier>-<sha256 of the signed bytes>``: recomputable by any verifier."""
    return f"provenance-{tier}-{sha256_hex(payload)}"


def verify_attestation(
    attestation: ProvenanceAttestation, public_key_pem: str | bytes, encode: RecordEncoder = provenance_payload
) -> bool:
    """True iff the signature verifies under ``public_key_pem`` and the id matches the record."""
    payload = encode(attestation.record)
    tier = attestation.record.get("tier")
    if tier not in ("bronze", "silver", "gold") or attestation.signature_id != signature_id(tier, payload):
        return False
    try:
        der = b64decode(attestation.signature)
    except ValueError:
        return False
    return verify_p256(public_key_pem, payload, der)
