"""Release step 1: the S3 upload (EventBridge "Object Created") becomes a package in Validating."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.observability import logger
from hallmark.release.service import ReleaseService


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    detail = event["event"]["detail"]
    bucket, key = detail["bucket"]["name"], unquote_plus(detail["object"]["key"])
    package_id = key.split("/")[1]
    doc = ReleaseService(runtime.docs(), runtime.audit()).mark_uploaded(
        package_id, key, int(detail["object"].get("size", 0)), event["executionArn"])
    return {"packageId": package_id, "bucket": bucket, "key": key, "submittedBy": doc["submittedBy"],
            "meta": {**doc["meta"], "filename": doc["filename"]},
            "policy": {"approvalTimeoutSeconds": runtime.approval_timeout_seconds(),
                       "ratificationSeconds": runtime.ratification_seconds()}}
