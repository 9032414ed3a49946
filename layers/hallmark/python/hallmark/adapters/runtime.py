"""The composition root for Lambda handlers: builds adapters from the environment the
topology declares (TABLE_*, BUCKET_*, QUEUE_*_URL, KEY_*_ID, STATE_MACHINE_*_ARN), and the
domain's services and steps over them. :func:`ports` is the typed set of ports every step
takes (docs, audit, bus, blobs, signer(purpose), executions, clock). Everything is cached per
container and forgotten by :func:`reset` (the local cloud calls it between boots).

Startup guards: with REQUIRE_KMS set, a function that signs fails at init when its key is
not configured; with REQUIRE_SIGNING_PROXY / REQUIRE_MTLS, when their inputs are missing.
"""

from __future__ import annotations

import json
import math
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from hallmark.adapters.dynamo_docs import DynamoDocStore
from hallmark.adapters.kms_signer import KmsSigner

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from hallmark.adapters.bus import EventBusPublisher
    from hallmark.adapters.dynamo_ceremony import DynamoCeremonyRepository
    from hallmark.adapters.dynamo_scoring import DynamoBriefStore, DynamoDedupe, DynamoSubscriberStore
    from hallmark.adapters.encryption import EnvelopeEncryptor
    from hallmark.adapters.market_aws import S3DeliveryStore, SqsDeliveryQueue
    from hallmark.adapters.s3 import S3BlobStore, S3Objects
    from hallmark.adapters.s3_artifacts import S3ArtifactStore
    from hallmark.adapters.sfn import SfnExecutions
    from hallmark.adapters.sqs_audit_emitter import SqsAuditEmitter
    from hallmark.adapters.sqs_quarantine import SqsQuarantine
    from hallmark.adapters.sqs_queue import SqsQueue
    from hallmark.adapters.webhook_sender import WebhookPoster
    from hallmark.audit.checkpoints import CheckpointPolicy
    from hallmark.audit.log import AuditLog
    from hallmark.ceremony.service import CeremonyService, WitnessRegistry
    from hallmark.ceremony.steps import CeremonySteps, DeploymentPlanSteps
    from hallmark.deploy.steps import DeploymentSteps
    from hallmark.governance.registry import ApproverRegistry
    from hallmark.governance.service import GovernanceService
    from hallmark.governance.steps import ApproverSteps, GovernanceSteps
    from hallmark.market.service import MarketService
    from hallmark.market.steps import DownloadDelivery
    from hallmark.ports import Signer
    from hallmark.release.advisories import AdvisorySync, CurrentAdvisorySet
    from hallmark.release.current import ManifestRepository
    from hallmark.release.service import ReleaseService
    from hallmark.release.steps import ReleasePolicySteps, ReleaseSteps
    from hallmark.scoring.batching import Intake, Limits
    from hallmark.scoring.models import ModelRegistry
    from hallmark.scoring.pipeline import ScoringPipeline
    from hallmark.scoring.webhooks import WebhookService
    from hallmark.scoring.weights import FeedbackService, WeightsRollout

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
def artifacts() -> S3ArtifactStore:
    """The packages bucket as the release flow's ``ArtifactStore`` (uploads and pinned bytes)."""
    from hallmark.adapters.s3_artifacts import S3ArtifactStore

    return S3ArtifactStore(client("s3"), bucket("packages"))


def releases() -> ReleaseService:
    """The release flow's records on the state table (approver capacity from governance)."""
    from hallmark.release.service import ReleaseService

    return ReleaseService(docs(), audit(), governance=governance())


def release_steps() -> ReleaseSteps:
    """``ReleaseSteps`` over the state table, the audit queue and the packages bucket."""
    from hallmark.release.steps import ReleaseSteps

    return ReleaseSteps(releases(), artifacts(), package_max_bytes())


def manifest_repository() -> ManifestRepository:
    """The manifest repository bucket (envelopes and the "current" pointers)."""
    from hallmark.release.current import ManifestRepository

    return ManifestRepository(_DeferredBlobs("manifests"))


