"""Deployment step 2: the function created or updated from the pinned, signed object; a version
published; its CodeSha256 asserted equal to the signed sha256 before any traffic."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.errors import transient_errors
from hallmark.observability import logger


@transient_errors
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result: dict[str, Any] = runtime.deployment_steps().release(event["deploymentId"])
    return result
