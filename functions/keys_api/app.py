"""GET /keys (public, no token): each signing key's purpose, key id, algorithm, PEM and
fingerprint, so anyone can verify Hallmark's signatures without AWS credentials."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.http import make_resolver
from hallmark.observability import logger
from hallmark.public_keys import describe_keys

app = make_resolver()


def _purposes() -> list[str]:
    return [p for p in os.environ.get("SIGNING_KEY_PURPOSES", "manifest,audit,proof").split(",") if p]


@app.get("/keys")
def keys() -> dict[str, Any]:
    return {"keys": describe_keys({p: runtime.signer(p) for p in _purposes()})}


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
