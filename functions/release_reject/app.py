"""Release: a package that failed validation or governance ends Rejected; one whose step failed
for good (``failure`` from the state machine's Catch) ends Failed. Both are audited
``PackageRejected`` with their reasons."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.errors import transient_errors
from hallmark.observability import logger
from hallmark.release.service import ReleaseService


@transient_errors
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "failure" in event:
        return runtime.release_steps().record_failure(event["key"], event["failure"], event["executionArn"])
    doc = ReleaseService(runtime.docs(), runtime.audit()).reject(event["packageId"], event["reasons"])
    return {"packageId": doc["packageId"], "status": doc["status"], "reasons": doc["reasons"]}
