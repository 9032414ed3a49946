"""Release: compose the manifest (in-toto Statement v1), sign it in a DSSE envelope with the
manifest KMS key, stage it, record manifestSignatureId and emit ManifestSigned."""

from __future__ import annotations

import json
import time
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.canonical import canonical_bytes, sha256_hex
from hallmark.dsse import manifest_signature_id, sign_envelope
from hallmark.observability import logger, metrics
from hallmark.release.service import ReleaseService

runtime.startup_guard(sign_keys=("manifest",))
PAYLOAD_TYPE = "application/vnd.in-toto+json"


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    svc = ReleaseService(runtime.docs(), runtime.audit())
    package_id = event["packageId"]
    artifact_ref = f"s3://{event['bucket']}/{event['key']}"
    statement = svc.manifest_statement(package_id, event["preconditions"], artifact_ref)
    payload = canonical_bytes(statement)
    started = time.perf_counter()
    envelope = sign_envelope(payload, PAYLOAD_TYPE, runtime.signer("manifest"))
    metrics.add_metric(name="idea.manifest_sign_latency_seconds", unit=MetricUnit.Seconds,
                       value=time.perf_counter() - started)
    signature_id = manifest_signature_id(envelope)
    digest = sha256_hex(payload)
    staged = f"manifests/{package_id}.dsse.json"
    runtime.client("s3").put_object(Bucket=event["bucket"], Key=staged, Body=json.dumps(envelope).encode(),
                                    ContentType="application/json")
    svc.record_manifest(package_id, signature_id, digest, staged)
    return {"signatureId": signature_id, "digest": digest, "stagedBucket": event["bucket"], "stagedKey": staged,
            "artifactBucket": event["bucket"], "artifactKey": event["key"]}
