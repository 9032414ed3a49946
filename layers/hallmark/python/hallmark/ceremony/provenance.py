"""What witnesses sign, and the provenance record KMS signs when a ceremony completes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hallmark.canonical import canonical_bytes, sha256_hex, to_rfc3339
from hallmark.ceremony.models import TIERS, ArtifactProvenance, Ceremony, ProvenanceAttestation, Tier
from hallmark.dsse import DsseError, pae, sign_envelope, verify_envelope
from hallmark.ports import Signer
from hallmark.signing import b64decode, verify_signature

WITNESS_PURPOSE = "hallmark/ceremony-witness/v1"
PROVENANCE_TYPE = "hallmark/provenance/v1"
#: The DSSE ``payloadType`` of a signed provenance record. The payload is the RFC 8785 JSON of
#: the record itself (not an in-toto Statement: artifacts are named, not digested), so it
#: gets its own media type rather than ``application/vnd.in-toto+json``.
PROVENANCE_PAYLOAD_TYPE = "application/vnd.hallmark.provenance+json"

#: Turns a provenance record into the bytes that are signed (default: RFC 8785). The lead may
#: inject a DSSE PAE encoder here; verification must use the same encoder.
RecordEncoder = Callable[[dict[str, Any]], bytes]


def ceremony_payload(ceremony: Ceremony) -> bytes:
    """The canonical statement every witness signs (the same bytes for all witnesses).

    It binds the ceremony id, initiator, target tier, type, sorted artifacts, description and
    the ceremony's window, so a witness signature cannot be moved to another ceremony.
    """
    return canonical_bytes({
        "purpose": WITNESS_PURPOSE,
        "ceremonyId": ceremony.ceremony_id,
        "initiator": ceremony.initiator,
        "tier": ceremony.tier,
        "type": ceremony.type,
        "artifacts": sorted(ceremony.artifacts),
        "blessing": ceremony.blessing,
        "createdAt": to_rfc3339(ceremony.created_at, "auto"),
        "deadline": to_rfc3339(ceremony.deadline, "auto"),
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
        "timestamp": to_rfc3339(ceremony.created_at, "auto"),
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
    return canonical_bytes(record)


def signature_id(tier: Tier, payload: bytes) -> str:
    """``provenance-<tier>-<sha256 of the signed bytes>``: recomputable by any verifier."""
    return f"provenance-{tier}-{sha256_hex(payload)}"


def verify_attestation(
    attestation: ProvenanceAttestation, public_key_pem: str | bytes, encode: RecordEncoder = provenance_payload
) -> bool:
    """True iff the signature verifies under ``public_key_pem`` and the id matches the record
    (for a DSSE attestation: the envelope verifies and carries exactly the record)."""
    return attestation_failure(attestation, public_key_pem, encode) is None


# ----------------------------------------------------------------------------- DSSE


def dsse_encoder(payload_type: str = PROVENANCE_PAYLOAD_TYPE) -> RecordEncoder:
    """The encoder whose bytes a DSSE signature covers: ``PAE(payload_type, RFC8785(record))``."""

    def encode(record: dict[str, Any]) -> bytes:
        return pae(payload_type, canonical_bytes(record))

    return encode


def attest_dsse(record: dict[str, Any], signer: Signer,
                payload_type: str = PROVENANCE_PAYLOAD_TYPE) -> ProvenanceAttestation:
    """Sign ``record`` as a DSSE envelope (``hallmark.dsse.sign_envelope``) and name it.

    ``signature_id`` = ``provenance-<tier>-<sha256 of PAE(payload_type, payload)>``, the bytes
    the signature covers, so any verifier holding the envelope can recompute it.
    """
    payload = canonical_bytes(record)
    envelope = sign_envelope(payload, payload_type, signer)
    first = envelope["signatures"][0]
    return ProvenanceAttestation(
        record=record, key_id=str(first["keyid"]), signature=str(first["sig"]),
        signature_id=signature_id(record["tier"], pae(payload_type, payload)),
        payload_type=payload_type, envelope=envelope,
    )


def attestation_failure(
    attestation: ProvenanceAttestation, public_key_pem: str | bytes, encode: RecordEncoder = provenance_payload
) -> str | None:
    """Why ``attestation`` does not verify under ``public_key_pem``, or ``None`` when it does.

    A DSSE attestation must carry an envelope of its payload type whose signature verifies
    (``hallmark.dsse.verify_envelope``), whose payload is exactly RFC 8785 of the stored
    record, and whose PAE bytes hash to ``signature_id``. Reasons: ``envelope_invalid``,
    ``record_mismatch``, ``signature_id_mismatch``, ``invalid_tier``, ``signature_invalid``.
    """
    tier = attestation.record.get("tier")
    if tier not in TIERS:
        return "invalid_tier"
    pem = public_key_pem.encode("ascii") if isinstance(public_key_pem, str) else public_key_pem
    if attestation.payload_type is not None or attestation.envelope is not None:
        if attestation.envelope is None or attestation.payload_type is None:
            return "envelope_invalid"
        try:
            payload = verify_envelope(attestation.envelope, pem, expected_payload_type=attestation.payload_type)
        except (DsseError, ValueError):
            return "envelope_invalid"
        if payload != canonical_bytes(attestation.record):
            return "record_mismatch"
        if attestation.signature_id != signature_id(tier, pae(attestation.payload_type, payload)):
            return "signature_id_mismatch"
        return None
    payload = encode(attestation.record)
    if attestation.signature_id != signature_id(tier, payload):
        return "signature_id_mismatch"
    try:
        der = b64decode(attestation.signature)
    except ValueError:
        return "signature_invalid"
    return None if verify_signature(pem, payload, der) else "signature_invalid"


def artifact_provenance_failure(
    artifact_id: str, held: ArtifactProvenance | None, attestation: ProvenanceAttestation | None,
    public_key_pem: str | bytes, encode: RecordEncoder = provenance_payload,
) -> str | None:
    """Why an artifact's current tier is not backed by a verified ceremony record (``None`` when
    it is): the attestation must verify under ``public_key_pem`` and name this artifact, the
    held tier and the held ceremony. Reasons: ``no_provenance``, ``provenance_missing``,
    ``signature_mismatch``, those of :func:`attestation_failure`, ``artifact_not_in_record``,
    ``tier_mismatch``, ``ceremony_mismatch``."""
    if held is None:
        return "no_provenance"
    if attestation is None:
        return "provenance_missing"
    if attestation.signature_id != held.signature_id:
        return "signature_mismatch"
    failure = attestation_failure(attestation, public_key_pem, encode)
    if failure is not None:
        return failure
    record = attestation.record
    if artifact_id not in record.get("artifacts", ()):
        return "artifact_not_in_record"
    if record.get("tier") != held.tier:
        return "tier_mismatch"
    if record.get("ceremonyId") != held.ceremony_id:
        return "ceremony_mismatch"
    return None
