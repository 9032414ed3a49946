"""The composition root for Lambda handlers: builds adapters from the environment the
topology declares (TABLE_*, BUCKET_*, QUEUE_*_URL, KEY_*_ID, STATE_MACHINE_*_ARN).

Startup guards: with REQUIRE_KMS set, a function that signs fails at init when its key is
not configured; with REQUIRE_SIGNING_PROXY / REQUIRE_MTLS, when their inputs are missing.
"""

from __future__ import annotations

import math
import os
import threading
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from hallmark.adapters.dynamo_docs import DynamoDocStore
from hallmark.adapters.kms_signer import KmsSigner

if TYPE_CHECKING:
    from hallmark.audit.checkpoints import CheckpointPolicy
    from hallmark.audit.log import AuditLog

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)


class ConfigurationError(RuntimeError):
    """A function started without what it needs: the message names the missing input."""


def require(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise ConfigurationError(f"{name} is not set: this function's topology entry must declare it")
    return value


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def flag(name: str) -> bool:
    """A boolean setting: 1/true/yes/on or 0/false/no/off (any case; unset is off).

    Anything else fails at init: a guard that guesses what ``REQUIRE_KMS=ture`` means is no guard.
    """
    value = os.environ.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigurationError(f"{name}={os.environ[name]!r} is not a boolean: use true/false, 1/0, yes/no or on/off")


def startup_guard(*, sign_keys: tuple[str, ...] = ()) -> None:
    """Fail fast at init, naming what is missing (REQUIRE_KMS, REQUIRE_SIGNING_PROXY, REQUIRE_MTLS)."""
    missing: list[str] = []
    if flag("REQUIRE_KMS"):
        missing += [f"KEY_{k.upper()}_ID (KMS {k} signing key)" for k in sign_keys
                    if not os.environ.get(f"KEY_{k.upper()}_ID")]
    if flag("REQUIRE_SIGNING_PROXY") and not os.environ.get("SIGNING_PROXY_URL"):
        missing.append("SIGNING_PROXY_URL (REQUIRE_SIGNING_PROXY is set)")
    if flag("REQUIRE_MTLS"):
        missing += [f"{v} (REQUIRE_MTLS is set)" for v in ("MTLS_CERT_PATH", "MTLS_KEY_PATH", "MTLS_CA_PATH")
                    if not os.environ.get(v) or not os.path.exists(os.environ[v])]
    if missing:
        raise ConfigurationError("startup guard: missing " + "; ".join(missing))


_CREATING = threading.Lock()
"""boto3's default session is not thread-safe (boto3's documentation says so of sessions and
resources); a Lambda runs one request at a time, but the local cloud's HTTP server runs handlers in
threads. So creating a client or the DynamoDB resource is serialised; using them is not (clients are
thread-safe)."""


_S3_CONFIG = _CONFIG.merge(Config(signature_version="s3v4"))
"""SigV4 for S3: presigned PUTs sign Content-Length and x-amz-checksum-sha256 (SigV2 cannot)."""


@cache
def client(service: str) -> Any:
    with _CREATING:
        return boto3.client(service, config=_S3_CONFIG if service == "s3" else _CONFIG)  # type: ignore[call-overload]


@cache
def table(name: str) -> Any:
    with _CREATING:
        return boto3.resource("dynamodb", config=_CONFIG).Table(require(f"TABLE_{name.upper()}"))


def bucket(name: str) -> str:
    return require(f"BUCKET_{name.upper()}")


@cache
def docs() -> DynamoDocStore:
    return DynamoDocStore(table("state"))


def package_max_bytes() -> int:
    return int(os.environ.get("PACKAGE_MAX_BYTES", str(100 * 1024 * 1024)))


@cache
def artifacts() -> Any:
    """The packages bucket as the release flow's ``ArtifactStore`` (uploads and pinned bytes)."""
    from hallmark.adapters.s3_artifacts import S3ArtifactStore

    return S3ArtifactStore(client("s3"), bucket("packages"))


def release_steps() -> Any:
    """``ReleaseSteps`` over the state table, the audit queue and the packages bucket."""
    from hallmark.release.service import ReleaseService
    from hallmark.release.steps import ReleaseSteps

    return ReleaseSteps(ReleaseService(docs(), audit(), governance=governance()), artifacts(), package_max_bytes())


@cache
def signer(purpose: str) -> KmsSigner:
    return KmsSigner(client("kms"), require(f"KEY_{purpose.upper()}_ID"))


@cache
def audit() -> Any:
    from hallmark.adapters.sqs_audit_emitter import SqsAuditEmitter

    return SqsAuditEmitter(client("sqs"), require("QUEUE_AUDIT_URL"))


@cache
def bus() -> Any:
    from hallmark.adapters.bus import EventBusPublisher

    return EventBusPublisher(client("events"), require("EVENT_BUS_NAME"))


@cache
def governance() -> Any:
    """GovernanceService on the state table; thresholds and windows from the environment."""
    from datetime import timedelta

    from hallmark.adapters.dynamo_governance import DynamoApprovalRepository, DynamoApproverRepository
    from hallmark.governance.models import ThresholdPolicy
    from hallmark.governance.service import GovernanceService

    name = require("TABLE_STATE")
    threshold = int(os.environ.get("MULTISIG_THRESHOLD", "3"))
    policy = ThresholdPolicy(
        thresholds={"LOW": 0, "MEDIUM": 0, "HIGH": threshold, "CRITICAL": threshold},
        settlement=threshold,
        ratification_window=timedelta(seconds=ratification_seconds()),
        max_decision_validity=timedelta(seconds=int(os.environ.get("APPROVAL_MAX_VALIDITY_SECONDS",
                                                                   str(7 * 24 * 3600)))),
    )
    return GovernanceService(DynamoApprovalRepository(client("dynamodb"), name),
                             DynamoApproverRepository(client("dynamodb"), name), policy)


AUDIT_CHAINS = ("release", "governance", "ceremony", "market", "scoring")


def audit_policy() -> CheckpointPolicy:
    """When a chain's checkpoint is due (AUDIT_CHECKPOINT_EVERY_N / _EVERY_SECONDS; 0 s: never by time)."""
    from hallmark.audit.checkpoints import CheckpointPolicy

    every_s = float(os.environ.get("AUDIT_CHECKPOINT_EVERY_SECONDS", "60"))
    return CheckpointPolicy(every_n=int(os.environ.get("AUDIT_CHECKPOINT_EVERY_N", "100")),
                            every_seconds=every_s if every_s > 0 else math.inf)


@cache
def audit_log() -> AuditLog:
    """The audit log wired to AWS: the DynamoDB store, the audit KMS key, the configured policy."""
    from hallmark.adapters.dynamo_audit_store import DynamoAuditStore
    from hallmark.audit.log import AuditLog
    from hallmark.audit.notes import DEFAULT_ORIGIN_PREFIX

    return AuditLog(DynamoAuditStore(table("audit")), signer("audit"), audit_policy(),
                    note_origin_prefix=os.environ.get("AUDIT_NOTE_ORIGIN", DEFAULT_ORIGIN_PREFIX))


def audit_chains() -> tuple[str, ...]:
    """The chains the checkpointer and the exporter walk: the five flows plus AUDIT_CHAINS extras."""
    extra = tuple(c for c in os.environ.get("AUDIT_CHAINS", "").split(",") if c)
    return AUDIT_CHAINS + tuple(c for c in extra if c not in AUDIT_CHAINS)


def ratification_seconds() -> int:
    return int(os.environ.get("RATIFICATION_WINDOW_SECONDS", str(48 * 3600)))


def approval_timeout_seconds() -> int:
    return int(os.environ.get("APPROVAL_TIMEOUT_SECONDS", str(7 * 24 * 3600)))


def now() -> datetime:
    return datetime.now(UTC)


def reset() -> None:
    """Forget cached clients (the local cloud calls this between boots)."""
    for f in (client, table, docs, artifacts, signer, audit, bus, governance, audit_log):
        f.cache_clear()
