"""One validator (static, archive_safety, security, compliance, attribution, smoke) over the
package, read-only. The same code backs six functions; the state machine names the validator.

The security validator vets dependencies against the OSV advisory set that the scheduled
advisories_sync function keeps in the packages bucket (advisories/current.json and the set it
names, sha256-checked; cached per container and re-read when the pointer changes or after
ADVISORY_SET_CACHE_SECONDS). No set, an unreadable one, or one older than
ADVISORY_SET_MAX_AGE_HOURS fails the validator closed. There is no file or URI override: the
local cloud seeds the bucket through the same sync.
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.errors import transient_errors
from hallmark.observability import logger, metrics
from hallmark.release.ports import PinnedRef
from hallmark.release.steps import IntegrityError, load_pinned
from hallmark.release.validators import ValidationResult, ValidatorConfig, run_one


@cache
def config(validator: str) -> ValidatorConfig:
    """One configuration per container (the security one holds the cached advisory source)."""
    max_size = runtime.package_max_bytes()
    source = runtime.advisory_source() if validator == "security" else None
    return ValidatorConfig(advisory_source=source, max_size=max_size)


@transient_errors
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
        result = run_one(event["validator"], body, event["meta"], config(event["validator"]))
    result["subjectSha256"] = pinned.sha256
    metrics.add_dimension(name="validator", value=event["validator"])
    metrics.add_metric(name="release.validation_duration_seconds", unit=MetricUnit.Seconds,
                       value=time.perf_counter() - started)
    return result
