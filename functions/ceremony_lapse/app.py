"""Ceremony step "Mark lapsed": the deadline passed (``States.Timeout`` on "Wait for witnesses").
A ceremony still gathering ends Lapsed (``CeremonyLapsed``); one whose witnesses completed in
time (its resume raced the deadline) is reported Witnessed, and the execution signs it."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.errors import transient_errors
from hallmark.observability import logger


@transient_errors
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    ceremony = runtime.ceremony_steps().mark_lapsed(event["ceremonyId"], runtime.now())
    return {"ceremonyId": ceremony.ceremony_id, "status": ceremony.status,
            "witnesses": len(ceremony.witnesses), "required": ceremony.rule.min_witnesses}
