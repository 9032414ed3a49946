"""Governance: an emergency upgrade applies at once (UpgradeApplied) and opens its ratification
window; the currently published version is remembered for the rollback
(``hallmark.governance.steps.GovernanceSteps.apply_emergency``)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.errors import transient_errors
from hallmark.observability import logger


@transient_errors
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    applied = runtime.governance_steps().apply_emergency(
        package_id=event["packageId"], name=event["name"], manifest_digest=event["manifestDigest"],
        impact=event["impact"], proposed_by=event["proposedBy"])
    return {"upgradeId": applied["upgradeId"], "ratificationSeconds": runtime.ratification_seconds(),
            "previousPackageId": applied["previousPackageId"]}
