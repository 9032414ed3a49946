"""Ceremony step "Wait for witnesses" (``lambda:invoke.waitForTaskToken``): keeps the task
token on the ceremony. If the witnesses completed before the token was stored, it resumes the
execution itself; otherwise the API call that completes them does (one claim, one resume)."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.adapters.dynamo_ceremony import ceremony_runtime
from hallmark.errors import transient_errors
from hallmark.observability import logger


@transient_errors
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    ceremony_id = event["ceremonyId"]
    _svc, repo, _registry = ceremony_runtime()
    repo.attach_task_token(ceremony_id, event["taskToken"])
    token = repo.claim_task_token(ceremony_id)
    if token is not None:
        try:
            runtime.client("stepfunctions").send_task_success(
                taskToken=token, output=json.dumps({"ceremonyId": ceremony_id, "status": "Witnessed"}))
        except Exception:
            repo.release_task_token(ceremony_id)
            raise
    return {"ceremonyId": ceremony_id, "waiting": token is None}
