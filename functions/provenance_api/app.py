"""Provenance reads: GET /provenance/{signatureId} returns the signed record with its DSSE
envelope and whether it verifies with the proof key; GET /artifacts/{artifactId} returns the
artifact's current tier, the provenance that awarded it, and whether that provenance verifies
for this artifact and tier (what a deployment requires)."""

import base64
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.ceremony import attestation_failure
from hallmark.errors import NotFound
from hallmark.http import make_resolver
from hallmark.observability import logger, metrics, tracer

app = make_resolver()


@app.get("/provenance/<signatureId>")
@tracer.capture_method
def get_provenance(signatureId: str) -> dict[str, Any]:
    _svc, repo, _registry = runtime.ceremony()
    item = repo.provenance_item(signatureId)
    attestation = repo.provenance(signatureId)
    if item is None or attestation is None:
        raise NotFound("provenance", signatureId)
    public_key = runtime.signer("proof").public_key_pem()
    failure = attestation_failure(attestation, public_key)
    return {
        "signatureId": attestation.signature_id, "ceremonyId": item.get("ceremonyId"),
        "record": attestation.record, "envelope": attestation.envelope, "payloadType": attestation.payload_type,
        "keyId": attestation.key_id,
        "verification": {"verified": failure is None, "reason": failure,
                         "publicKeyPem": public_key.decode("ascii"),
                         "publicKeyB64": base64.b64encode(public_key).decode("ascii")},
    }


@app.get("/artifacts/<artifactId>")
@tracer.capture_method
def get_artifact(artifactId: str) -> dict[str, Any]:
    svc, repo, _registry = runtime.ceremony()
    held = repo.artifact(artifactId)
    if held is None:
        raise NotFound("artifact", artifactId)
    failure = svc.provenance_failure(artifactId, held, repo.provenance(held.signature_id))
    return {**held.to_json_dict(), "provenance": f"/provenance/{held.signature_id}",
            "verification": {"verified": failure is None, "reason": failure}}


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
