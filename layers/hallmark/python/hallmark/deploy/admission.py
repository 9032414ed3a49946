"""Admission: a deployment is admitted from the public keys, not from a database flag.

The DSSE manifest verifies with the manifest key and its subject is the sha256 of the bytes that
will be deployed; the manifest's ``ManifestSigned`` audit entry is included in a checkpoint the
audit key signed (inclusion proof checked); the package is of type ``lambda`` and declares an
allowed runtime; the tier comes from a ceremony record that verifies with the proof key; the
environment's minimum tier is met. :func:`admission_failure` is pure (the benchmark times it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hallmark.bundle import verify_bundle
from hallmark.ceremony.provenance import artifact_provenance_failure
from hallmark.deploy.models import Policy
from hallmark.deploy.ports import ReleaseEvidence
from hallmark.dsse import manifest_signature_id
from hallmark.errors import DomainError
from hallmark.release.validators.lambda_package import (
    PACKAGE_TYPE,
    LambdaPackageError,
    LambdaSpec,
    lambda_spec,
)

CEREMONY = "ceremony"


class AwaitingCheckpoint(DomainError):
    """The manifest's audit entry is not covered by a signed checkpoint yet (transient: the
    state machine retries; when the retries run out the deployment is refused)."""

    def __init__(self, package_id: str) -> None:
        super().__init__("awaiting_checkpoint", f"the ManifestSigned event of {package_id} is not checkpointed yet",
                         http_status=503, details={"packageId": package_id})


@dataclass(frozen=True)
class Admitted:
    tier: str
    signed_sha256: str
    manifest_signature_id: str
    provenance_signature_id: str
    spec: LambdaSpec
    emergency: bool


@dataclass(frozen=True)
class Refusal:
    reason: str
    detail: str


def _statement(bundle: Mapping[str, Any]) -> dict[str, Any]:
    import base64

    payload = base64.b64decode(bundle["manifest"]["envelope"]["payload"])
    doc: dict[str, Any] = json.loads(payload)
    return doc


def admission_failure(ev: ReleaseEvidence, environment: str, policy: Policy) -> Admitted | Refusal:
    """Admit or refuse (raises :class:`AwaitingCheckpoint` while the proofs cannot exist yet).

    The tier is the one a ceremony record names for this package: the bundle's ceremony part,
    verified by :func:`verify_bundle` (the records' DSSE signatures under the proof key, each
    witness's signature, the ``TierAwarded`` events proved), or, for a bundle without that part,
    the stored record verified by :func:`artifact_provenance_failure`."""
    package_id = str(ev.package.get("packageId"))
    audit = ev.bundle.get("audit") or {}
    items = audit.get("events") or []
    signed = [i for i in items if isinstance(i, Mapping) and (i.get("event") or {}).get("type") == "ManifestSigned"]
    # admission needs the manifest's own audit entry proved and what the tier rests on, not the
    # package's whole release history
    signed_ids = {id(i) for i in signed}  # by identity: comparing the items would walk them
    kept = [i for i in items if isinstance(i, Mapping)
            and (id(i) in signed_ids or (i.get("event") or {}).get("chain") == CEREMONY)]
    bundle = {**ev.bundle, "audit": {**audit, "events": kept}}
    checks = verify_bundle(bundle, ev.keys, ev.artifact)
    failed = [c for c in checks if not c.ok]
    uncovered = int(audit.get("uncoveredEvents") or 0) > 0
    if any(c.name == "manifest signature" for c in failed):
        return Refusal("manifest_invalid", next(c.detail for c in failed if c.name == "manifest signature"))
    statement = _statement(bundle)
    predicate = statement.get("predicate") or {}
    emergency = bool(predicate.get("emergency"))
    # governance decides about an unratified emergency release (and revokes its deployments)
    failed = [c for c in failed if not (emergency and c.name.startswith("approval"))]
    if any(c.name == "artifact digest" for c in failed):
        return Refusal("artifact_mismatch", next(c.detail for c in failed if c.name == "artifact digest"))
    if not signed:
        if uncovered:
            raise AwaitingCheckpoint(package_id)
        return Refusal("inclusion_proof_missing", "no inclusion proof of the manifest's ManifestSigned audit entry")
    if not all(isinstance(i.get("proof"), Mapping) for i in signed):
        return Refusal("inclusion_proof_missing", "the manifest's ManifestSigned audit entry comes without its proof")
    audit_failed = [c for c in failed if c.name.startswith("audit release")]
    if audit_failed:
        return Refusal("inclusion_proof_invalid", f"{audit_failed[0].name}: {audit_failed[0].detail}")
    if predicate.get("type") != PACKAGE_TYPE:
        return Refusal("not_a_lambda_package", f"the signed manifest declares type {predicate.get('type')!r}")
    try:
        spec = lambda_spec(ev.artifact)
    except LambdaPackageError as exc:
        return Refusal("not_a_lambda_package", str(exc))
    if failed:  # the bundle's ceremony part (witnesses, proved ceremony events), or anything else
        if uncovered:
            raise AwaitingCheckpoint(package_id)
        return Refusal("tier_unverified" if bundle.get("ceremony") else "evidence_invalid",
                       f"{failed[0].name}: {failed[0].detail}")
    part = bundle.get("ceremony")
    if part is not None:  # verified above: records under proof.pem, witnesses, TierAwarded proved
        tier = str(part["tier"])
        provenance_id = str(part["ceremonies"][-1]["attestation"]["signatureId"])
    else:  # a bundle without the ceremony part: the stored record, verified here
        why = artifact_provenance_failure(package_id, ev.provenance, ev.attestation, ev.keys["proof"])
        if why is not None or ev.attestation is None:
            if uncovered and why == "no_provenance":
                raise AwaitingCheckpoint(package_id)
            return Refusal("tier_unverified", f"no verified ceremony record for {package_id}: {why}")
        tier, provenance_id = str(ev.attestation.record["tier"]), ev.attestation.signature_id
    if not policy.tier_allowed(tier, environment):
        return Refusal("tier_below_minimum",
                       f"tier {tier} is below {environment}'s minimum {policy.min_tier.get(environment)}")
    subject = statement["subject"][0]["digest"]["sha256"]
    return Admitted(tier=tier, signed_sha256=str(subject),
                    manifest_signature_id=manifest_signature_id(bundle["manifest"]["envelope"]),
                    provenance_signature_id=provenance_id, spec=spec, emergency=emergency)
