"""Governance: opens the upgrade record for a HIGH/CRITICAL release, keeps the execution's task
token on it, notifies approvers (ApprovalRequested) and leaves the execution waiting."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark._domain import emit_by_flow
from hallmark.adapters import runtime
from hallmark.errors import Conflict, transient_errors
from hallmark.observability import logger, metrics
from hallmark.release.service import ReleaseService


@transient_errors
@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    svc, now = runtime.governance(), runtime.now()
    upgrade_id = f"up-{event['packageId']}"
    try:
        opened = svc.open_upgrade(
            upgrade_id=upgrade_id, package_id=event["packageId"], manifest_digest=event["manifestDigest"],
            impact=event["impact"], proposed_by=event["proposedBy"], now=now, task_token=event["taskToken"],
            deadline=now + timedelta(seconds=int(event["timeoutSeconds"])))
    except Conflict:
        return {"upgradeId": upgrade_id, "status": "already open"}  # a retried step: the first token stands
    ReleaseService(runtime.docs(), runtime.audit()).await_approval(event["packageId"], upgrade_id)
    emit_by_flow(runtime.audit(), opened.events)
    runtime.bus().publish("ApprovalRequested", {"upgradeId": upgrade_id, "packageId": event["packageId"],
                                                "manifestDigest": event["manifestDigest"],
                                                "threshold": opened.subject.threshold})
    metrics.add_metric(name="governance.multisig_pending_total", unit=MetricUnit.Count, value=1)
    return {"upgradeId": upgrade_id}
