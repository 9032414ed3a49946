"""RepoWriter: commits the signed envelope to the manifest repository (versioned, object-locked
bucket) and announces ManifestCommitted on the bus. It commits; it never signs."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.errors import transient_errors
from hallmark.observability import logger, metrics
from hallmark.release.current import write_pointer
from hallmark.release.publish import repository_key
from hallmark.release.service import ReleaseService


@transient_errors
@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    started = time.perf_counter()
    svc = ReleaseService(runtime.docs(), runtime.audit())
    package = svc.get(event["packageId"])
    manifest = event["manifest"]
    s3 = runtime.client("s3")
    body = runtime.release_steps().staged_envelope(package["packageId"], manifest["stagedKey"])
    bucket, key = runtime.bucket("manifests"), repository_key(package["meta"], package["packageId"])
    put = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json",
                        Metadata={"manifest-signature-id": manifest["signatureId"].replace(":", "_")})
    ref = {"bucket": bucket, "key": key, "versionId": put.get("VersionId")}
    svc.record_repository(package["packageId"], ref)
    write_pointer(s3, bucket, package["meta"]["name"], {
        "packageId": package["packageId"], "version": package["meta"]["version"], **ref,
        "manifestSignatureId": manifest["signatureId"]})
    runtime.bus().publish("ManifestCommitted", {"packageId": package["packageId"], **ref,
                                                "manifestSignatureId": manifest["signatureId"]})
    metrics.add_metric(name="release.publish_latency_seconds", unit=MetricUnit.Seconds, value=time.perf_counter() - started)
    return ref
