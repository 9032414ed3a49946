"""Revocation reaches running code: governance rolled back an unratified emergency release
(its ``UpgradeRolledBack`` event on the bus), so every deployment of it goes back to the last good
version, or loses its alias when there is none."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.errors import transient_errors
from hallmark.observability import logger


@transient_errors
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> list[dict[str, Any]]:
    detail = event["detail"]
    result: list[dict[str, Any]] = runtime.deployment_steps().revoke(
        detail["packageId"], f"governance rolled back upgrade {detail.get('upgradeId')}")
    return result
