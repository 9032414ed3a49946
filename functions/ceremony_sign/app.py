"""Ceremony step "Sign provenance": the provenance record {initiator, timestamp, tier, sorted
witnesses, sorted artifacts, blessing, ...} is signed as a DSSE envelope
(``application/vnd.hallmark.provenance+json``) with the proof KMS key, stored with the
ceremony and audited (``CeremonyCompleted``)."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.errors import transient_errors
from hallmark.observability import logger, metrics

runtime.startup_guard(sign_keys=("proof",))


@transient_errors
@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    steps = runtime.ceremony_steps()
    started = time.perf_counter()
    ceremony = steps.sign(event["ceremonyId"], runtime.now())
    metrics.add_metric(name="ceremony.provenance_sign_latency_seconds", unit=MetricUnit.Seconds,
                       value=time.perf_counter() - started)
    attestation = ceremony.provenance
    assert attestation is not None
    return {"ceremonyId": ceremony.ceremony_id, "status": ceremony.status,
            "signatureId": attestation.signature_id, "keyId": attestation.key_id,
            "payloadType": attestation.payload_type}
