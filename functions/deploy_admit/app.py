"""Deployment step 1, admission: verified from the public keys (DSSE manifest, inclusion proof of
its audit entry, the tier's ceremony record, the environment's minimum tier), or refused."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.errors import transient_errors
from hallmark.observability import logger


@transient_errors
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result: dict[str, Any] = runtime.deployment_steps().admit(event["deploymentId"])
    return result
