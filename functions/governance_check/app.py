"""Governance: after the ratification window, was the emergency upgrade ratified?"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.errors import transient_errors
from hallmark.observability import logger


@transient_errors
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    upgrade = runtime.governance().load("upgrade", event["upgradeId"])
    outcome = "ratified" if upgrade.status == "Ratified" else "rollback"
    return {"upgradeId": event["upgradeId"], "status": upgrade.status, "outcome": outcome,
            "ratifications": upgrade.count("ratifications", "ratify"), "threshold": upgrade.threshold}
