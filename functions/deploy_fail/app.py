"""Deployment: a step failed for good; traffic back on the previous version, the record says why."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.errors import transient_errors
from hallmark.observability import logger


@transient_errors
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result: dict[str, Any] = runtime.deployment_steps().fail(event["deploymentId"], event.get("error") or {})
    return result