class _DeferredBlobs:
    """Bucket ``name``, resolved on first use: a governance step that never touches the manifest
    repository (the approval wait's expiry) needs no bucket in its environment."""

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def bucket(self) -> str:
        return blobs(self.name).bucket

    def get(self, key: str) -> bytes:
        return blobs(self.name).get(key)

    def write(self, key: str, data: bytes, *, content_type: str | None = None,
              metadata: Mapping[str, str] | None = None) -> str | None:
        return blobs(self.name).write(key, data, content_type=content_type, metadata=metadata)

    def delete(self, key: str) -> None:
        blobs(self.name).delete(key)


def governance_steps() -> GovernanceSteps:
    """The governance steps of the release state machine and the approvers' API."""
    from hallmark.governance.steps import GovernanceSteps

    p = ports()
    return GovernanceSteps(governance(), releases(), manifest_repository(), p.docs, p.audit, _DeferredBus(),
                           p.executions(None), p.clock)


@cache
def signer(purpose: str) -> KmsSigner:
    return KmsSigner(client("kms"), require(f"KEY_{purpose.upper()}_ID"))


@cache
def audit() -> SqsAuditEmitter:
    from hallmark.adapters.sqs_audit_emitter import SqsAuditEmitter

    return SqsAuditEmitter(client("sqs"), require("QUEUE_AUDIT_URL"))


@cache
def bus() -> EventBusPublisher:
    from hallmark.adapters.bus import EventBusPublisher

    return EventBusPublisher(client("events"), require("EVENT_BUS_NAME"))


@cache
def governance() -> GovernanceService:
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


@cache
def subjects() -> Any:
    """The privacy vault's subject records (read by bundles: person id <-> pseudonym)."""
    from hallmark.adapters.dynamo_privacy import DynamoSubjectStore

    return DynamoSubjectStore(table("state"))


@cache
def privacy() -> Any:
    """The privacy vault (``hallmark.privacy``): subject records in the state table, data keys
    wrapped by the KMS privacy key."""
    from hallmark.adapters.dynamo_privacy import KmsDataKeys
    from hallmark.privacy.vault import Vault

    return Vault(subjects(), KmsDataKeys(client("kms"), require("KEY_PRIVACY_ID")))


def erasure_steps() -> Any:
    """``ErasureSteps``: the vault, the state table, the audit queue and the settlement multisig."""
    from hallmark.adapters.dynamo_privacy import DynamoStateRecords
    from hallmark.privacy.steps import ErasureSteps

    return ErasureSteps(privacy(), docs(), audit(), governance(), DynamoStateRecords(table("state")))


def pseudonymizer() -> Any:
    """The audit intake's boundary: a queued message with its persons pseudonymized."""
    from hallmark.privacy.personal import pseudonymize

    vault = privacy()
    return lambda msg: pseudonymize(msg, vault)


@cache
def blobs(name: str) -> S3BlobStore:
    """Bucket ``name`` (BUCKET_<NAME>) as a flat key -> bytes store."""
    from hallmark.adapters.s3 import S3BlobStore

    return S3BlobStore(bucket(name), client("s3"))


@cache
def executions(state_machine: str | None = None) -> SfnExecutions:
    """``ExecutionControl`` over Step Functions: settles task tokens; with ``state_machine``
    (STATE_MACHINE_<NAME>_ARN) it also starts that machine's executions."""
    from hallmark.adapters.sfn import SfnExecutions

    name = f"STATE_MACHINE_{state_machine.upper()}_ARN" if state_machine else None
    return SfnExecutions(client("stepfunctions"), (lambda: require(name)) if name else None)


class _DeferredSigner:
    """A ``Signer`` for a KMS key that is resolved on first use, so that functions which never
    sign or verify (the ceremony API) need no key in their environment."""

    def __init__(self, purpose: str) -> None:
        self.purpose = purpose

    @property
    def key_id(self) -> str:
        return signer(self.purpose).key_id

    def sign(self, message: bytes) -> bytes:
        return signer(self.purpose).sign(message)

    def public_key_pem(self) -> bytes:
        return signer(self.purpose).public_key_pem()


class _DeferredBus:
    """The bus, resolved when an event is first published: a step function that never publishes
    (the ceremony's "Mark lapsed") needs no bus in its environment."""

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        bus().publish(detail_type, detail)


