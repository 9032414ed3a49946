"""Scheduled (every minute): seals the open batch once it is older than the time threshold, and
starts any sealed batch a previous caller left unstarted."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.observability import logger


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    sealed = runtime.scoring_intake().seal_if_due()
    return {"sealed": [{"batchId": s.batch_id, "size": s.size, "executionArn": s.execution_arn} for s in sealed]}
