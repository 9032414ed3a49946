"""Deployment step 5, after the bake: 100 % when the version's alarms stayed OK, else rolled back."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.errors import transient_errors
from hallmark.observability import logger


@transient_errors
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result: dict[str, Any] = runtime.deployment_steps().judge(event["deploymentId"])
    return result
