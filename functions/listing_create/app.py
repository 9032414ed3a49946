"""Marketplace: creates the listing carrying manifestSignatureId, then marks the package
Published (audited, and announced on the bus)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.errors import transient_errors
from hallmark.observability import logger
from hallmark.release.publish import create_listing
from hallmark.release.service import ReleaseService


@transient_errors
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    store = runtime.docs()
    svc = ReleaseService(store, runtime.audit())
    package = svc.get(event["packageId"])
    listing = create_listing(store, runtime.audit(), package, event["manifest"], event["repository"], runtime.now())
    svc.mark_published(package["packageId"], event["repository"], listing["listingId"])
    detail = {"packageId": package["packageId"], "listingId": listing["listingId"],
              "manifestSignatureId": listing["manifestSignatureId"]}
    runtime.bus().publish("ListingCreated", detail)
    runtime.bus().publish("PackagePublished", detail)
    return detail
