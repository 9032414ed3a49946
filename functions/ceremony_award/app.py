"""Ceremony step "Award tiers": every artifact of the ceremony moves up to its tier in one
conditional transaction (``TierAwarded`` each); ``CeremonyCompleted`` and ``TierAwarded`` are
published on the hallmark bus for other systems."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.errors import transient_errors
from hallmark.observability import logger


@transient_errors
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return runtime.ceremony_steps().award(event["ceremonyId"], runtime.now())
