"""Operator actions shared by the CLI and the runbooks (``hallmark ops ...``)."""

from __future__ import annotations

import hashlib
from typing import Any

_MAX_DEDUP_ID = 128  # SQS: 1-128 characters


def redrive_dedup_id(dedup_id: str) -> str:
    """The deduplication id a redriven FIFO message is sent with: ``<id>.r``, hashed to fit.

    Not the original id: SQS drops (while still answering success) a message whose id was sent
    in the last 5 minutes, even if that message has since been deleted or dead-lettered, so
    re-sending the original id could silently lose the event. Derived deterministically, so a
    redrive that is run again after a crash (the message sent, not yet deleted from the DLQ)
    sends the same id and SQS drops the second copy; past the window, the consumer's
    idempotency (the audit writer's event id) drops it.
    """
    candidate = f"{dedup_id}.r"
    return candidate if len(candidate) <= _MAX_DEDUP_ID else hashlib.sha256(candidate.encode()).hexdigest() + ".r"


def redrive(sqs: Any, dlq_url: str, source_url: str, *, limit: int | None = None,
            visibility_timeout_s: int = 60) -> int:
    """Move the messages of ``dlq_url`` back to ``source_url``; returns how many were moved.

    Each message is deleted from the DLQ only after it was sent (at least once, never lost).
    FIFO queues: the ``MessageGroupId`` is kept, and so is the order within each group (the DLQ
    hands a group's messages out in order, and one at a time per group); the deduplication id
    becomes :func:`redrive_dedup_id` of the original. Body and message attributes are kept.
    """
    fifo = source_url.endswith(".fifo")
    moved = 0
    while limit is None or moved < limit:
        batch = min(10, limit - moved) if limit is not None else 10
        messages = sqs.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=batch, WaitTimeSeconds=0,
            VisibilityTimeout=visibility_timeout_s, AttributeNames=["All"], MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            request: dict[str, Any] = {"QueueUrl": source_url, "MessageBody": message["Body"]}
            if message.get("MessageAttributes"):
                request["MessageAttributes"] = message["MessageAttributes"]
            if fifo:
                attributes = message.get("Attributes", {})
                group = attributes.get("MessageGroupId")
                if not group:
                    raise ValueError(f"message {message['MessageId']} in {dlq_url} has no MessageGroupId")
                original = attributes.get("MessageDeduplicationId") or hashlib.sha256(
                    message["Body"].encode()).hexdigest()
                request["MessageGroupId"] = group
                request["MessageDeduplicationId"] = redrive_dedup_id(original)
            sqs.send_message(**request)
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    return moved
