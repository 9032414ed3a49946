"""Signed proofs (ledger, delivery): canonical JSON payload signed through the ``Signer`` port."""

from __future__ import annotations

from typing import Any

from hallmark._domain import DomainModel
from hallmark.canonical import canonical_bytes, sha256_hex
from hallmark.ports import Signer
from hallmark.signing import b64decode, b64encode, verify_signature


class SignedProof(DomainModel):
    """``signature`` (base64 DER, ECDSA P-256/SHA-256) by ``key_id`` over RFC 8785 of ``proof``.

    ``proof_id`` = ``<kind>-<sha256 hex of the signed bytes>``: anyone can recompute it.
    """

    kind: str
    proof: dict[str, Any]
    key_id: str
    signature: str
    proof_id: str


def proof_payload(proof: dict[str, Any]) -> bytes:
    return canonical_bytes(proof)


def proof_id_for(kind: str, proof: dict[str, Any]) -> str:
    return f"{kind}-{sha256_hex(proof_payload(proof))}"


def sign_proof(kind: str, proof: dict[str, Any], signer: Signer) -> SignedProof:
    payload = proof_payload(proof)
    return SignedProof(kind=kind, proof=proof, key_id=signer.key_id, signature=b64encode(signer.sign(payload)),
                       proof_id=f"{kind}-{sha256_hex(payload)}")


def verify_proof(signed: SignedProof, public_key_pem: str | bytes) -> bool:
    """True iff the id matches the proof and the signature verifies under ``public_key_pem``."""
    if signed.proof_id != proof_id_for(signed.kind, signed.proof):
        return False
    try:
        der = b64decode(signed.signature)
    except ValueError:
        return False
    return verify_signature(public_key_pem, proof_payload(signed.proof), der)
