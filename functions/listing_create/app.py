"""Marketplace: creates the listing carrying manifestSignatureId, then marks the package
Published (audited, and announced on the bus)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.errors import transient_errors
from hallmark.observability import logger
from hallmark.release.publish import list_for_sale


@transient_errors
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return list_for_sale(runtime.releases(), runtime.bus(), event["packageId"], event["manifest"],
                         event["repository"], runtime.now())
