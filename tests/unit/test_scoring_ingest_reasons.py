"""The rejection reasons of the ingest path are held fixed: ``tests/data/ingest_rejections.json``
was captured from the jsonschema-only validator before the compiled fast path existed; every bad
body here must still be refused with exactly those reason and errors, and every good variant
accepted with a line the runners parse to the same event.

Regenerate (only when a reason is meant to change): ``python -m tests.unit.test_scoring_ingest_reasons``.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hallmark.scoring.ingest import (
    COMPILED_FOR,
    Accepted,
    EventValidator,
    Ingestor,
    Rejected,
    parse_envelope,
    schema_digest,
)
from hallmark.scoring.schema import EnrichedEvent
from tests.fakes.scoring import InMemoryDedupe

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "events" / "schemas" / "EnrichedEvent.json").read_text())
SAMPLE = json.loads((ROOT / "events" / "samples" / "enriched_event.json").read_text())
SAMPLE_AI = json.loads((ROOT / "events" / "samples" / "enriched_event_ai.json").read_text())
GOLDEN = ROOT / "tests" / "data" / "ingest_rejections.json"
EMB = SAMPLE["payload"]["embeddings"]


def envelope(detail: Any, detail_type: str = "EnrichedEvent") -> str:
    return json.dumps({"version": "0", "id": "x", "detail-type": detail_type, "source": "com.example.enricher",
                       "account": "123456789012", "time": "2026-11-22T08:00:00Z", "region": "us-east-1",
                       "resources": [], "detail": detail})


def put(path: str, value: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    doc = copy.deepcopy(base if base is not None else SAMPLE)
    *parents, last = path.split(".")
    node = doc
    for p in parents:
        node = node.setdefault(p, {})
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return doc


def body(path: str, value: Any) -> str:
    return envelope(put(path, value))


GEO = {"latitude": 48.8, "longitude": 2.3, "country_code": "FR"}

BAD: dict[str, Callable[[], str]] = {
    "not json": lambda: "{not json",
    "empty body": lambda: "",
    "array body": lambda: "[1, 2]",
    "string body": lambda: '"EnrichedEvent"',
    "other detail type": lambda: envelope(SAMPLE, "SomethingElse"),
    "detail type missing": lambda: json.dumps({"detail": SAMPLE}),
    "detail missing": lambda: json.dumps({"detail-type": "EnrichedEvent"}),
    "detail null": lambda: envelope(None),
    "detail a list": lambda: envelope([SAMPLE]),
    "detail empty": lambda: envelope({}),
    "NaN in the embedding": lambda: envelope(put("payload.embeddings", [float("nan"), *EMB[1:]])),
    "Infinity timestamp": lambda: envelope(put("timestamp", float("inf"))),
    "event_id not a uuid": lambda: body("event_id", "not-a-uuid"),
    "event_id a uuid with a newline": lambda: body("event_id", SAMPLE["event_id"] + "\n"),
    "event_id an int": lambda: body("event_id", 12),
    "event_id missing": lambda: body("event_id", KeyError),
    "mission_id not a uuid": lambda: body("mission_id", "m-1"),
    "mission_id a number": lambda: body("mission_id", 7),
    "timestamp a float": lambda: body("timestamp", 1_763_800_000_000.5),
    "timestamp integral float": lambda: body("timestamp", 1_763_800_000_000.0),
    "timestamp a string": lambda: body("timestamp", "1763800000000"),
    "timestamp negative": lambda: body("timestamp", -1),
    "timestamp a bool": lambda: body("timestamp", True),
    "timestamp null": lambda: body("timestamp", None),
    "domain outside the enum": lambda: body("domain", "finance"),
    "domain upper case": lambda: body("domain", "AI"),
    "source with capitals and dash": lambda: body("source", "Bad-Source"),
    "source with digits": lambda: body("source", "feed2"),
    "source too long": lambda: body("source", "a" * 65),
    "source empty": lambda: body("source", ""),
    "topic_hints a string": lambda: body("topic_hints", "llm"),
    "topic_hints with a number": lambda: body("topic_hints", ["llm", 3]),
    "topic_hints null": lambda: body("topic_hints", None),
    "payload missing": lambda: body("payload", KeyError),
    "payload a list": lambda: body("payload", []),
    "raw a list": lambda: body("payload.raw", [1]),
    "extracted unknown field": lambda: body("payload.extracted.extra", 1),
    "extracted a string": lambda: body("payload.extracted", "x"),
    "entities an object": lambda: body("payload.extracted.entities", {"id": "x"}),
    "entity a string": lambda: body("payload.extracted.entities", ["So1"]),
    "metrics a list": lambda: body("payload.extracted.metrics", [1]),
    "metric a string": lambda: body("payload.extracted.metrics", {"x": "1"}),
    "metric a bool": lambda: body("payload.extracted.metrics", {"x": True}),
    "metric null": lambda: body("payload.extracted.metrics", {"x": None}),
    "sentiment above 1": lambda: body("payload.extracted.sentiment", 2.0),
    "sentiment below -1": lambda: body("payload.extracted.sentiment", -1.5),
    "sentiment a string": lambda: body("payload.extracted.sentiment", "up"),
    "embedding of 767 numbers": lambda: body("payload.embeddings", EMB[:767]),
    "embedding of 769 numbers": lambda: body("payload.embeddings", [*EMB, 0.0]),
    "embedding empty": lambda: body("payload.embeddings", []),
    "embedding with a string": lambda: body("payload.embeddings", ["x", *EMB[1:]]),
    "embedding with a null": lambda: body("payload.embeddings", [*EMB[:767], None]),
    "embedding of bools": lambda: body("payload.embeddings", [True] * 768),
    "embedding with one bool": lambda: body("payload.embeddings", [*EMB[:767], False]),
    "embedding nested": lambda: body("payload.embeddings", [EMB]),
    "embedding a string": lambda: body("payload.embeddings", "0.1,0.2"),
    "embedding overflowing to infinity": lambda: body("payload.embeddings", [1e308] * 768)
        .replace("1e+308", "1e999", 1),
    "metadata missing": lambda: body("metadata", KeyError),
    "metadata a list": lambda: body("metadata", []),
    "content_hash missing": lambda: body("metadata.content_hash", KeyError),
    "content_hash empty": lambda: body("metadata.content_hash", ""),
    "content_hash too long": lambda: body("metadata.content_hash", "h" * 257),
    "content_hash a number": lambda: body("metadata.content_hash", 5),
    "geo latitude out of range": lambda: body("metadata.geo_location", {**GEO, "latitude": 91}),
    "geo longitude a string": lambda: body("metadata.geo_location", {**GEO, "longitude": "2.3"}),
    "geo country lower case": lambda: body("metadata.geo_location", {**GEO, "country_code": "fr"}),
    "geo country missing": lambda: body("metadata.geo_location", {"latitude": 1, "longitude": 2}),
    "geo unknown field": lambda: body("metadata.geo_location", {**GEO, "alt": 3}),
    "geo a list": lambda: body("metadata.geo_location", [1, 2]),
    "language a number": lambda: body("metadata.language", 1),
    "processing_time_ms negative": lambda: body("metadata.processing_time_ms", -1),
    "processing_time_ms a float": lambda: body("metadata.processing_time_ms", 1.5),
    "processing_time_ms a bool": lambda: body("metadata.processing_time_ms", True),
    "unknown top-level field": lambda: body("extra", 1),
    "several errors at once": lambda: envelope(put("domain", "x", put("timestamp", "t", put("source", "A")))),
    "duplicate key, the last invalid": lambda: envelope(SAMPLE).replace('"domain": "crypto"',
                                                                        '"domain": "crypto", "domain": "x"', 1),
    "duplicate detail-type, the last wrong": lambda: envelope(SAMPLE).replace(
        '"detail-type": "EnrichedEvent"', '"detail-type": "EnrichedEvent", "detail-type": "Other"', 1),
    "byte order mark": lambda: "\ufeff" + envelope(SAMPLE),
    "trailing garbage": lambda: envelope(SAMPLE) + " x",
    "two bodies": lambda: envelope(SAMPLE) + envelope(SAMPLE),
    "raw control character in a string": lambda: envelope(put("topic_hints", ["a"])).replace('["a"]', '["a\tb"]'),
    "single-quoted JSON": lambda: envelope(SAMPLE).replace('"version": "0"', "'version': '0'", 1),
    "a big integer and a bad domain": lambda: envelope(put("domain", "x", put("payload.raw", {"a": 2**70}))),
    "a big integer and a bad embedding": lambda: envelope(put("payload.embeddings", [2**70] * 767)),
    "lone surrogate in a topic": lambda: envelope(put("topic_hints", ["a"])).replace('["a"]', '["\\ud800"]'),
}

GOOD: dict[str, Callable[[], str]] = {
    "the crypto sample": lambda: envelope(SAMPLE),
    "the ai sample": lambda: envelope(SAMPLE_AI),
    "no embedding": lambda: body("payload.embeddings", KeyError),
    "null embedding": lambda: body("payload.embeddings", None),
    "integer embedding": lambda: body("payload.embeddings", [1] * 768),
    "mixed int and float embedding": lambda: body("payload.embeddings", [0, *EMB[1:]]),
    "upper-case uuid": lambda: body("event_id", SAMPLE["event_id"].upper()),
    "mission id": lambda: body("mission_id", "6f1c9a52-3a43-4a53-9d8e-6c1d8b7f0a11"),
    "minimal payload and metadata": lambda: envelope(put("metadata", {"content_hash": "h"},
                                                         put("payload", {}, put("topic_hints", KeyError)))),
    "geo location": lambda: body("metadata.geo_location", GEO),
    "null geo, language and processing time": lambda: envelope(put("metadata", {
        "content_hash": "h", "geo_location": None, "language": None, "processing_time_ms": None})),
    "metadata extra field": lambda: body("metadata.trace", {"a": [1, 2]}),
    "payload extra field": lambda: body("payload.summary", "text"),
    "integer metrics and sentiment": lambda: envelope(put("payload.extracted", {
        "entities": [], "metrics": {"a": 1, "b": -2.5}, "sentiment": -1})),
    "null sentiment": lambda: body("payload.extracted.sentiment", None),
    "unicode text": lambda: body("topic_hints", ["café", "東京", "\u2028"]),
    "duplicate key, last wins": lambda: envelope(SAMPLE).replace('"domain": "crypto"',
                                                                 '"domain": "finance", "domain": "crypto"', 1),
    "timestamp beyond 64 bits": lambda: body("timestamp", 2**70),  # both validators take it
    "a uint256 amount in raw": lambda: body("payload.raw", {"amount_wei": 2**80, "n": -(2**63) - 1}),
    "a big integer in an entity": lambda: body("payload.extracted.entities", [{"type": "tx", "id": "x", "v": 2**65}]),
    "an embedding with a big integer": lambda: body("payload.embeddings", [2**70, *EMB[1:]]),
    "processing time beyond 64 bits": lambda: body("metadata.processing_time_ms", 2**64),
    "e+ in a string": lambda: body("topic_hints", ["one+two", "some+e+thing"]),
    "big integral values": lambda: body("payload.extracted.metrics", {"big": 10**18, "tiny": 1e-300}),
}


def check(raw: str) -> Accepted | Rejected:
    return Ingestor(EventValidator(SCHEMA), InMemoryDedupe()).check(raw)


def capture() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, make in BAD.items():
        outcome = check(make())
        assert isinstance(outcome, Rejected), name
        out[name] = {"reason": outcome.reason, "errors": list(outcome.errors)}
    return out


def test_every_bad_body_has_a_captured_reason() -> None:
    assert sorted(json.loads(GOLDEN.read_text())) == sorted(BAD)


@pytest.mark.parametrize("name", sorted(BAD))
def test_rejection_reasons_are_unchanged(name: str) -> None:
    want = json.loads(GOLDEN.read_text())[name]
    outcome = check(BAD[name]())
    assert isinstance(outcome, Rejected), name
    assert {"reason": outcome.reason, "errors": list(outcome.errors)} == want


@pytest.mark.parametrize("name", sorted(GOOD))
def test_good_bodies_are_accepted_with_a_line_that_parses_to_the_event(name: str) -> None:
    raw = GOOD[name]()
    outcome = check(raw)
    assert isinstance(outcome, Accepted), (name, outcome)
    detail = json.loads(raw)["detail"]
    assert EnrichedEvent.model_validate_json(outcome.line) == EnrichedEvent.model_validate_json(json.dumps(detail))
    assert json.loads(outcome.line) == detail and "\n" not in outcome.line
    assert outcome.event.event_id == detail["event_id"]
    assert outcome.event.content_hash == detail["metadata"]["content_hash"]


def full_path(raw: str) -> Accepted | Rejected:
    """``json`` and both validators, without the compiled fast path."""
    detail, refused = parse_envelope(raw)
    return refused if refused is not None else EventValidator(SCHEMA).validate(detail)


def same_outcome(raw: str) -> None:
    fast, full = check(raw), full_path(raw)
    assert type(fast) is type(full), (fast, full)
    if isinstance(fast, Rejected):
        assert fast == full
    else:
        assert isinstance(full, Accepted)
        assert json.loads(fast.line) == json.loads(full.line)
        assert fast.event == full.event and (fast.event_id, fast.content_hash) == (full.event_id, full.content_hash)


@pytest.mark.parametrize("name", sorted({**BAD, **GOOD}))
def test_the_fast_path_and_the_full_path_agree(name: str) -> None:
    same_outcome({**BAD, **GOOD}[name]())


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8)
    | st.sampled_from(["crypto", "ai", "x_y", SAMPLE["event_id"], "FR", "e+1", "true"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
PATHS = ["event_id", "mission_id", "timestamp", "domain", "source", "topic_hints", "payload", "payload.raw",
         "payload.raw.embeddings", "payload.extracted", "payload.extracted.entities", "payload.extracted.metrics",
         "payload.extracted.metrics.m", "payload.extracted.sentiment", "payload.embeddings", "payload.extra",
         "metadata", "metadata.content_hash", "metadata.geo_location", "metadata.language",
         "metadata.processing_time_ms", "metadata.extra", "extra"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(PATHS), JSON_VALUES | st.just(KeyError)), min_size=1, max_size=3),
       st.integers(min_value=0, max_value=767), st.sampled_from([None, True, "x", 2**70, 1e300, 0]))
def test_the_paths_agree_on_random_events(changes: list[tuple[str, Any]], at: int, element: Any) -> None:
    doc = copy.deepcopy(SAMPLE)
    if element is not None:
        doc["payload"]["embeddings"][at] = element
    for path, value in changes:
        try:
            doc = put(path, value, doc)
        except (KeyError, TypeError, AttributeError):
            continue  # a parent replaced by a scalar earlier
    same_outcome(envelope(doc))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(PATHS), JSON_VALUES | st.just(KeyError)), min_size=1, max_size=3),
       st.booleans())
def test_the_light_detail_gives_the_schema_errors_of_the_full_one(changes: list[tuple[str, Any]],
                                                                  drop_embedding: bool) -> None:
    """The oracle for EventValidator._light: the schema's errors on the untouched detail."""
    doc = copy.deepcopy(SAMPLE)
    if drop_embedding:
        del doc["payload"]["embeddings"]
    for path, value in changes:
        try:
            doc = put(path, value, doc)
        except (KeyError, TypeError, AttributeError):
            continue
    validator = EventValidator(SCHEMA)
    assert validator._schema_errors(validator._light(doc)) == validator._schema_errors(doc)


def test_the_compiled_checks_are_for_the_shipped_schema() -> None:
    """Changing events/schemas/EnrichedEvent.json turns the fast path off until its checks
    (``hallmark.scoring.ingest.fast_accepts``) are brought in line and COMPILED_FOR updated."""
    assert schema_digest(SCHEMA) == COMPILED_FOR
    other = {**SCHEMA, "description": "changed"}
    validator = EventValidator(other)
    assert not validator._fast
    assert isinstance(Ingestor(validator, InMemoryDedupe()).check(envelope(SAMPLE)), Accepted)


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(capture(), indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    sys.stdout.write(f"wrote {GOLDEN.relative_to(ROOT)}\n")
