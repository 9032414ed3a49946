"""Governance: opens the upgrade record for a HIGH/CRITICAL release, keeps the execution's task
token on it, notifies approvers (ApprovalRequested) and leaves the execution waiting
(``hallmark.governance.steps.GovernanceSteps.request``)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.errors import transient_errors
from hallmark.observability import logger, metrics


@transient_errors
@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    requested = runtime.governance_steps().request(
        package_id=event["packageId"], manifest_digest=event["manifestDigest"], impact=event["impact"],
        proposed_by=event["proposedBy"], task_token=event["taskToken"], timeout_seconds=int(event["timeoutSeconds"]))
    if not requested.opened:
        return {"upgradeId": requested.upgrade_id, "status": "already open"}  # a retried step: the first token stands
    metrics.add_metric(name="governance.multisig_pending_total", unit=MetricUnit.Count, value=1)
    return {"upgradeId": requested.upgrade_id}
