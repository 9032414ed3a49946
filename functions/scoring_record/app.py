"""Scoring step 3: read back and check the runner's envelopes, mark the batch Scored, release the
corpus lease, audit BatchScored (batch digest, model digest, runner, bands, weights version); a
canary batch counts towards its weights' promotion."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.errors import transient_errors
from hallmark.observability import logger


@transient_errors
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return runtime.scoring_pipeline().record(event["plan"], event.get("scored") or {},
                                             count_canary=runtime.weights().record_batch)
