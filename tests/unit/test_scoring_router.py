"""The band router (briefs per band/domain/topic, valid BriefPayloads), webhook deliveries signed per
Standard Webhooks (verified with the library's own verifier), and the failure reasons the state
machine records."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from gpu_batch.sample_events import make_event
from hallmark.errors import DomainError
from hallmark.scoring.briefs import route, since_ms
from hallmark.scoring.pipeline import describe_failure
from hallmark.scoring.schema import EnrichedEvent, EVIEnvelope, EVIScores
from hallmark.scoring.webhooks import (
    INSTANT_TYPE,
    Subscriber,
    SubscribeRequest,
    WebhookService,
    backoff_seconds,
    body_of,
    check_url,
    deliveries,
    new_secret,
    signed_headers,
    webhook_id,
)
from tests.fakes.scoring import InMemoryBriefStore

ROOT = Path(__file__).resolve().parents[2]
BRIEF_SCHEMA = json.loads((ROOT / "events" / "schemas" / "BriefPayload.json").read_text())
NOW = 1_767_225_600_000


def scored(n: int, band: str, *, domain: str = "ai", source: str = "arxiv", topic: str = "llm",
           total: float = 0.7, impact: float = 0.5, seed: int = 0) -> list[tuple[EVIEnvelope, EnrichedEvent]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        doc = make_event(rng, domain=domain, source=source, with_embedding=False)
        doc["topic_hints"] = [topic]
        ev = EnrichedEvent.model_validate(doc)
        env = EVIEnvelope(event_id=ev.event_id, scores=EVIScores(freshness=1.0, novelty=0.4, impact=impact,
                                                                confidence=0.9, gap=0.5),
                          total_evi=total, band=band)  # type: ignore[arg-type]
        out.append((env, ev))
    return out


def split(pairs: list[tuple[EVIEnvelope, EnrichedEvent]]) -> tuple[list[EVIEnvelope], list[EnrichedEvent]]:
    return [p[0] for p in pairs], [p[1] for p in pairs]


def test_route_splits_the_bands_and_groups_briefs() -> None:
    pairs = (scored(3, "instant", domain="crypto", source="solana_mempool", total=0.9, seed=1)
             + scored(60, "same_day", seed=2) + scored(5, "same_day", domain="crypto", source="eth_mempool",
                                                       topic="mev", impact=0.9, seed=3)
             + scored(4, "weekly", topic="agents", seed=4) + scored(7, "archive", total=0.2, seed=5))
    envs, events = split(pairs)
    routing = route("b-1", [*envs, envs[0]], events, NOW, max_events=50)  # a repeated envelope counts once
    assert len(routing.instant) == 3 and routing.archived == 7 and routing.unmatched == 0
    keys = sorted((b.band, b.domain, len(b.brief.event_ids)) for b in routing.briefs)
    assert keys == [("same_day", "ai", 10), ("same_day", "ai", 50), ("same_day", "crypto", 5), ("weekly", "ai", 4)]
    validator = jsonschema.Draft202012Validator(BRIEF_SCHEMA, format_checker=jsonschema.FormatChecker())
    for b in routing.briefs:
        doc = b.brief.model_dump(mode="json")
        assert not list(validator.iter_errors(doc))
        assert 0 < len(b.brief.headline) <= 200 and b.brief.content.evidence
        assert b.brief.expires_at == (NOW + 24 * 3_600_000 if b.band == "same_day" else None)
    crypto = next(b for b in routing.briefs if b.domain == "crypto")
    assert crypto.brief.impact_level == "critical" and crypto.brief.confidence_score == pytest.approx(0.9)
    again = route("b-1", envs, events, NOW, max_events=50)
    assert [b.brief.brief_id for b in again.briefs] == [b.brief.brief_id for b in routing.briefs]  # retries


def test_headline_stays_within_200_characters() -> None:
    envs, events = split(scored(3, "weekly", topic="x" * 300))
    [brief] = route("b-2", envs, events, NOW).briefs
    assert len(brief.brief.headline) == 200 and brief.brief.headline.endswith("...")


def test_brief_store_filters() -> None:
    store = InMemoryBriefStore()
    envs, events = split(scored(3, "weekly", seed=1) + scored(3, "same_day", domain="crypto",
                                                               source="eth_mempool", impact=0.7, seed=2))
    for b in route("b-3", envs, events, NOW).briefs:
        assert store.put(b) and not store.put(b)
    assert [b.domain for b in store.list(domain="crypto", impact_level=None, since_ms=None, limit=10)] == ["crypto"]
    assert len(store.list(domain=None, impact_level="high", since_ms=None, limit=10)) == 1
    assert store.list(domain=None, impact_level=None, since_ms=NOW + 1, limit=10) == []
    assert since_ms("2026-01-01T00:00:00Z") == NOW and since_ms(str(NOW)) == NOW
    with pytest.raises(ValueError):
        since_ms("2026-01-01T00:00:00")


class Cipher:
    def encrypt(self, plaintext: bytes, context: dict[str, str]) -> bytes:
        return json.dumps({"c": context, "p": plaintext.decode()}).encode()

    def decrypt(self, ciphertext: bytes, context: dict[str, str]) -> bytes:
        doc = json.loads(ciphertext)
        assert doc["c"] == context, "wrong encryption context"
        return str(doc["p"]).encode()


class Subscribers:
    def __init__(self) -> None:
        self.items: dict[str, Subscriber] = {}

    def put(self, s: Subscriber) -> None:
        self.items[s.subscriberId] = s

    def get(self, sid: str) -> Subscriber | None:
        return self.items.get(sid)

    def list(self) -> list[Subscriber]:
        return list(self.items.values())


def test_subscribe_returns_the_secret_once_and_stores_it_encrypted() -> None:
    store = Subscribers()
    svc = WebhookService(store, Cipher(), resolve=lambda host, port: ["93.184.215.14"])
    sub, secret = svc.subscribe(SubscribeRequest(url="https://hooks.example.com/evi", bands=["instant"]), "root")
    assert secret.startswith("whsec_") and secret not in json.dumps(sub.public())
    assert "secretCiphertext" not in sub.public()
    assert svc.secret_of(store.items[sub.subscriberId]) == secret
    with pytest.raises(ValueError):
        SubscribeRequest.model_validate({"url": "https://x.example.com", "bands": ["archive"]})
    with pytest.raises(ValueError):
        SubscribeRequest.model_validate({"url": "https://x.example.com", "bands": ["instant", "instant"]})


@pytest.mark.parametrize(("url", "local", "ok"), [
    ("https://hooks.example.com/x", False, True),
    ("http://hooks.example.com/x", False, False),
    ("https://127.0.0.1/x", False, False),
    ("https://10.1.2.3/x", False, False),
    ("https://169.254.169.254/latest", False, False),
    ("https://user:pw@hooks.example.com/x", False, False),
    ("ftp://hooks.example.com/x", False, False),
    ("http://127.0.0.1:8080/hooks", True, True),
    ("http://10.1.2.3/x", True, False),
])
def test_webhook_urls(url: str, local: bool, ok: bool) -> None:
    def resolve(host: str, port: int) -> list[str]:  # no real DNS in tests
        return {"hooks.example.com": ["93.184.215.14"]}[host]

    if ok:
        assert check_url(url, allow_local_http=local, resolve=resolve) == url
    else:
        with pytest.raises(DomainError):
            check_url(url, allow_local_http=local, resolve=resolve)


def test_deliveries_are_signed_and_verified_by_the_standardwebhooks_verifier() -> None:
    secret = new_secret()
    subs = [Subscriber("wh_a", "https://a.example.com", ["instant"], None, "", "t", "root"),
            Subscriber("wh_b", "https://b.example.com", ["weekly"], None, "", "t", "root")]
    pairs = scored(2, "instant", domain="crypto", source="solana_mempool", total=0.9) + scored(3, "weekly")
    envs, events = split(pairs)
    routing = route("b-9", envs, events, NOW)
    now = datetime.now(UTC)
    msgs = deliveries(subs, routing.instant, routing.briefs, batch_id="b-9", batch_digest="bd", model_digest="md",
                      now=now)
    assert sorted((m["subscriberId"], m["type"]) for m in msgs) == [
        ("wh_a", INSTANT_TYPE), ("wh_a", INSTANT_TYPE), ("wh_b", "brief.created")]
    msg = msgs[0]
    assert msg["webhookId"] == webhook_id("wh_a", INSTANT_TYPE, msg["subject"])  # stable across retries
    body = body_of(msg["payload"])
    headers = signed_headers(secret, msg["webhookId"], body, now)
    assert set(headers) >= {"webhook-id", "webhook-timestamp", "webhook-signature"}
    payload = Webhook(secret).verify(body, headers)
    assert payload["data"]["event_id"] == msg["subject"] and payload["data"]["model_digest"] == "md"
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace("instant", "weekly"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    stale = signed_headers(secret, msg["webhookId"], body, now - timedelta(minutes=10))
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, stale)


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_seconds(n, 5) for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert backoff_seconds(20, 5) == 900


def test_failure_reasons_from_a_lambda_and_from_a_batch_job() -> None:
    lam = describe_failure({"Error": "ModelDigestMismatch", "Cause": json.dumps(
        {"errorType": "ModelDigestMismatch", "errorMessage": "model has sha256 x, the manifest says y"})})
    assert lam == {"error": "ModelDigestMismatch", "message": "model has sha256 x, the manifest says y"}
    job = describe_failure({"Error": "States.TaskFailed", "Cause": json.dumps(
        {"JobId": "j-1", "Status": "FAILED", "StatusReason": "Essential container in task exited",
         "Container": {"ExitCode": 1, "LogStreamName": "evi/default/j-1"}})})
    assert job["error"] == "BatchJobFailed" and job["message"] == "Essential container in task exited"
    assert job["job"] == {"jobId": "j-1", "status": "FAILED", "exitCode": 1, "logStream": "evi/default/j-1"}
    assert describe_failure({"Error": "States.Timeout", "Cause": "not json"})["error"] == "States.Timeout"


def test_webhook_ids_differ_per_subscriber_and_subject() -> None:
    a = webhook_id("wh_a", INSTANT_TYPE, str(uuid.uuid4()))
    assert a.startswith("msg_") and a != webhook_id("wh_b", INSTANT_TYPE, a)
