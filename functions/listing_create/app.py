"""Marketplace: creates the listing carrying manifestSignatureId, then marks the package
Published (audited, and announced on the bus)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.errors import transient_errors
from hallmark.observability import logger, metrics
from hallmark.release.publish import list_for_sale
from hallmark.release.timing import submit_to_publish_seconds


@transient_errors
@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    detail, published = list_for_sale(runtime.releases(), runtime.bus(), event["packageId"], event["manifest"],
                                      event["repository"], runtime.now())
    # the submit -> publish SLO, without the time people took to approve (hallmark.release.timing)
    metrics.add_metric(name="release.submit_to_publish_seconds", unit=MetricUnit.Seconds,
                       value=submit_to_publish_seconds(published["history"]))
    return detail
