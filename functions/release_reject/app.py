"""Release: a failed validation ends the package as Rejected, with the reasons, audited."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.observability import logger
from hallmark.release.service import ReleaseService


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    doc = ReleaseService(runtime.docs(), runtime.audit()).reject(event["packageId"], event["reasons"])
    return {"packageId": doc["packageId"], "status": doc["status"], "reasons": doc["reasons"]}
