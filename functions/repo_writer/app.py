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


@transient_errors
@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    started = time.perf_counter()
    ref = runtime.release_steps().commit(event["packageId"], event["manifest"], runtime.manifest_repository(),
                                         runtime.bus())
    metrics.add_metric(name="release.publish_latency_seconds", unit=MetricUnit.Seconds, value=time.perf_counter() - started)
    return ref
