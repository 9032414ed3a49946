"""Scoring: a step failed (a model refused for its digest, a failed Batch job, bad output): the
batch is marked Failed with a readable reason and the corpus lease released."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.errors import transient_errors
from hallmark.observability import logger


@transient_errors
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = runtime.scoring_pipeline().fail(event["batchId"], event.get("error") or {}, event.get("executionArn"))
    logger.warning("batch failed", extra={"failure": result})
    return result
