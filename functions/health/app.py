"""GET /health: liveness of the API (public)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

import hallmark
from hallmark.http import make_resolver
from hallmark.observability import logger

app = make_resolver()


@app.get("/health")
def health() -> dict[str, Any]:
    return {"status": "ok", "service": "hallmark", "version": hallmark.__version__,
            "time": datetime.now(UTC).isoformat().replace("+00:00", "Z")}


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
