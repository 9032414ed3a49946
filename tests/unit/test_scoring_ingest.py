"""Ingestion: schema rejections (with the field named), the fast path agreeing with both validators,
dedupe on content_hash within 24 h (support_count, redelivery), and the DynamoDB dedupe on moto."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import jsonschema
import pytest
from moto import mock_aws
from pydantic import ValidationError

from hallmark.adapters.dynamo_scoring import DynamoDedupe
from hallmark.scoring.ingest import (
    DEDUPE_WINDOW_S,
    Accepted,
    Duplicate,
    EventValidator,
    Ingestor,
    Rejected,
    parse_envelope,
    reject_message,
)
from hallmark.scoring.schema import EnrichedEvent
from tests.fakes.scoring import InMemoryDedupe

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "events" / "schemas" / "EnrichedEvent.json").read_text())
SAMPLE = json.loads((ROOT / "events" / "samples" / "enriched_event.json").read_text())
VALIDATOR = EventValidator(SCHEMA)


def envelope(detail: Any, detail_type: str = "EnrichedEvent") -> str:
    return json.dumps({"version": "0", "id": "x", "detail-type": detail_type, "source": "com.example.enricher",
                       "account": "123456789012", "time": "2026-11-22T08:00:00Z", "region": "us-east-1",
                       "resources": [], "detail": detail})


def event(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(SAMPLE)
    doc.update(changes)
    return doc


def mutate(path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(SAMPLE)
    *parents, last = path.split(".")
    node = doc
    for p in parents:
        node = node[p]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return doc


REJECTIONS: list[tuple[str, dict[str, Any], str]] = [
    ("event_id not a uuid", event(event_id="not-a-uuid"), "$.event_id"),
    ("event_id missing", mutate("event_id", KeyError), "event_id"),
    ("timestamp a float", event(timestamp=1_763_800_000_000.5), "$.timestamp"),
    ("timestamp a string", event(timestamp="1763800000000"), "$.timestamp"),
    ("timestamp negative", event(timestamp=-1), "$.timestamp"),
    ("domain outside the enum", event(domain="finance"), "$.domain"),
    ("source with capitals and dash", event(source="Bad-Source"), "$.source"),
    ("source with digits", event(source="feed2"), "$.source"),
    ("embedding of 767 numbers", mutate("payload.embeddings", SAMPLE["payload"]["embeddings"][:767]),
     "$.payload.embeddings"),
    ("embedding of 769 numbers", mutate("payload.embeddings", [*SAMPLE["payload"]["embeddings"], 0.0]),
     "$.payload.embeddings"),
    ("embedding with a string", mutate("payload.embeddings", ["x", *SAMPLE["payload"]["embeddings"][1:]]),
     "$.payload.embeddings"),
    ("content_hash missing", mutate("metadata.content_hash", KeyError), "content_hash"),
    ("unknown top-level field", event(extra=1), "'extra'"),
]


@pytest.mark.parametrize(("case", "doc", "field"), REJECTIONS, ids=[c for c, _, _ in REJECTIONS])
def test_schema_rejections_name_the_field(case: str, doc: dict[str, Any], field: str) -> None:
    outcome = VALIDATOR.validate(doc)
    assert isinstance(outcome, Rejected), case
    assert field in outcome.reason, outcome.reason
    assert outcome.reason.startswith("$"), outcome.reason
    assert len(outcome.reason) <= 240 and outcome.errors[0] == outcome.reason
    # the producers' contract rejects it as well
    assert list(jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).iter_errors(doc))


def test_a_large_embedding_is_not_echoed_in_the_reason() -> None:
    outcome = VALIDATOR.validate(mutate("payload.embeddings", SAMPLE["payload"]["embeddings"][:767]))
    assert isinstance(outcome, Rejected)
    assert outcome.reason == "$.payload.embeddings: has 767 items, minItems is 768"


@pytest.mark.parametrize("name", ["enriched_event.json", "enriched_event_ai.json"])
def test_the_samples_are_accepted_as_the_line_the_runners_parse(name: str) -> None:
    doc = json.loads((ROOT / "events" / "samples" / name).read_text())
    outcome = VALIDATOR.validate(doc)
    assert isinstance(outcome, Accepted)
    assert EnrichedEvent.model_validate_json(outcome.line) == outcome.event
    assert "\n" not in outcome.line


def _both_accept(doc: dict[str, Any]) -> bool:
    schema_ok = not list(jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
                         .iter_errors(doc))
    try:
        EnrichedEvent.model_validate_json(json.dumps(doc))
        model_ok = True
    except ValidationError:
        model_ok = False
    return schema_ok and model_ok


VARIANTS: list[Callable[[], dict[str, Any]]] = [
    lambda: copy.deepcopy(SAMPLE),
    lambda: mutate("payload.embeddings", None),
    lambda: mutate("payload.embeddings", KeyError),
    lambda: mutate("payload.embeddings", [1] * 768),  # integers are numbers to the schema
    lambda: mutate("payload.embeddings", [True] * 768),
    lambda: mutate("payload.extracted.metrics", {"x": "1"}),
    lambda: mutate("metadata.geo_location", {"latitude": 91, "longitude": 0, "country_code": "FR"}),
    lambda: mutate("payload.extracted.sentiment", 2.0),
    lambda: mutate("mission_id", "not-a-uuid"),
    lambda: event(topic_hints="llm"),
]


@pytest.mark.parametrize("make", VARIANTS)
def test_the_fast_path_gives_the_verdict_of_both_validators(make: Callable[[], dict[str, Any]]) -> None:
    doc = make()
    assert isinstance(VALIDATOR.validate(doc), Accepted) == _both_accept(doc)


def test_the_function_ships_the_producers_schema_unchanged() -> None:
    shipped = ROOT / "functions" / "scoring_ingest" / "EnrichedEvent.json"
    assert shipped.read_bytes() == (ROOT / "events" / "schemas" / "EnrichedEvent.json").read_bytes()


@pytest.mark.parametrize(("body", "reason"), [
    ("{not json", "body: not JSON"),
    ("[1, 2]", "body: not an EventBridge event object"),
    (envelope(SAMPLE, "SomethingElse"), "detail-type: 'SomethingElse' is not 'EnrichedEvent'"),
    (json.dumps({"detail-type": "EnrichedEvent"}), "detail: missing"),
])
def test_envelope_rejections(body: str, reason: str) -> None:
    detail, refused = parse_envelope(body)
    assert detail is None and refused is not None and refused.reason.startswith(reason)


def test_reject_message_carries_the_reason_and_the_event() -> None:
    body = envelope(event(domain="finance"))
    outcome = Ingestor(VALIDATOR, InMemoryDedupe()).classify(body, 1_000)
    assert isinstance(outcome, Rejected)
    msg = reject_message(body, outcome, "m-1", 1_000)
    assert msg["reason"].startswith("$.domain") and msg["event"] == body and msg["sourceMessageId"] == "m-1"


def test_duplicates_count_support_and_a_redelivery_is_not_a_duplicate() -> None:
    ingestor = Ingestor(VALIDATOR, InMemoryDedupe())
    first = event()
    again = event(event_id="6f1c9a52-3a43-4a53-9d8e-6c1d8b7f0a11")
    third = event(event_id="6f1c9a52-3a43-4a53-9d8e-6c1d8b7f0a12")
    assert isinstance(ingestor.classify(envelope(first), 100), Accepted)
    dup = ingestor.classify(envelope(again), 101)
    assert isinstance(dup, Duplicate) and dup.support_count == 2 and dup.first_event_id == first["event_id"]
    dup = ingestor.classify(envelope(third), 102)
    assert isinstance(dup, Duplicate) and dup.support_count == 3
    assert isinstance(ingestor.classify(envelope(first), 103), Accepted)  # SQS redelivered the first one
    # after 24 h the hash may be claimed again
    assert isinstance(ingestor.classify(envelope(again), 100 + DEDUPE_WINDOW_S), Accepted)


def test_dedupe_within_one_batch() -> None:
    ingestor = Ingestor(VALIDATOR, InMemoryDedupe())
    a = VALIDATOR.validate(event())
    b = VALIDATOR.validate(event(event_id="6f1c9a52-3a43-4a53-9d8e-6c1d8b7f0a11"))
    assert isinstance(a, Accepted) and isinstance(b, Accepted)
    out = ingestor.dedupe_all([a, b], 5)
    assert isinstance(out[0], Accepted) and isinstance(out[1], Duplicate)


@mock_aws
def test_dynamo_dedupe_claims_counts_and_expires() -> None:
    ddb = boto3.resource("dynamodb", region_name="us-east-1")
    table = ddb.create_table(
        TableName="scoring", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}])
    store = DynamoDedupe(table)
    assert store.claim("h1", "e1", 100, 60).first
    second = store.claim("h1", "e2", 110, 60)
    assert (second.first, second.first_event_id, second.support_count) == (False, "e1", 2)
    assert store.claim("h1", "e3", 120, 60).support_count == 3
    redelivered = store.claim("h1", "e1", 130, 60)
    assert redelivered.first and redelivered.support_count == 3
    assert store.support("h1") == {"contentHash": "h1", "eventId": "e1", "supportCount": 3, "firstSeen": 100,
                                   "expiresAt": 160}
    fresh = store.claim("h1", "e4", 160, 60)  # the claim expired (TTL deletes it later)
    assert fresh.first and fresh.support_count == 1
    many = store.claim_many([("h2", "a"), ("h2", "b"), ("h1", "c")], 170, 60)
    assert [c.first for c in many] == [True, False, False]
