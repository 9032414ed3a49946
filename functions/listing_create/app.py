"""Marketplace: creates the listing carrying manifestSignatureId for a published package."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.docstore import update
from hallmark.observability import logger
from hallmark.release.publish import create_listing
from hallmark.release.service import KIND, ReleaseService


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    store = runtime.docs()
    package = ReleaseService(store, runtime.audit()).get(event["packageId"])
    listing = create_listing(store, runtime.audit(), package, event["manifest"], event["repository"], runtime.now())

    def link(doc: dict[str, Any]) -> None:
        doc["listingId"] = listing["listingId"]

    update(store, KIND, package["packageId"], link)
    return {"listingId": listing["listingId"], "manifestSignatureId": listing["manifestSignatureId"]}
