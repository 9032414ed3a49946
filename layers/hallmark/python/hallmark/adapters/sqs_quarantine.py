"""``hallmark.audit.intake.Quarantine`` over a dead-letter queue: the poison message's body as it
arrived, its reason and original message id as attributes, in its original group (FIFO)."""

from __future__ import annotations

import hashlib
from typing import Any


class SqsQuarantine:
    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._url = queue_url

    def put(self, body: str, *, reason: str, message_id: str, group: str) -> None:
        params: dict[str, Any] = {
            "QueueUrl": self._url,
            "MessageBody": body or "(empty)",
            "MessageAttributes": {
                "quarantineReason": {"DataType": "String", "StringValue": reason or "poison"},
                "sourceMessageId": {"DataType": "String", "StringValue": message_id or "unknown"},
            },
        }
        if self._url.endswith(".fifo"):
            params["MessageGroupId"] = group or "quarantine"
            params["MessageDeduplicationId"] = hashlib.sha256(message_id.encode()).hexdigest()
        self._sqs.send_message(**params)
