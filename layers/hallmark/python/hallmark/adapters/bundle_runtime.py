"""The release bundle of one package, assembled from the state table, the manifests bucket and
the audit log (``GET /packages/{id}/bundle`` serves it; deployment admission verifies it)."""

from __future__ import annotations

import json
from typing import Any

from hallmark.adapters import runtime
from hallmark.errors import NotFound
from hallmark.public_keys import describe_keys


def release_bundle(package: dict[str, Any], bought: Any | None = None) -> dict[str, Any]:
    """``hallmark.bundle/v1`` of ``package`` (``not_published`` when it has no manifest yet), with
    its ceremony provenance, and the purchase's proofs when ``bought`` (an order of it) is given."""
    from hallmark.adapters.dynamo_ceremony import DynamoCeremonyRepository, DynamoWitnessRepository
    from hallmark.adapters.dynamo_governance import DynamoApproverRepository
    from hallmark.bundle import KEY_PURPOSES, collect_bundle
    from hallmark.market.store import ProofStore

    ref = (package.get("manifest") or {}).get("repository")
    if not ref:
        raise NotFound("published manifest of package", str(package.get("packageId")), code="not_published")
    proofs = ProofStore(runtime.docs())
    envelope = json.loads(runtime.client("s3").get_object(Bucket=ref["bucket"], Key=ref["key"])["Body"].read())
    governance = runtime.governance()
    upgrade = governance.load("upgrade", package["upgradeId"]) if package.get("upgradeId") else None
    approver_keys: dict[str, list[dict[str, str]]] = {}
    if upgrade is not None:
        repo = DynamoApproverRepository(runtime.client("dynamodb"), runtime.require("TABLE_STATE"))
        for approver_id in {r.approver_id for r in upgrade.approvals}:
            a = repo.get(approver_id)
            if a is not None:
                approver_keys[approver_id] = [{"keyFingerprint": a.key_fingerprint, "publicKeyPem": a.public_key_pem},
                                              *({"keyFingerprint": k.key_fingerprint, "publicKeyPem": k.public_key_pem}
                                                for k in a.previous_keys)]
    impact = package.get("impact", package["meta"]["impact"])
    fingerprints = {k["purpose"]: k["fingerprint"] for k in describe_keys({p: runtime.signer(p) for p in KEY_PURPOSES})}
    state = runtime.table("state")
    return collect_bundle(package, envelope, upgrade=upgrade, approver_keys=approver_keys,
                          threshold=governance.threshold_for(impact), audit_log=runtime.audit_log(),
                          key_fingerprints=fingerprints, ceremonies=DynamoCeremonyRepository(state),
                          witnesses=DynamoWitnessRepository(state), order=bought,
                          order_proofs=(proofs.get(bought.ledger_proof_id), proofs.get(bought.delivery_proof_id))
                          if bought else (None, None))
