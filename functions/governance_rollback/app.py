"""Governance: an emergency upgrade nobody ratified in time is rolled back: the previous
published version becomes current again, the emergency listing is withdrawn, and
UpgradeRolledBack is recorded (``hallmark.governance.steps.GovernanceSteps.roll_back``)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.errors import transient_errors
from hallmark.observability import logger


@transient_errors
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return runtime.governance_steps().roll_back(event["upgradeId"], event["packageId"])