def ceremony(purpose: str = "proof") -> tuple[CeremonyService, DynamoCeremonyRepository, WitnessRegistry]:
    """The ceremony service as the state machine runs it (``staged``, DSSE-signed provenance
    with the ``purpose`` KMS key, resolved on first use), its repository and the witness
    registry, on the state table."""
    from hallmark.adapters.dynamo_ceremony import DynamoCeremonyRepository, DynamoWitnessRepository
    from hallmark.ceremony.provenance import PROVENANCE_PAYLOAD_TYPE
    from hallmark.ceremony.service import CeremonyService, WitnessRegistry

    repo = DynamoCeremonyRepository(table("state"))
    registry = WitnessRegistry(DynamoWitnessRepository(table("state")))
    service = CeremonyService(repo, registry, _DeferredSigner(purpose), staged=True,
                              payload_type=PROVENANCE_PAYLOAD_TYPE)
    return service, repo, registry


def ceremony_steps() -> CeremonySteps:
    """The ceremony API's and the "Wait for witnesses" step's flow (records its own events)."""
    from hallmark.ceremony.steps import CeremonySteps

    service, repo, registry = ceremony()
    p = ports()
    return CeremonySteps(service, repo, registry, p.audit, p.executions("ceremony"), _DeferredBus())



def deployment_plan_steps() -> DeploymentPlanSteps:
    """Provenance-aware deployment plans on the state table (recorded on the ceremony chain)."""
    from hallmark.ceremony.steps import DeploymentPlanSteps

    service, _repo, _registry = ceremony()
    return DeploymentPlanSteps(service, docs(), audit(), now)

@dataclass(frozen=True)
class Ports:
    """The ports a domain step takes, typed; built once per container by :func:`ports`."""

    docs: DynamoDocStore
    audit: SqsAuditEmitter
    bus: Callable[[], EventBusPublisher]
    blobs: Callable[[str], S3BlobStore]
    signer: Callable[[str], Signer]
    executions: Callable[[str | None], SfnExecutions]
    clock: Callable[[], datetime]


@cache
def ports() -> Ports:
    return Ports(docs=docs(), audit=audit(), bus=bus, blobs=blobs, signer=signer, executions=executions,
                 clock=now)


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


@cache
def deployment_steps() -> DeploymentSteps:
    """``DeploymentSteps`` over Lambda / CloudWatch / SNS, the state table, the audit queue and the
    evidence admission verifies. ``DEPLOY_EXECUTION_ROLES``: JSON environment -> execution role
    ARN; ``DEPLOY_ALARM_TOPIC_ARN``: the operators' topic; ``DEPLOY_POLICY``: JSON policy
    (``hallmark.deploy.models.Policy.from_json``); ``DEPLOY_BAKE_SECONDS``: the canary's bake."""
    import json

    from hallmark.adapters.deploy_evidence import StoredEvidence
    from hallmark.adapters.dynamo_ceremony import DynamoCeremonyRepository
    from hallmark.adapters.lambda_control import BotoLambdaControl, CloudWatchMonitoring
    from hallmark.deploy.models import Policy
    from hallmark.deploy.steps import DeploymentSteps

    evidence = StoredEvidence(docs(), artifacts(), DynamoCeremonyRepository(table("state")),
                              {p: signer(p) for p in ("manifest", "audit", "proof")}, release_bundle,
                              package_max_bytes())
    arn = os.environ.get("STATE_MACHINE_DEPLOYMENT_ARN")
    return DeploymentSteps(
        docs=docs(), audit=audit(), evidence=evidence,
        lam=BotoLambdaControl(client("lambda"), os.environ.get("DEPLOY_CODE_SIGNING_CONFIG_ARN")),
        monitoring=CloudWatchMonitoring(client("logs"), client("cloudwatch"), client("sns"),
                                        require("DEPLOY_ALARM_TOPIC_ARN")),
        policy=Policy.from_json(os.environ.get("DEPLOY_POLICY"), int(os.environ.get("DEPLOY_BAKE_SECONDS", "600"))),
        roles=json.loads(require("DEPLOY_EXECUTION_ROLES")), clock=now,
        starter=executions("deployment") if arn else None,
    )



# --------------------------------------------------------------------------- market


