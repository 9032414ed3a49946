"""``ScoringPipeline.record``: what BatchScored audits is the model the runner says it loaded,
and only a digest the plan took from the signed manifest is accepted."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hallmark.scoring.batching import BATCH
from hallmark.scoring.job import summary_key
from hallmark.scoring.pipeline import OutputInvalid, Plan, ScoringPipeline
from hallmark.scoring.schema import EVIEnvelope
from tests.fakes.docstore import InMemoryDocStore
from tests.fakes.scoring import InMemoryBlobStore

MAIN, GPU, CAND = "a" * 64, "b" * 64, "c" * 64


class Audit:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def emit(self, *, chain: str, type: str, actor: str, subject: str, data: dict[str, Any],
             event_id: str | None = None) -> str:
        self.events.append({"type": type, "data": data})
        return event_id or "id"


def setup() -> tuple[ScoringPipeline, InMemoryBlobStore, Audit, dict[str, Any]]:
    docs, blobs, audit = InMemoryDocStore(), InMemoryBlobStore(), Audit()
    docs.create(BATCH, "b1", {"status": "Scoring", "history": [], "events": 1})
    plan = Plan(batchId="b1", batchKey="batches/b1.jsonl", batchDigest="d" * 64, outputKey="scored/b1.jsonl",
                corpusKey="corpus/current.npy", size=1, corpusSize=0, work=0, threshold=10, runner="gpu",
                modelKey=f"models/{MAIN}.onnx", modelDigest=MAIN, manifestSignatureId="k:1",
                gpuModelKey=f"models/{GPU}.onnx", gpuModelDigest=GPU, candidateModelKey=f"models/{CAND}.onnx",
                candidateModelDigest=CAND, int8MinBatch=1).as_dict()
    envelope = EVIEnvelope.model_validate({
        "event_id": "00000000-0000-4000-8000-000000000001", "total_evi": 0.5, "band": "weekly",
        "scores": {"freshness": 0.5, "novelty": 0.5, "impact": 0.5, "confidence": 0.5, "gap": 0.5}})
    blobs.put("scored/b1.jsonl", (envelope.model_dump_json() + "\n").encode())
    return ScoringPipeline(docs, audit, blobs), blobs, audit, plan


def batch_scored(audit: Audit) -> dict[str, Any]:
    [event] = [e for e in audit.events if e["type"] == "BatchScored"]
    return event["data"]


def test_the_batch_jobs_summary_names_the_model_it_loaded() -> None:
    pipeline, blobs, audit, plan = setup()
    blobs.put(summary_key("scored/b1.jsonl"), json.dumps({"modelDigest": GPU, "mode": "exact",
                                                          "provider": "CUDAExecutionProvider"}).encode())
    result = pipeline.record(plan, {"runner": "gpu-batch", "jobId": "j1"})
    assert (result["modelDigest"], result["mode"], result["provider"]) == (GPU, "exact", "CUDAExecutionProvider")
    data = batch_scored(audit)
    assert (data["modelDigest"], data["mode"]) == (GPU, "exact") and "candidateModelDigest" not in data


def test_the_lambdas_answer_is_its_summary() -> None:
    pipeline, _, audit, plan = setup()
    pipeline.record(plan, {"runner": "cpu-lambda", "modelDigest": MAIN, "mode": "int8", "candidateModelDigest": CAND})
    data = batch_scored(audit)
    assert (data["modelDigest"], data["mode"], data["candidateModelDigest"]) == (MAIN, "int8", CAND)


def test_without_a_summary_the_plans_float32_model_is_audited() -> None:
    pipeline, _, audit, plan = setup()
    pipeline.record(plan, {"runner": "gpu-batch", "jobId": "j1"})
    assert (batch_scored(audit)["modelDigest"], batch_scored(audit)["mode"]) == (MAIN, "exact")


@pytest.mark.parametrize("summary", [{"modelDigest": "e" * 64}, {"modelDigest": MAIN, "candidateModelDigest": "e" * 64},
                                     {"modelDigest": CAND}, {"modelDigest": MAIN, "candidateModelDigest": GPU}])
def test_a_digest_the_plan_did_not_carry_fails_the_batch(summary: dict[str, str]) -> None:
    pipeline, blobs, audit, plan = setup()
    blobs.put(summary_key("scored/b1.jsonl"), json.dumps(summary).encode())
    with pytest.raises(OutputInvalid, match="does not name"):
        pipeline.record(plan, {"runner": "gpu-batch"})
    assert audit.events == [] and pipeline.batch("b1")["status"] == "Scoring"
