"""Release: compose the manifest (in-toto Statement v1) over the pinned artifact, check that its
subject is what every validator examined, sign it in a DSSE envelope with the manifest KMS key,
stage it, record manifestSignatureId and emit ManifestSigned."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.errors import transient_errors
from hallmark.observability import logger, metrics

runtime.startup_guard(sign_keys=("manifest",))


@transient_errors
@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    started = time.perf_counter()
    result = runtime.release_steps().sign_manifest(event["packageId"], event["preconditions"],
                                                   runtime.signer("manifest"))
    metrics.add_metric(name="release.manifest_sign_latency_seconds", unit=MetricUnit.Seconds,
                       value=time.perf_counter() - started)
    return dict(result)
