"""Webhook subscribers and deliveries, signed per Standard Webhooks (https://www.standardwebhooks.com).

- ``POST /webhooks {url, bands}`` registers a subscriber with its own secret (``whsec_`` + base64
  of 32 random bytes). The secret is returned once; it is stored only encrypted (``SecretCipher``:
  KMS with the subscriber id as encryption context).
- The router turns each ``instant`` event into one delivery per subscriber of ``instant`` and each
  brief into one delivery per subscriber of its band. A delivery is an SQS message; its
  ``webhook-id`` is derived from (subscriber, subject), so every retry carries the same id and the
  receiver can drop repeats.
- The sender signs each attempt with ``standardwebhooks.Webhook(secret).sign`` (headers
  ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``) and POSTs it; a non-2xx answer or a
  network error is retried with exponential backoff, then lands in the DLQ.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator
from standardwebhooks import Webhook

from hallmark.canonical import to_rfc3339
from hallmark.errors import NotFound
from hallmark.netguard import Resolver, vet_url
from hallmark.scoring.briefs import Scored, StoredBrief

NAMESPACE = uuid.UUID("5c1f0e2a-9d8b-4f61-8a0e-7d4c2b1e3f59")
SubscribableBand = Literal["instant", "same_day", "weekly"]
INSTANT_TYPE = "evi.instant"
BRIEF_TYPE = "brief.created"


class SubscribeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)

    url: str = Field(min_length=8, max_length=2048)
    bands: list[SubscribableBand] = Field(min_length=1, max_length=3)
    description: str | None = Field(default=None, max_length=200)

    @field_validator("bands")
    @classmethod
    def _unique(cls, v: list[SubscribableBand]) -> list[SubscribableBand]:
        if len(set(v)) != len(v):
            raise ValueError("bands must not repeat")
        return v


class SecretCipher(Protocol):
    def encrypt(self, plaintext: bytes, context: dict[str, str]) -> bytes: ...

    def decrypt(self, ciphertext: bytes, context: dict[str, str]) -> bytes: ...


@dataclass(frozen=True)
class Subscriber:
    subscriberId: str
    url: str
    bands: list[str]
    description: str | None
    secretCiphertext: str  # base64
    createdAt: str
    createdBy: str
    active: bool = True

    def public(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "secretCiphertext"}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class SubscriberStore(Protocol):
    def put(self, subscriber: Subscriber) -> None: ...

    def get(self, subscriber_id: str) -> Subscriber | None: ...

    def list(self) -> list[Subscriber]: ...


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def check_url(url: str, *, allow_local_http: bool, resolve: Resolver) -> str:
    """``https`` to a public host (every address it resolves to: hallmark.netguard); ``http`` or
    ``https`` to the loopback only on the local cloud. The sender vets it again at each delivery."""
    vet_url(url, resolve, allow_loopback=allow_local_http)
    return url


def webhook_id(subscriber_id: str, kind: str, subject: str) -> str:
    return "msg_" + uuid.uuid5(NAMESPACE, f"{subscriber_id}/{kind}/{subject}").hex


class WebhookService:
    def __init__(self, store: SubscriberStore, cipher: SecretCipher, *, resolve: Resolver,
                 allow_local_http: bool = False, clock: Callable[[], datetime] | None = None) -> None:
        self.store = store
        self.cipher = cipher
        self.resolve = resolve
        self.allow_local_http = allow_local_http
        self.clock = clock or (lambda: datetime.now(UTC))

    def subscribe(self, req: SubscribeRequest, actor: str) -> tuple[Subscriber, str]:
        """The new subscriber and its secret (shown to the caller once, never stored in clear)."""
        url = check_url(req.url, allow_local_http=self.allow_local_http, resolve=self.resolve)
        sid = f"wh_{uuid.uuid4().hex[:20]}"
        secret = new_secret()
        ciphertext = self.cipher.encrypt(secret.encode("ascii"), {"subscriberId": sid})
        sub = Subscriber(
            subscriberId=sid, url=url, bands=list(req.bands), description=req.description,
            secretCiphertext=base64.b64encode(ciphertext).decode("ascii"),
            createdAt=to_rfc3339(self.clock()), createdBy=actor,
        )
        self.store.put(sub)
        return sub, secret

    def deactivate(self, subscriber_id: str) -> Subscriber:
        sub = self.store.get(subscriber_id)
        if sub is None:
            raise NotFound("webhook subscriber", subscriber_id)
        if sub.active:
            sub = replace(sub, active=False)
            self.store.put(sub)
        return sub

    def secret_of(self, sub: Subscriber) -> str:
        return self.cipher.decrypt(base64.b64decode(sub.secretCiphertext),
                                   {"subscriberId": sub.subscriberId}).decode("ascii")


def _instant_payload(s: Scored, batch_id: str, model_digest: str, now: datetime) -> dict[str, Any]:
    ev, env = s.event, s.envelope
    return {
        "type": INSTANT_TYPE,
        "timestamp": to_rfc3339(now),
        "data": {
            "event_id": ev.event_id, "batch_id": batch_id, "band": env.band, "total_evi": env.total_evi,
            "scores": env.scores.model_dump(), "domain": ev.domain, "source": ev.source,
            "topic_hints": list(ev.topic_hints), "event_timestamp": ev.timestamp,
            "content_hash": ev.content_hash, "model_digest": model_digest,
        },
    }


def deliveries(subscribers: Sequence[Subscriber], instant: Sequence[Scored], briefs: Sequence[StoredBrief], *,
               batch_id: str, batch_digest: str, model_digest: str, now: datetime) -> list[dict[str, Any]]:
    """The delivery messages for the webhooks queue (no secrets in them)."""
    out: list[dict[str, Any]] = []
    common = {"batchId": batch_id, "batchDigest": batch_digest, "modelDigest": model_digest}
    for sub in subscribers:
        if not sub.active:
            continue
        if "instant" in sub.bands:
            for s in instant:
                out.append({**common, "webhookId": webhook_id(sub.subscriberId, INSTANT_TYPE, s.event.event_id),
                            "subscriberId": sub.subscriberId, "type": INSTANT_TYPE, "subject": s.event.event_id,
                            "payload": _instant_payload(s, batch_id, model_digest, now)})
        for b in briefs:
            if b.band in sub.bands:
                payload = {"type": BRIEF_TYPE, "timestamp": to_rfc3339(now),
                           "data": {**b.as_dict(), "model_digest": model_digest}}
                out.append({**common, "webhookId": webhook_id(sub.subscriberId, BRIEF_TYPE, b.brief.brief_id),
                            "subscriberId": sub.subscriberId, "type": BRIEF_TYPE, "subject": b.brief.brief_id,
                            "payload": payload})
    return out


def body_of(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def signed_headers(secret: str, msg_id: str, body: str, now: datetime) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body),
        "content-type": "application/json",
        "user-agent": "hallmark-webhooks/1",
    }


class DeliveryFailed(Exception):
    """The receiver did not accept the webhook (retried with backoff, then the DLQ)."""


def backoff_seconds(receive_count: int, base_s: int) -> int:
    """Exponential: base, 2x base, 4x base ... capped at 15 minutes."""
    return int(min(900, base_s * (2 ** max(0, receive_count - 1))))
