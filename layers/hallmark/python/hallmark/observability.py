"""One Logger / Tracer / Metrics for every function (Powertools; service name from the env)."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "hallmark")


class InvocationLogger(Logger):
    """Powertools' Logger whose ``inject_lambda_context`` starts every invocation from a clean
    state (``clear_state=True``): keys appended during one invocation (``append_keys``, the
    correlation id) are not carried into the next one on a warm execution environment, where the
    module-level logger lives on."""

    def inject_lambda_context(self, lambda_handler: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs.setdefault("clear_state", True)
        return super().inject_lambda_context(lambda_handler, **kwargs)


logger = InvocationLogger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Hallmark"), service=SERVICE)