def market_service() -> MarketService:
    """The marketplace on the state and ledger tables, proofs signed with the proof key
    (MARKET_FEE_BPS, DELIVERY_TTL_SECONDS, DELIVERY_URL_TTL_SECONDS)."""
    from datetime import timedelta

    from hallmark.adapters.dynamo_ledger import DynamoLedgerRepository
    from hallmark.market.service import MarketService

    return MarketService(
        docs(), DynamoLedgerRepository(client("dynamodb"), require("TABLE_LEDGER")), signer("proof"), audit(),
        fee_bps=int(os.environ.get("MARKET_FEE_BPS", "500")),
        delivery_ttl=timedelta(seconds=int(os.environ.get("DELIVERY_TTL_SECONDS", "900"))),
        url_ttl=timedelta(seconds=int(os.environ.get("DELIVERY_URL_TTL_SECONDS", "300"))),
    )


def objects() -> S3Objects:
    """Objects of any bucket the function may read, at a pinned version (released artifacts)."""
    from hallmark.adapters.s3 import S3Objects

    return S3Objects(client("s3"))


def delivery_store() -> S3DeliveryStore:
    from hallmark.adapters.market_aws import S3DeliveryStore

    return S3DeliveryStore(client("s3"), bucket("deliveries"))


def delivery_queue() -> SqsDeliveryQueue:
    from hallmark.adapters.market_aws import SqsDeliveryQueue

    return SqsDeliveryQueue(client("sqs"), require("QUEUE_DELIVERIES_URL"))


def download_delivery() -> DownloadDelivery:
    """The buyer's decrypting download: the delivery bucket, KMS Decrypt on the delivery key
    (the key stays in KMS), the manifest repository, the audit queue."""
    from hallmark.market.steps import DownloadDelivery

    return DownloadDelivery(docs(), delivery_store(), delivery_encryptor(), objects(), audit())


def delivery_encryptor() -> EnvelopeEncryptor:
    from hallmark.adapters.encryption import EnvelopeEncryptor

    return EnvelopeEncryptor(require("KEY_DELIVERY_ID"))


# --------------------------------------------------------------------------- scoring
# TABLE_SCORING, BUCKET_SCORING, QUEUE_*_URL, KEY_WEBHOOKS_ID, STATE_MACHINE_SCORING_ARN


def queue(name: str) -> SqsQueue:
    """Queue ``name`` (QUEUE_<NAME>_URL; the variable is read when a message is first sent)."""
    from hallmark.adapters.sqs_queue import SqsQueue

    return SqsQueue(client("sqs"), lambda: require(f"QUEUE_{name.upper()}_URL"))


def send_batch(name: str, messages: list[dict[str, Any]]) -> None:
    """Send JSON messages to queue ``name``, ten per call; raises if any is refused."""
    bodies = [json.dumps(m, sort_keys=True) for m in messages]
    failed = queue(name).send_batch(bodies, stop_on_failure=True)
    if failed:
        raise RuntimeError(f"SQS refused {len(failed)} message(s) for {name} (from message {failed[0]})")


def scoring_limits() -> Limits:
    from hallmark.scoring.batching import limits

    return limits(os.environ, docs())


def scoring_intake() -> Intake:
    from hallmark.scoring.batching import Intake

    return Intake(docs(), blobs("scoring"), executions("scoring"), scoring_limits())


def model_registry() -> ModelRegistry:
    from hallmark.scoring.models import ModelRegistry

    return ModelRegistry(docs(), objects(), blobs("scoring"), lambda: signer("manifest").public_key_pem())


def scoring_pipeline() -> ScoringPipeline:
    from hallmark.scoring.pipeline import ScoringPipeline

    return ScoringPipeline(docs(), audit(), blobs("scoring"),
                           lease_seconds=int(os.environ.get("SCORING_LEASE_SECONDS", "4200")))


def weights(*, sign: bool = False) -> WeightsRollout:
    """The EVI weights rollout; ``sign``: with the weights signing key (the scheduled updater)."""
    from hallmark.scoring.weights import WeightsRollout

    return WeightsRollout(docs(), audit(), signer("weights") if sign else None)


def weights_public_key() -> bytes:
    return signer("weights").public_key_pem()


def feedback() -> FeedbackService:
    from hallmark.scoring.weights import FeedbackService, StoredItems

    return FeedbackService(docs(), audit(), StoredItems(briefs(), blobs("scoring")))


