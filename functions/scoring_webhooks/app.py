"""Webhook sender (SQS ``webhooks``): signs each delivery per Standard Webhooks with the subscriber's
secret (decrypted with KMS) and POSTs it. A refused or failed attempt is retried with exponential
backoff (the message's visibility is pushed back), then lands in the DLQ; a delivered one is
audited (WebhookDelivered, with the batch and model digests)."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.observability import logger
from hallmark.scoring.webhooks import DeliveryFailed, backoff_seconds, body_of, signed_headers

AUDIT_NS = uuid.UUID("b6f0c2d4-1e3a-4b5c-9d7e-0a1b2c3d4e5f")


def record_handler(record: SQSRecord) -> None:
    msg = json.loads(record.body)
    sub = runtime.subscribers().get(msg["subscriberId"])
    if sub is None or not sub.active:
        logger.warning("webhook dropped: no such active subscriber", extra={"subscriberId": msg["subscriberId"]})
        return
    secret = runtime.webhooks().secret_of(sub)
    body = body_of(msg["payload"])
    now = datetime.now(UTC)
    attempt = int(record.attributes.approximate_receive_count or 1)
    result = runtime.webhook_poster().post(sub.url, body, signed_headers(secret, msg["webhookId"], body, now),
                                                   float(os.environ.get("WEBHOOK_TIMEOUT_S", "10")))
    if result.refused:  # the host now resolves to a non-public address (DNS rebinding): never retried
        logger.warning("webhook refused: destination not public", extra={"subscriberId": sub.subscriberId,
                                                                         "detail": result.detail})
        return
    if not result.ok:
        delay = backoff_seconds(attempt, int(os.environ.get("WEBHOOK_BACKOFF_BASE_S", "5")))
        try:
            runtime.queue("webhooks").delay(record.receipt_handle, delay)
        except Exception:  # the retry then comes after the queue's visibility timeout
            logger.exception("could not set the webhook retry delay")
        raise DeliveryFailed(f"{sub.url} answered {result.status or result.detail}; attempt {attempt}, "
                             f"next in {delay}s")
    runtime.audit().emit(
        chain="scoring", type="WebhookDelivered", actor="system:scoring_webhooks", subject=msg["subject"],
        data={"webhookId": msg["webhookId"], "subscriberId": sub.subscriberId, "type": msg["type"],
              "batchId": msg["batchId"], "batchDigest": msg["batchDigest"], "modelDigest": msg["modelDigest"],
              "status": result.status, "attempt": attempt},
        event_id=str(uuid.uuid5(AUDIT_NS, msg["webhookId"])))


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return dict(process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                         context=context))
