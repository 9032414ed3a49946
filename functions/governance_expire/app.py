"""Governance: the approval wait timed out: the upgrade ends Expired and the package is
rejected with that reason."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark._domain import emit_by_flow
from hallmark.adapters import runtime
from hallmark.errors import transient_errors
from hallmark.observability import logger
from hallmark.release.service import ReleaseService


@transient_errors
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    gov = runtime.governance()
    upgrade_id = f"up-{event['packageId']}"
    result = gov.expire(gov.load("upgrade", upgrade_id), runtime.now())
    emit_by_flow(runtime.audit(), result.events)
    ReleaseService(runtime.docs(), runtime.audit()).reject(
        event["packageId"], ["governance: the approval window closed before the threshold was reached"])
    return {"upgradeId": upgrade_id, "status": result.subject.status}
