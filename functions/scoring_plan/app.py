"""Scoring step 1: re-verify the active model's signed manifest, take the corpus lease, size the
batch (batch size x corpus rows, against the GPU threshold) for the runner Choice, assign its EVI
weights (the active version, or the canary for 10 % of batches; signatures checked), audit
EventsIngested."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.errors import transient_errors
from hallmark.observability import logger


@transient_errors
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    model = runtime.model_registry().verify_active()
    rollout, pem = runtime.weights(), runtime.weights_public_key()
    plan = runtime.scoring_pipeline().plan(event["batchId"], event["executionArn"], model,
                                           runtime.scoring_limits(), assign=lambda b: rollout.assign(b, pem))
    logger.info("batch planned", extra=plan.as_dict())
    return plan.as_dict()
