"""Marketplace: creates the listing carrying manifestSignatureId, then marks the package
Published (audited, and announced on the bus)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.errors import transient_errors
from hallmark.observability import logger, metrics
from hallmark.release.publish import create_listing
from hallmark.release.service import ReleaseService
from hallmark.release.timing import submit_to_publish_seconds


@transient_errors
@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    store = runtime.docs()
    svc = ReleaseService(store, runtime.audit())
    package = svc.get(event["packageId"])
    listing = create_listing(store, runtime.audit(), package, event["manifest"], event["repository"], runtime.now())
    published = svc.mark_published(package["packageId"], event["repository"], listing["listingId"])
    # the submit -> publish SLO, without the time people took to approve (hallmark.release.timing)
    metrics.add_metric(name="release.submit_to_publish_seconds", unit=MetricUnit.Seconds,
                       value=submit_to_publish_seconds(published["history"]))
    detail = {"packageId": package["packageId"], "listingId": listing["listingId"],
              "manifestSignatureId": listing["manifestSignatureId"]}
    runtime.bus().publish("ListingCreated", detail)
    runtime.bus().publish("PackagePublished", detail)
    return detail
