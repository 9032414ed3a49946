"""Ceremony step "Wait for witnesses" (``lambda:invoke.waitForTaskToken``): keeps the task
token on the ceremony. If the witnesses completed before the token was stored, it resumes the
execution itself; otherwise the API call that completes them does (one claim, one resume:
``hallmark.ceremony.steps.CeremonySteps.wait``)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.errors import transient_errors
from hallmark.observability import logger


@transient_errors
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return runtime.ceremony_steps().wait(event["ceremonyId"], event["taskToken"])
