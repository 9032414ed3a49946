"""Release step 1: an S3 "Object Created" event on an upload key. Intake hashes the bytes,
pins them (``sha256/<digest>``) and moves the package to Validating; refuses bytes other than
the declared ones; ignores (and audits) any later write to the upload key."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.errors import transient_errors
from hallmark.observability import logger


@transient_errors
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    obj = event["event"]["detail"]["object"]
    outcome = runtime.release_steps().intake(str(obj["key"]), obj.get("version-id"), event["executionArn"])
    outcome["policy"] = {"approvalTimeoutSeconds": runtime.approval_timeout_seconds(),
                         "ratificationSeconds": runtime.ratification_seconds()}
    return outcome
