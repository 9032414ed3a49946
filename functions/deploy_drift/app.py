"""Drift watch (scheduled): every Hallmark-managed function compared with its deployment record;
differences audited DeploymentDrifted, alarmed, and reverted where the environment's policy says so."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.errors import transient_errors
from hallmark.observability import logger


@transient_errors
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = runtime.deployment_steps().drift()
    return result
