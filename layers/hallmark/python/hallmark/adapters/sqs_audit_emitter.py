"""``AuditEmitter`` over the audit SQS FIFO queue.

One message per event; the body is the JSON object ``{id, chain, ts, type, actor, subject,
data}`` (RFC 8785 canonical), ``MessageGroupId = chain`` (appends are serialized per chain)
and ``MessageDeduplicationId = event id`` (a re-sent event within SQS's 5-minute window is
dropped by SQS; after it, the writer's idempotent append drops it). Event ids default to a
random UUID; a step that may be retried passes a deterministic id (for example
``f"{execution}:{step}"``) so that its retries never make a second entry.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from hallmark.audit.events import CHAIN_PATTERN, validate_event_type
from hallmark.canonical import canonical_bytes, to_rfc3339

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

__all__ = ["AuditMessage", "SqsAuditEmitter", "parse_audit_message"]

# SQS: 1-128 characters from alphanumerics and punctuation !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~
_SQS_ID: Final = re.compile(r"^[!-~]{1,128}$")
_CHAIN_RE: Final = re.compile(CHAIN_PATTERN)
_MESSAGE_KEYS: Final = frozenset({"id", "chain", "ts", "type", "actor", "subject", "data"})

AuditMessage = dict[str, Any]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _dedup_id(event_id: str) -> str:
    """The event id itself when SQS accepts it, else its SHA-256 (64 hex characters)."""
    return event_id if _SQS_ID.match(event_id) else hashlib.sha256(event_id.encode("utf-8")).hexdigest()


class SqsAuditEmitter:
    """Queues audit events on a FIFO queue for the audit writer."""

    def __init__(self, sqs_client: SQSClient, queue_url: str, clock: Callable[[], datetime] = _utc_now):
        self._sqs = sqs_client
        self._queue_url = queue_url
        self._clock = clock

    def emit(
        self,
        *,
        chain: str,
        type: str,
        actor: str,
        subject: str,
        data: dict[str, Any],
        event_id: str | None = None,
    ) -> str:
        """Queue one event; returns its id. A repeated ``event_id`` never makes a second entry."""
        validate_event_type(type)
        if not _CHAIN_RE.match(chain):
            raise ValueError(f"invalid chain name {chain!r} (must match {CHAIN_PATTERN})")
        event_id = event_id or str(uuid.uuid4())
        body = {
            "id": event_id,
            "chain": chain,
            "ts": to_rfc3339(self._clock()),
            "type": type,
            "actor": actor,
            "subject": subject,
            "data": dict(data),
        }
        self._sqs.send_message(
            QueueUrl=self._queue_url,
            MessageBody=canonical_bytes(body).decode("utf-8"),
            MessageGroupId=chain,
            MessageDeduplicationId=_dedup_id(event_id),
        )
        return event_id


def parse_audit_message(body: str | bytes | Mapping[str, Any]) -> AuditMessage:
    """Decode and check one queued audit message (the audit writer's input)."""
    obj = json.loads(body) if isinstance(body, str | bytes) else dict(body)
    if not isinstance(obj, dict) or set(obj) != _MESSAGE_KEYS:
        raise ValueError(f"an audit message has exactly the fields {sorted(_MESSAGE_KEYS)}")
    for name in ("id", "chain", "ts", "type", "actor", "subject"):
        if not isinstance(obj[name], str):
            raise ValueError(f"audit message field {name!r} must be a string")
    if not isinstance(obj["data"], dict):
        raise ValueError("audit message field 'data' must be an object")
    validate_event_type(obj["type"])
    return obj