def scoring_dedupe() -> DynamoDedupe:
    from hallmark.adapters.dynamo_scoring import DynamoDedupe

    return DynamoDedupe(table("scoring"))


def briefs() -> DynamoBriefStore:
    from hallmark.adapters.dynamo_scoring import DynamoBriefStore

    return DynamoBriefStore(table("scoring"))


def subscribers() -> DynamoSubscriberStore:
    from hallmark.adapters.dynamo_scoring import DynamoSubscriberStore

    return DynamoSubscriberStore(table("scoring"))


def local_http() -> bool:
    """Webhooks to the loopback only on the local cloud (a receiver in the same process)."""
    return os.environ.get("HALLMARK_ENV") == "local"


def webhooks() -> WebhookService:
    from hallmark.adapters.webhook_sender import KmsSecretCipher, system_resolver
    from hallmark.scoring.webhooks import WebhookService

    cipher = KmsSecretCipher(client("kms"), require("KEY_WEBHOOKS_ID"))
    # http to the loopback only on the local cloud; https elsewhere
    return WebhookService(subscribers(), cipher, resolve=system_resolver, allow_local_http=local_http())


def webhook_poster() -> WebhookPoster:
    """Delivers to the address vetted at send time (the URL checked again: DNS rebinding)."""
    from hallmark.adapters.webhook_sender import WebhookPoster, system_resolver

    return WebhookPoster(resolve=system_resolver, allow_loopback=local_http())


# --------------------------------------------------------------------------- approvers, audit intake


def approver_registry() -> ApproverRegistry:
    """The approver registry on the state table, with the governance policy."""
    from hallmark.adapters.dynamo_governance import DynamoApproverRepository
    from hallmark.governance.registry import ApproverRegistry

    return ApproverRegistry(DynamoApproverRepository(client("dynamodb"), require("TABLE_STATE")),
                            governance().policy)


def approver_steps() -> ApproverSteps:
    """The approvers' API's changes of the registry (each records its own events)."""
    from hallmark.governance.steps import ApproverSteps

    return ApproverSteps(approver_registry(), audit(), now)


def release_policy_steps() -> ReleasePolicySteps:
    """Package names and the impact policy on the state table (each change records its events)."""
    from hallmark.release.impact_policy import ImpactPolicyStore
    from hallmark.release.names import NameRegistry
    from hallmark.release.steps import ReleasePolicySteps

    return ReleasePolicySteps(NameRegistry(docs()), ImpactPolicyStore(docs()), governance(), audit(), now)


