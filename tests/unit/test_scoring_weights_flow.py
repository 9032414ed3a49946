"""The EVI weights through the scoring steps: the plan assigns a batch its signed weights (the
canary for its share of batches), both runners' job scores with them and names the version on
every envelope (the other version's bands in shadow in the summary), the record step counts a
canary batch, and feedback on the stored envelope and brief finds what scored them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gpu_batch import entrypoint
from gpu_batch.evi_model import build_model
from gpu_batch.sample_events import BASE_TS_MS, make_event
from hallmark.scoring.batching import BATCH, Limits
from hallmark.scoring.briefs import route
from hallmark.scoring.job import summary_key, weights_key
from hallmark.scoring.models import ActiveModel
from hallmark.scoring.pipeline import ScoringPipeline
from hallmark.scoring.schema import EnrichedEvent, EVIEnvelope
from hallmark.scoring.weights import (
    CURRENT,
    DEFAULT_VERSION,
    WEIGHTS,
    FeedbackIn,
    FeedbackService,
    RolloutState,
    StoredItems,
    WeightsRollout,
    WeightsUnsigned,
    WeightsVersion,
    default_version,
    is_canary_batch,
)
from tests.fakes.docstore import InMemoryDocStore
from tests.fakes.release import RecordingAudit
from tests.fakes.scoring import InMemoryBlobStore, InMemoryBriefStore
from tests.fakes.signing import LocalSigner

IMPACT_ONLY = (0.0, 0.0, 1.0, 0.0, 0.0)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, str]:
    path: Path = tmp_path_factory.mktemp("m") / "evi.onnx"
    digest = build_model(path)
    return path.read_bytes(), digest


def active_model(digest: str) -> ActiveModel:
    return ActiveModel(modelKey="models/evi.onnx", modelDigest=digest, manifestSignatureId="k:1", manifestDigest="m",
                       manifestRef={}, artifactSha256="a", packageId="p", packageName="evi", packageVersion="1.0.0",
                       registeredAt="t", registeredBy="u")


def canary_batch_id(want: bool) -> str:
    return next(f"b{i}" for i in range(1000) if is_canary_batch(f"b{i}", 10) == want)


def world(model: tuple[bytes, str], batch_id: str) -> tuple[Any, ...]:
    docs, audit, blobs, signer = InMemoryDocStore(), RecordingAudit(), InMemoryBlobStore(), LocalSigner.generate()
    blobs.put("models/evi.onnx", model[0])
    rng = np.random.default_rng(5)
    events = [make_event(rng, timestamp_ms=BASE_TS_MS) for _ in range(6)]
    blobs.put(f"batches/{batch_id}.jsonl", "".join(json.dumps(e) + "\n" for e in events).encode())
    docs.create(BATCH, batch_id, {"status": "Sealed", "history": [], "events": 6, "batchKey": f"batches/{batch_id}.jsonl",
                                  "batchDigest": "d" * 64})
    canary = WeightsVersion("w-1", {"crypto": IMPACT_ONLY}, DEFAULT_VERSION, "2026-12-03T00:00:00.000Z").signed(signer)
    docs.create(WEIGHTS, CURRENT, RolloutState(default_version(), canary, [], 1).as_dict())
    rollout = WeightsRollout(docs, audit, None)
    pipeline = ScoringPipeline(docs, audit, blobs)
    return docs, audit, blobs, signer, rollout, pipeline, events


@pytest.mark.parametrize("is_canary", [True, False])
def test_plan_job_record_and_feedback(model: tuple[bytes, str], is_canary: bool) -> None:
    batch_id = canary_batch_id(is_canary)
    docs, audit, blobs, signer, rollout, pipeline, events = world(model, batch_id)
    plan = pipeline.plan(batch_id, "arn:x", active_model(model[1]), Limits(),
                         assign=lambda b: rollout.assign(b, signer.public_key_pem()))
    assert (plan.weightsVersion, plan.canary) == ("w-1" if is_canary else DEFAULT_VERSION, is_canary)
    assert json.loads(blobs.get(weights_key(plan.outputKey)))["canary"] is is_canary
    entrypoint.run_job(store=blobs, batch_key=plan.batchKey, model_key=plan.modelKey, model_digest=plan.modelDigest,
                       output_key=plan.outputKey, now_ms=BASE_TS_MS)
    envelopes = [EVIEnvelope.model_validate_json(x) for x in blobs.get(plan.outputKey).decode().splitlines()]
    version = "w-1" if is_canary else DEFAULT_VERSION
    assert {e.weights_version for e in envelopes} == {version}
    for e in envelopes:
        expected = e.scores.impact if is_canary else float(np.dot(
            [e.scores.freshness, e.scores.novelty, e.scores.impact, e.scores.confidence, e.scores.gap],
            [0.25, 0.25, 0.30, 0.15, 0.05]))
        assert e.total_evi == pytest.approx(expected, abs=1e-6)
    summary = json.loads(blobs.get(summary_key(plan.outputKey)))
    assert summary["weights"]["weightsVersion"] == version
    assert summary["weights"]["shadowWeightsVersion"] == (DEFAULT_VERSION if is_canary else "w-1")
    assert sum(summary["weights"]["shadowBands"].values()) == len(envelopes)

    result = pipeline.record(plan.as_dict(), summary, count_canary=rollout.record_batch)
    assert result["weightsVersion"] == version
    assert rollout.state().canary_batches == ([batch_id] if is_canary else [])
    [scored] = [e for e in audit.events.values() if e["type"] == "BatchScored"]
    assert scored["data"]["weightsVersion"] == version and scored["data"]["canary"] is is_canary

    briefs = InMemoryBriefStore()
    parsed = [EnrichedEvent.model_validate(e) for e in events]
    for b in route(batch_id, envelopes, parsed, BASE_TS_MS).briefs:
        briefs.put(b)
    feedback = FeedbackService(docs, audit, StoredItems(briefs, blobs))
    target = envelopes[0]
    doc, changed = feedback.record("envelope", target.event_id, "user:ann",
                                   FeedbackIn(verdict="wrong_band", band="instant", batchId=batch_id))
    assert changed and doc["weightsVersion"] == version and doc["domain"] == "crypto"
    assert doc["scores"] == pytest.approx([target.scores.freshness, target.scores.novelty, target.scores.impact,
                                           target.scores.confidence, target.scores.gap])
    if briefs.items:
        brief = next(iter(briefs.items.values()))
        doc, _ = feedback.record("brief", brief.brief.brief_id, "user:ann", FeedbackIn(verdict="useful"))
        assert doc["weightsVersion"] == version and doc["scoredBand"] == brief.band


def test_the_plan_refuses_unsigned_weights_before_taking_the_lease(model: tuple[bytes, str]) -> None:
    batch_id = canary_batch_id(True)
    docs, _, blobs, _signer, rollout, pipeline, _ = world(model, batch_id)
    with pytest.raises(WeightsUnsigned):
        pipeline.plan(batch_id, "arn:x", active_model(model[1]), Limits(),
                      assign=lambda b: rollout.assign(b, LocalSigner.generate().public_key_pem()))
    assert docs.get("scoring-lease", "corpus") is None
    with pytest.raises(KeyError):
        blobs.get(weights_key(f"scored/{batch_id}.jsonl"))


def test_without_an_assignment_the_envelopes_name_the_default_weights(model: tuple[bytes, str]) -> None:
    batch_id = canary_batch_id(False)
    _, _, blobs, _, _, _, _ = world(model, batch_id)
    entrypoint.run_job(store=blobs, batch_key=f"batches/{batch_id}.jsonl", model_key="models/evi.onnx",
                       model_digest=model[1], now_ms=BASE_TS_MS)
    envelopes = [EVIEnvelope.model_validate_json(x) for x in blobs.get(f"scored/{batch_id}.jsonl").decode().splitlines()]
    assert {e.weights_version for e in envelopes} == {DEFAULT_VERSION}
