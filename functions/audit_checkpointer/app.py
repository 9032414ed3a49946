"""Scheduled: signs a checkpoint on every chain whose uncovered events are older than the
configured interval (the "every T seconds" half of the checkpoint policy)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.adapters.runtime import audit_chains, audit_log
from hallmark.observability import logger

runtime.startup_guard(sign_keys=("audit",))


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    made = {}
    for chain in audit_chains():
        ckpt = audit_log().maybe_checkpoint(chain)
        if ckpt:
            made[chain] = ckpt["seq"]
    return {"checkpoints": made}
