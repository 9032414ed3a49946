"""Scheduled: the EVI weights updater. Decides a running canary (promoted when its useful-rate is
not below the active weights', else rolled back, audited), or fits new per-domain weights from the
feedback (constrained ridge, bounded step), signs them and starts them as a 10 % canary."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.observability import logger


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcome = runtime.weights(sign=True).run()
    logger.info("weights updater", extra=outcome)
    return outcome
