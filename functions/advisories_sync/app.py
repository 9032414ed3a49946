"""Scheduled: syncs the OSV advisory archives (PyPI, npm) into the packages bucket as a new,
integrity-checked, audited advisory-set version (``hallmark.release.advisories``).

A refused sync (fetch failed, corrupt or truncated archive, a set that shrank) writes nothing,
keeps the current set, and fails the invocation so the error shows in the function's metrics.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.observability import logger, metrics
from hallmark.release.advisories import AdvisorySetRefused


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        outcome = runtime.advisory_sync().run(runtime.now())
    except AdvisorySetRefused as exc:
        logger.error("advisory sync refused; the current advisory set stays", extra={"reason": str(exc)})
        metrics.add_metric(name="advisories.sync_refused", unit=MetricUnit.Count, value=1)
        raise
    metrics.add_metric(name="advisories.records", unit=MetricUnit.Count, value=outcome.pointer.records)
    logger.info("advisory sync", extra=outcome.as_dict())
    return outcome.as_dict()
