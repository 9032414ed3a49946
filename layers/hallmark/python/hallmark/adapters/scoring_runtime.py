"""The composition root of the scoring functions: domain services built from the environment the
topology declares (``TABLE_STATE``, ``TABLE_SCORING``, ``BUCKET_SCORING``, ``QUEUE_*_URL``,
``KEY_WEBHOOKS_ID``, ``STATE_MACHINE_SCORING_ARN``). Nothing is cached here beyond what
``hallmark.adapters.runtime`` caches (and resets), so a new local cloud boot gets new wiring."""

from __future__ import annotations

import json
import os
from typing import Any

from hallmark.adapters import runtime
from hallmark.adapters.dynamo_scoring import DynamoBriefStore, DynamoDedupe, DynamoSubscriberStore
from hallmark.adapters.s3 import S3BlobStore, S3Objects
from hallmark.adapters.sfn import SfnExecutions
from hallmark.adapters.webhook_sender import KmsSecretCipher, WebhookPoster, system_resolver
from hallmark.scoring.batching import Intake, Limits, limits
from hallmark.scoring.models import ModelRegistry
from hallmark.scoring.pipeline import ScoringPipeline
from hallmark.scoring.webhooks import WebhookService
from hallmark.scoring.weights import FeedbackService, StoredItems, WeightsRollout


def blobs() -> S3BlobStore:
    return S3BlobStore(runtime.bucket("scoring"), runtime.client("s3"))


def current_limits() -> Limits:
    return limits(os.environ, runtime.docs())


def intake() -> Intake:
    starter = SfnExecutions(runtime.client("stepfunctions"), runtime.require("STATE_MACHINE_SCORING_ARN"))
    return Intake(runtime.docs(), blobs(), starter, current_limits())


def registry() -> ModelRegistry:
    return ModelRegistry(runtime.docs(), S3Objects(runtime.client("s3")), blobs(),
                         lambda: runtime.signer("manifest").public_key_pem())


def pipeline() -> ScoringPipeline:
    return ScoringPipeline(runtime.docs(), runtime.audit(), blobs(),
                           lease_seconds=int(os.environ.get("SCORING_LEASE_SECONDS", "4200")))


def weights(*, sign: bool = False) -> WeightsRollout:
    """The EVI weights rollout; ``sign``: with the weights signing key (the scheduled updater)."""
    return WeightsRollout(runtime.docs(), runtime.audit(), runtime.signer("weights") if sign else None)


def weights_public_key() -> bytes:
    return runtime.signer("weights").public_key_pem()


def feedback() -> FeedbackService:
    return FeedbackService(runtime.docs(), runtime.audit(), StoredItems(briefs(), blobs()))


def dedupe() -> DynamoDedupe:
    return DynamoDedupe(runtime.table("scoring"))


def briefs() -> DynamoBriefStore:
    return DynamoBriefStore(runtime.table("scoring"))


def subscribers() -> DynamoSubscriberStore:
    return DynamoSubscriberStore(runtime.table("scoring"))


def webhooks() -> WebhookService:
    cipher = KmsSecretCipher(runtime.client("kms"), runtime.require("KEY_WEBHOOKS_ID"))
    # http to the loopback only on the local cloud (a receiver in the same process); https elsewhere
    return WebhookService(subscribers(), cipher, resolve=system_resolver, allow_local_http=local_http())


def local_http() -> bool:
    """Webhooks to the loopback only on the local cloud (a receiver in the same process)."""
    return os.environ.get("HALLMARK_ENV") == "local"


def webhook_poster() -> WebhookPoster:
    """Delivers to the address vetted at send time (the URL checked again: DNS rebinding)."""
    return WebhookPoster(resolve=system_resolver, allow_loopback=local_http())


def send_batch(queue: str, messages: list[dict[str, Any]]) -> None:
    """Send JSON messages to a queue, ten per call; raises if any is refused."""
    url = runtime.require(f"QUEUE_{queue.upper()}_URL")
    sqs = runtime.client("sqs")
    for start in range(0, len(messages), 10):
        entries = [{"Id": str(i), "MessageBody": json.dumps(m, sort_keys=True)}
                   for i, m in enumerate(messages[start:start + 10])]
        resp = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        if resp.get("Failed"):
            raise RuntimeError(f"SQS refused {len(resp['Failed'])} message(s) for {queue}: {resp['Failed'][:1]}")
