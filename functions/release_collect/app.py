"""Release step 3: persist every validator's result with its digest, audit each, decide."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.observability import logger
from hallmark.release.service import ReleaseService


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    results = runtime.release_steps().check_results(event["packageId"], event["results"])
    return ReleaseService(runtime.docs(), runtime.audit()).record_validation(event["packageId"], results)
