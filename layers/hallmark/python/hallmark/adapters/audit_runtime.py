"""The audit log wired to AWS: DynamoDB store, the audit KMS key, the configured policy."""

from __future__ import annotations

import math
import os
from functools import cache

from hallmark.adapters import runtime
from hallmark.audit.checkpoints import CheckpointPolicy
from hallmark.audit.log import AuditLog
from hallmark.audit.notes import DEFAULT_ORIGIN_PREFIX

CHAINS = ("release", "governance", "ceremony", "market", "scoring")


def policy() -> CheckpointPolicy:
    every_s = float(os.environ.get("AUDIT_CHECKPOINT_EVERY_SECONDS", "60"))
    return CheckpointPolicy(every_n=int(os.environ.get("AUDIT_CHECKPOINT_EVERY_N", "100")),
                            every_seconds=every_s if every_s > 0 else math.inf)


@cache
def audit_log() -> AuditLog:
    from hallmark.adapters.dynamo_audit_store import DynamoAuditStore

    return AuditLog(DynamoAuditStore(runtime.table("audit")), runtime.signer("audit"), policy(),
                    note_origin_prefix=os.environ.get("AUDIT_NOTE_ORIGIN", DEFAULT_ORIGIN_PREFIX))


def chains() -> tuple[str, ...]:
    extra = tuple(c for c in os.environ.get("AUDIT_CHAINS", "").split(",") if c)
    return CHAINS + tuple(c for c in extra if c not in CHAINS)
