"""Scoring step 4, the band router: instant events to webhook subscribers at once (queued for the
signed delivery), same_day/weekly events grouped into briefs (stored, BriefCreated audited)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.errors import transient_errors
from hallmark.observability import logger


@transient_errors
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return runtime.scoring_pipeline().route(
        event["plan"], runtime.briefs(), runtime.subscribers(),
        lambda messages: runtime.send_batch("webhooks", messages))
