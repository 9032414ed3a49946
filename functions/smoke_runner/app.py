"""The sealed smoke step (``validate_smoke``): its own function, with a role that can do nothing
and an environment that holds nothing (DESIGN.md trust rule "Sealed smoke runner").

Payload (from the release state machine, all from ``$.upload.value.pinned``)::

    {"validator": "smoke", "packageId", "url": presigned GET of the pinned object,
     "sha256", "size", "meta"}

It downloads at most ``size`` bytes, checks the SHA-256 (a mismatch is a failed result,
"artifact digest mismatch"), and runs the smoke validator in the sandbox
(``hallmark.release.validators.smoke``). On Lambda, ``/tmp`` is scrubbed before and after each run
(the execution environment, and its ``/tmp``, are reused). See docs/runbooks/smoke_runner.md.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters.http_fetch import FetchError, fetch_capped
from hallmark.errors import transient_errors
from hallmark.observability import logger, metrics
from hallmark.release.validators import ValidatorConfig
from hallmark.release.validators.model import ValidationResult
from hallmark.release.validators.smoke import scrub_directory, validate_pinned_smoke

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@cache
def config() -> ValidatorConfig:
    return ValidatorConfig(max_size=int(os.environ.get("PACKAGE_MAX_BYTES", str(100 * 1024 * 1024))))


def _on_lambda() -> bool:
    # the real Lambda runtime sets both; the in-process local cloud sets neither (never scrub its /tmp)
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME") and os.environ.get("LAMBDA_TASK_ROOT"))


def _invalid(reason: str) -> dict[str, Any]:
    return ValidationResult.build(
        "smoke", passed=False, reasons=[f"smoke not run: invalid smoke payload: {reason}"], stats={"declared": None}
    ).model_dump(mode="json")


@transient_errors
@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    started = time.perf_counter()
    result = _run(event)
    metrics.add_dimension(name="validator", value="smoke")
    metrics.add_metric(name="release.validation_duration_seconds", unit=MetricUnit.Seconds,
                       value=time.perf_counter() - started)
    return result


def _run(event: Any) -> dict[str, Any]:
    if not isinstance(event, dict) or event.get("validator") != "smoke":
        return _invalid("validator must be 'smoke'")
    url, sha256, size, meta = event.get("url"), event.get("sha256"), event.get("size"), event.get("meta")
    if not isinstance(url, str) or not url:
        return _invalid("url is missing")
    if not isinstance(sha256, str) or not _SHA256.match(sha256.strip().lower()):
        return _invalid("sha256 must be 64 hex digits")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        return _invalid("size must be a non-negative integer")
    if not isinstance(meta, dict):
        return _invalid("meta must be an object")
    tmp = Path(tempfile.gettempdir())
    if _on_lambda():
        scrub_directory(tmp)
    try:
        data: bytes | None = None
        error: str | None = None
        if size <= config().max_size:
            try:
                data = fetch_capped(url, size)
            except FetchError as exc:
                error = str(exc)
        result = validate_pinned_smoke(data, sha256=sha256, size=size, meta=meta, config=config(),
                                       fetch_error=error)
    finally:
        if _on_lambda():
            scrub_directory(tmp)
    out = result.model_dump(mode="json")
    out["subjectSha256"] = sha256.strip().lower()  # the pinned digest this result is about
    return out
