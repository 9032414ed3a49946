"""One validator (static, archive_safety, security, compliance, attribution, smoke) over the
package, read-only. The same code backs six functions; the state machine names the validator.

The OSV advisory set comes from ADVISORY_SET_PATH (a file) or ADVISORY_SET_S3_URI (fetched
once per container); the local cloud points ADVISORY_SET_PATH at events/advisories/.
"""

from __future__ import annotations

import os
import time
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.observability import logger, metrics
from hallmark.release.ports import PinnedRef
from hallmark.release.steps import IntegrityError, load_pinned
from hallmark.release.validators import ValidationResult, ValidatorConfig, run_one


@cache
def config() -> ValidatorConfig:
    path = os.environ.get("ADVISORY_SET_PATH")
    uri = os.environ.get("ADVISORY_SET_S3_URI")
    if not path and uri:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        path = "/tmp/advisories.json"
        runtime.client("s3").download_file(bucket, key, path)
    max_size = int(os.environ.get("PACKAGE_MAX_BYTES", str(100 * 1024 * 1024)))
    return ValidatorConfig(advisory_path=path, max_size=max_size)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    started = time.perf_counter()
    pinned = PinnedRef.from_dict(event["pinned"])
    try:
        body = load_pinned(runtime.artifacts(), pinned)
    except IntegrityError as exc:  # fail closed: this validator examined nothing
        result = ValidationResult.build(event["validator"], passed=False, reasons=[str(exc.message)],
                                        stats={"error": "artifact_integrity"}).model_dump(mode="json")
    else:
        result = run_one(event["validator"], body, event["meta"], config())
    result["subjectSha256"] = pinned.sha256
    metrics.add_dimension(name="validator", value=event["validator"])
    metrics.add_metric(name="idea.validation_duration_seconds", unit=MetricUnit.Seconds,
                       value=time.perf_counter() - started)
    return result