def idempotency_store() -> DynamoDBPersistenceLayer:
    """Powertools' idempotency records on TABLE_IDEMPOTENCY (the checkout's Idempotency-Key)."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    return DynamoDBPersistenceLayer(table_name=require("TABLE_IDEMPOTENCY"), key_attr="id",
                                    expiry_attr="expiration", boto3_client=client("dynamodb"))


def audit_quarantine() -> SqsQuarantine:
    """Where the audit writer parks a message it cannot append (QUEUE_AUDIT_DLQ_URL)."""
    from hallmark.adapters.sqs_quarantine import SqsQuarantine

    return SqsQuarantine(client("sqs"), require("QUEUE_AUDIT_DLQ_URL"))


# --------------------------------------------------------------------------- OSV advisories


def _number(name: str, default: float, *, zero_ok: bool = False) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name}={raw!r} is not a number") from exc
    if not (value > 0 or (zero_ok and value == 0)):
        raise ConfigurationError(f"{name}={raw!r} must be positive")
    return value


def advisory_source() -> CurrentAdvisorySet:
    """The security validator's advisory set (build once per container: it caches the parsed
    set). ADVISORY_SET_MAX_AGE_HOURS: an older set fails validation (48);
    ADVISORY_SET_CACHE_SECONDS: how long the pointer read is trusted (300; 0: every time)."""
    from datetime import timedelta

    from hallmark.release.advisories import CurrentAdvisorySet

    return CurrentAdvisorySet(
        blobs("packages"),
        max_age=timedelta(hours=_number("ADVISORY_SET_MAX_AGE_HOURS", 48)),
        ttl=timedelta(seconds=_number("ADVISORY_SET_CACHE_SECONDS", 300, zero_ok=True)),
        clock=lambda: now(),
    )


def advisory_sync() -> AdvisorySync:
    """The OSV sync: ``<Ecosystem>/all.zip`` from ADVISORY_OSV_BASE_URL (OSV's bucket by default;
    ``file://`` only with HALLMARK_ENV=local), ADVISORY_FETCH_MAX_BYTES and
    ADVISORY_FETCH_TIMEOUT_SECONDS per archive."""
    from hallmark.adapters import http_fetch
    from hallmark.release.advisories import DEFAULT_BASE_URL, AdvisorySync

    fetcher = http_fetch.UrlFetcher(
        timeout_s=_number("ADVISORY_FETCH_TIMEOUT_SECONDS", 30),
        max_bytes=int(_number("ADVISORY_FETCH_MAX_BYTES", 1024**3)),
        allow_file=os.environ.get("HALLMARK_ENV") == "local",
    )
    return AdvisorySync(fetcher, blobs("packages"), audit(),
                        base_url=os.environ.get("ADVISORY_OSV_BASE_URL") or DEFAULT_BASE_URL)



# --------------------------------------------------------------------------- release bundle


def release_bundle(package: dict[str, Any], bought: Any | None = None) -> dict[str, Any]:
    """The release bundle, assembled from the state table, the manifests bucket and the audit log
    (``GET /packages/{id}/bundle`` serves it; deployment admission verifies it): ``hallmark.bundle/v1``
    of ``package`` (``not_published`` when it has no manifest yet), with its ceremony provenance,
    and the purchase's proofs when ``bought`` (an order of it) is given."""
    from hallmark.adapters.dynamo_ceremony import DynamoCeremonyRepository, DynamoWitnessRepository
    from hallmark.adapters.dynamo_governance import DynamoApproverRepository
    from hallmark.bundle import KEY_PURPOSES, collect_bundle
    from hallmark.errors import NotFound
    from hallmark.market.store import ProofStore
    from hallmark.public_keys import describe_keys

    ref = (package.get("manifest") or {}).get("repository")
    if not ref:
        raise NotFound("published manifest of package", str(package.get("packageId")), code="not_published")
    proofs = ProofStore(docs())
    envelope = json.loads(objects().read(ref["bucket"], ref["key"]))
    gov = governance()
    upgrade = gov.load("upgrade", package["upgradeId"]) if package.get("upgradeId") else None
    approver_keys: dict[str, list[dict[str, str]]] = {}
    if upgrade is not None:
        repo = DynamoApproverRepository(client("dynamodb"), require("TABLE_STATE"))
        for approver_id in {r.approver_id for r in upgrade.approvals}:
            a = repo.get(approver_id)
            if a is not None:
                approver_keys[approver_id] = [{"keyFingerprint": a.key_fingerprint, "publicKeyPem": a.public_key_pem},
                                              *({"keyFingerprint": k.key_fingerprint, "publicKeyPem": k.public_key_pem}
                                                for k in a.previous_keys)]
    impact = package.get("impact", package["meta"]["impact"])
    fingerprints = {k["purpose"]: k["fingerprint"] for k in describe_keys({p: signer(p) for p in KEY_PURPOSES})}
    state = table("state")
    return collect_bundle(package, envelope, upgrade=upgrade, approver_keys=approver_keys,
                          threshold=gov.threshold_for(impact), audit_log=audit_log(),
                          key_fingerprints=fingerprints, ceremonies=DynamoCeremonyRepository(state),
                          witnesses=DynamoWitnessRepository(state), order=bought,
                          order_proofs=(proofs.get(bought.ledger_proof_id), proofs.get(bought.delivery_proof_id))
                          if bought else (None, None), subjects=subjects())


def ratification_seconds() -> int:
    return int(os.environ.get("RATIFICATION_WINDOW_SECONDS", str(48 * 3600)))


def approval_timeout_seconds() -> int:
    return int(os.environ.get("APPROVAL_TIMEOUT_SECONDS", str(7 * 24 * 3600)))


def now() -> datetime:
    return datetime.now(UTC)


def reset() -> None:
    """Forget cached clients (the local cloud calls this between boots)."""
    for f in (client, table, docs, artifacts, signer, audit, bus, governance, subjects, privacy, audit_log, blobs,
              executions, ports,
              deployment_steps):
        f.cache_clear()
