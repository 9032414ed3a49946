"""Release step 3: persist every validator's result with its digest, audit each, decide; apply
the impact policy's post-validation rules (advisories, AI share) and return the effective impact
that "Route by impact" reads."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.errors import transient_errors
from hallmark.observability import logger
from hallmark.release.service import ReleaseService


@transient_errors
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    results = runtime.release_steps().check_results(event["packageId"], event["results"])
    service = ReleaseService(runtime.docs(), runtime.audit(), governance=runtime.governance())
    return service.record_validation(event["packageId"], results)
