"""Ceremony step "Award tiers": every artifact of the ceremony moves up to its tier in one
conditional transaction (``TierAwarded`` each); ``CeremonyCompleted`` and ``TierAwarded`` are
published on the hallmark bus for other systems."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark._domain import emit_all
from hallmark.adapters import runtime
from hallmark.errors import transient_errors
from hallmark.observability import logger


@transient_errors
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    svc, _repo, _registry = runtime.ceremony()
    change = svc.retrying(event["ceremonyId"], lambda c: svc.award_tiers(c, runtime.now()))
    emit_all(runtime.audit(), "ceremony", change.events)
    ceremony = change.ceremony
    attestation = ceremony.provenance
    assert attestation is not None
    bus = runtime.bus()
    bus.publish("CeremonyCompleted", {"ceremonyId": ceremony.ceremony_id, "tier": ceremony.tier,
                                      "signatureId": attestation.signature_id, "artifacts": list(ceremony.artifacts),
                                      "witnesses": attestation.record["witnesses"]})
    for artifact in ceremony.awarded:
        bus.publish("TierAwarded", {"artifactId": artifact, "tier": ceremony.tier, "ceremonyId": ceremony.ceremony_id,
                                    "signatureId": attestation.signature_id})
    return {"ceremonyId": ceremony.ceremony_id, "status": ceremony.status, "tier": ceremony.tier,
            "awarded": list(ceremony.awarded),
            "alreadyHeld": [a for a in ceremony.artifacts if a not in ceremony.awarded]}
