"""The scoring wire schemas: events/schemas/*.json (the producers' contract) and the pydantic models
reject the same bad input and accept the samples."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel, ValidationError

from hallmark.scoring.schema import BriefPayload, EnrichedEvent, EVIEnvelope

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "events" / "schemas"
SAMPLES = ROOT / "events" / "samples"
FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER


def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{name}.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=FORMATS)


def sample(name: str = "enriched_event.json") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLES / name).read_text())
    return data


def assert_rejected_by_both(doc: dict[str, Any], schema: str, model: type[BaseModel]) -> None:
    assert list(validator(schema).iter_errors(doc)), "the JSON Schema accepted it"
    with pytest.raises(ValidationError):
        model.model_validate_json(json.dumps(doc))
    with pytest.raises(ValidationError):
        model.model_validate(doc)


def envelope() -> dict[str, Any]:
    return {
        "event_id": "0b8e4b8f-3c1e-4b59-9f0a-3f1f6c2b7d11",
        "scores": {"freshness": 0.5, "novelty": 0.8, "impact": 0.425, "confidence": 0.95, "gap": 0.7},
        "total_evi": 0.63,
        "band": "same_day",
    }


def brief() -> dict[str, Any]:
    return {
        "brief_id": "5d0c7a52-54a5-4c8e-8a44-7b3e0f3e9a01",
        "mission_id": None,
        "headline": "New Solana token launch with $250k initial liquidity",
        "content": {
            "summary": "A token launched with unusual liquidity.",
            "evidence": [{"source": "solana_mempool", "text": "initial liquidity $250k", "confidence": 0.9}],
            "suggested_actions": ["watch the deployer wallet"],
            "risk_factors": {"rug": 0.4},
            "visualizations": [{"type": "token_metrics", "data": {"liquidity": 250000}}],
        },
        "event_ids": ["0b8e4b8f-3c1e-4b59-9f0a-3f1f6c2b7d11"],
        "impact_level": "medium",
        "confidence_score": 0.9,
        "created_at": 1_763_800_000_000,
        "expires_at": 1_763_801_800_000,
    }


# --- the samples are valid ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["enriched_event.json", "enriched_event_ai.json"])
def test_samples_are_valid(name: str) -> None:
    doc = sample(name)
    validator("EnrichedEvent").validate(doc)
    event = EnrichedEvent.model_validate_json((SAMPLES / name).read_text())
    assert len(event.payload.embeddings or []) == 768
    # what the model serialises is valid against the contract too
    validator("EnrichedEvent").validate(json.loads(event.model_dump_json()))


def test_an_event_without_embedding_is_valid() -> None:
    doc = sample()
    del doc["payload"]["embeddings"]
    validator("EnrichedEvent").validate(doc)
    assert EnrichedEvent.model_validate(doc).payload.embeddings is None


def test_envelope_and_brief_are_valid() -> None:
    validator("EVIEnvelope").validate(envelope())
    EVIEnvelope.model_validate(envelope())
    validator("BriefPayload").validate(brief())
    b = BriefPayload.model_validate(brief())
    validator("BriefPayload").validate(json.loads(b.model_dump_json()))
    no_expiry = brief() | {"expires_at": None}
    validator("BriefPayload").validate(no_expiry)
    BriefPayload.model_validate(no_expiry)


# --- EnrichedEvent rejections ------------------------------------------------------------------


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        target = doc
        for p in parents:
            target = target[p]
        target[leaf] = value

    return mutate


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        target = doc
        for p in parents:
            target = target[p]
        del target[leaf]

    return mutate


EVENT_REJECTIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "bad uuid": _set("event_id", "not-a-uuid"),
    "uuid without dashes": _set("event_id", "0b8e4b8f3c1e4b599f0a3f1f6c2b7d11"),
    "bad mission uuid": _set("mission_id", "mission-1"),
    "float timestamp": _set("timestamp", 1_763_800_000_000.5),
    "string timestamp": _set("timestamp", "1763800000000"),
    "negative timestamp": _set("timestamp", -1),
    "boolean timestamp": _set("timestamp", True),
    "unknown domain": _set("domain", "finance"),
    "bad source (upper case)": _set("source", "Solana_Mempool"),
    "bad source (dash)": _set("source", "solana-mempool"),
    "bad source (empty)": _set("source", ""),
    "767-float embedding": lambda d: d["payload"].__setitem__("embeddings", d["payload"]["embeddings"][:767]),
    "769-float embedding": lambda d: d["payload"]["embeddings"].append(0.0),
    "string in embedding": lambda d: d["payload"]["embeddings"].__setitem__(5, "0.1"),
    "missing content_hash": _delete("metadata.content_hash"),
    "missing metadata": _delete("metadata"),
    "missing payload": _delete("payload"),
    "sentiment out of range": _set("payload.extracted.sentiment", 1.5),
    "string metric": _set("payload.extracted.metrics", {"holder_count": "120"}),
    "unknown top-level field": _set("priority", "high"),
}


@pytest.mark.parametrize("case", sorted(EVENT_REJECTIONS))
def test_enriched_event_rejections(case: str) -> None:
    doc = copy.deepcopy(sample())
    EVENT_REJECTIONS[case](doc)
    assert_rejected_by_both(doc, "EnrichedEvent", EnrichedEvent)


# --- EVIEnvelope and BriefPayload rejections ---------------------------------------------------


@pytest.mark.parametrize(
    "mutate",
    [
        _set("band", "someday"),
        _set("total_evi", 1.2),
        _set("scores.novelty", -0.1),
        _delete("scores.gap"),
        _set("event_id", "evt-1"),
    ],
    ids=["unknown band", "total above 1", "negative score", "missing gap", "bad uuid"],
)
def test_envelope_rejections(mutate: Callable[[dict[str, Any]], None]) -> None:
    doc = envelope()
    mutate(doc)
    assert_rejected_by_both(doc, "EVIEnvelope", EVIEnvelope)


@pytest.mark.parametrize(
    "mutate",
    [
        _set("headline", "x" * 201),
        _set("headline", ""),
        _set("impact_level", "severe"),
        _set("confidence_score", 1.01),
        _set("created_at", "2025-11-22T08:26:40Z"),
        _set("event_ids", []),
        _set("event_ids", ["evt-1"]),
        _delete("content"),
    ],
    ids=["headline 201", "empty headline", "unknown impact level", "confidence above 1", "string created_at",
         "no events", "bad event id", "missing content"],
)
def test_brief_rejections(mutate: Callable[[dict[str, Any]], None]) -> None:
    doc = brief()
    mutate(doc)
    assert_rejected_by_both(doc, "BriefPayload", BriefPayload)


def test_headline_of_200_chars_is_fine() -> None:
    doc = brief() | {"headline": "x" * 200}
    validator("BriefPayload").validate(doc)
    BriefPayload.model_validate(doc)
