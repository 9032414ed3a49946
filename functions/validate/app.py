"""One validator (static, archive_safety, security, compliance, attribution, smoke) over the
package, read-only. The same code backs six functions; the state machine names the validator."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.observability import logger, metrics
from hallmark.release.validators import run_one


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    started = time.perf_counter()
    body = runtime.client("s3").get_object(Bucket=event["bucket"], Key=event["key"])["Body"].read()
    result = run_one(event["validator"], body, event["meta"])
    metrics.add_dimension(name="validator", value=event["validator"])
    metrics.add_metric(name="idea.validation_duration_seconds", unit=MetricUnit.Seconds,
                       value=time.perf_counter() - started)
    return result
