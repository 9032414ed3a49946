"""The gap score's topic coverage (docs/scoring-gap.md): hand-computed cases of the formula, the
index's decay, pruning and storage, and the runners' job feeding real gap values batch after batch."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gpu_batch import entrypoint
from gpu_batch.evi_model import build_model
from hallmark.scoring.coverage import HOUR_MS, CoverageConfig, CoverageIndex, coverage_key, event_topics
from hallmark.scoring.features import ScoringConfig
from hallmark.scoring.schema import EnrichedEvent, EVIEnvelope
from tests.fakes.scoring import InMemoryBlobStore

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = json.loads((ROOT / "events" / "samples" / "enriched_event.json").read_text())
T0 = 1_763_800_000_000


def ev(**changes: Any) -> EnrichedEvent:
    doc = copy.deepcopy(SAMPLE)
    entities = changes.pop("entities", None)
    doc.update(changes)
    if entities is not None:
        doc["payload"]["extracted"]["entities"] = entities
    return EnrichedEvent.model_validate(doc)


def test_event_topics_are_hints_and_typed_entities() -> None:
    e = ev(topic_hints=["Token Launch", "token_launch", " DeFi "],
           entities=[{"type": "Token", "id": "So1AbC"}, {"name": "Alice"}, {"type": "x"}, {"id": 3}])
    # hints lower-cased with blanks as _, repeats dropped; entity ids keep their case
    assert event_topics(e) == ["token_launch", "defi", "token:So1AbC", "Alice"]
    assert event_topics(ev(topic_hints=[], entities=[])) == []


def test_hand_computed_coverage() -> None:
    idx = CoverageIndex()  # brief half-life 24 h, corpus 168 h, corpus weight 0.1, k = 1
    idx.add(T0, briefs=[("crypto", ["a"])], corpus=[("crypto", ["a"])] * 10 + [("crypto", ["b"])] * 3)
    # a: x = 1 + 0.1 * 10 = 2 -> 2/3;  b: x = 0.3 -> 0.3/1.3;  c: not held -> 0
    assert idx.topic_coverage("crypto", "a", T0) == pytest.approx(2 / 3)
    assert idx.topic_coverage("crypto", "b", T0) == pytest.approx(0.3 / 1.3)
    assert idx.coverage("crypto", ["a", "b", "c"], T0) == pytest.approx((2 / 3 + 0.3 / 1.3 + 0) / 3)
    # per domain: the same topic in ai is not covered
    assert idx.coverage("ai", ["a"], T0) == 0.0
    # no topics: unknown
    assert idx.coverage("crypto", [], T0) is None
    # 24 h later: the brief counts 1/2, the ten corpus events 10 * 2**(-24/168)
    x = 0.5 + 0.1 * 10 * 0.5 ** (24 / 168)
    assert idx.topic_coverage("crypto", "a", T0 + 24 * HOUR_MS) == pytest.approx(x / (x + 1))


def test_a_brief_counts_once_per_topic_and_advance_decays() -> None:
    idx = CoverageIndex(CoverageConfig(k=2.0))
    idx.add(T0, briefs=[("ai", ["llm", "llm", "bench"])])
    assert idx.domains["ai"]["llm"] == [1.0, 0.0]
    idx.add(T0 + 24 * HOUR_MS, briefs=[("ai", ["llm"])])
    assert idx.domains["ai"]["llm"][0] == pytest.approx(1.5)  # 1 * 1/2 + 1
    assert idx.topic_coverage("ai", "llm", T0 + 24 * HOUR_MS) == pytest.approx(1.5 / 3.5)
    # time never runs backwards: a replay at an earlier time reads the weights undecayed
    assert idx.topic_coverage("ai", "llm", T0) == pytest.approx(1.5 / 3.5)


def test_faded_topics_leave_the_index_and_the_cap_keeps_the_strongest() -> None:
    idx = CoverageIndex(CoverageConfig(prune_below=0.3, max_topics_per_domain=2))
    idx.add(T0, briefs=[("ai", ["old"])])
    idx.add(T0 + 48 * HOUR_MS, briefs=[("ai", ["new"])])  # old: 1/4 < 0.3 -> pruned
    assert set(idx.domains["ai"]) == {"new"}
    idx.add(T0 + 48 * HOUR_MS, briefs=[("ai", ["new", "x"]), ("ai", ["new"])], corpus=[("ai", ["y"])])
    assert set(idx.domains["ai"]) == {"new", "x"}  # new 3, x 1, y 0.1


def test_index_round_trips_and_refuses_malformed_data() -> None:
    idx = CoverageIndex()
    idx.add(T0, briefs=[("crypto", ["a"])], corpus=[("ai", ["b"])])
    back = CoverageIndex.loads(idx.dumps())
    assert (back.as_of_ms, back.domains) == (idx.as_of_ms, idx.domains)
    for bad in (b"not json", b"[]", b'{"format": 2, "asOfMs": 0, "domains": {}}',
                b'{"format": 1, "asOfMs": -1, "domains": {}}',
                b'{"format": 1, "asOfMs": 0, "domains": {"ai": {"t": [1]}}}',
                b'{"format": 1, "asOfMs": 0, "domains": {"ai": {"t": [1, -1]}}}'):
        with pytest.raises(ValueError, match="coverage index"):
            CoverageIndex.loads(bad)
    assert coverage_key("corpus/current.npy") == "corpus/current.coverage.json"


# --- through the job both runners call -----------------------------------------------------------


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, str]:
    path = tmp_path_factory.mktemp("m") / "evi.onnx"
    digest = build_model(path)
    return path.read_bytes(), digest


def _event(i: int, topic: str, embedding: list[float]) -> dict[str, Any]:
    doc = copy.deepcopy(SAMPLE)
    doc["event_id"] = f"00000000-0000-4000-8000-{i:012d}"
    doc["topic_hints"] = [topic]
    doc["payload"]["extracted"]["entities"] = []
    doc["payload"]["embeddings"] = embedding
    doc["metadata"]["content_hash"] = f"h{i}"
    return doc


def _gaps(store: InMemoryBlobStore, key: str) -> list[float]:
    return [EVIEnvelope.model_validate_json(x).scores.gap for x in store.get(key).decode().splitlines()]


def test_run_job_feeds_real_gaps_and_updates_the_index(model: tuple[bytes, str]) -> None:
    """Batch 1 on an empty index: every topic uncovered (gap 1). Then the index holds batch 1's
    corpus events (and its briefs, when its bands make any): batch 2's gaps are the formula's."""
    rng = np.random.default_rng(3)
    emb = [rng.standard_normal(768).tolist() for _ in range(4)]
    store = InMemoryBlobStore()
    store.put("models/evi.onnx", model[0])
    first = [_event(1, "alpha", emb[0]), _event(2, "alpha", emb[1]), _event(3, "beta", emb[2])]
    store.put("batches/b1.jsonl", "".join(json.dumps(e) + "\n" for e in first).encode())
    cfg = ScoringConfig()
    entrypoint.run_job(store=store, batch_key="batches/b1.jsonl", model_key="models/evi.onnx",
                       model_digest=model[1], now_ms=T0, config=cfg)
    assert _gaps(store, "scored/b1.jsonl") == [1.0, 1.0, 1.0]
    # freshness 1, novelty 1 (empty corpus), impact 0.211, confidence 0.9, gap 1: total 0.748, same_day,
    # so the router makes one same_day brief on alpha (events 1, 2) and one on beta (event 3)
    bands = [EVIEnvelope.model_validate_json(x).band for x in store.get("scored/b1.jsonl").decode().splitlines()]
    assert bands == ["same_day"] * 3
    idx = CoverageIndex.loads(store.get("corpus/current.coverage.json"))
    assert idx.as_of_ms == T0
    assert idx.domains["crypto"] == {"alpha": [1.0, 2.0], "beta": [1.0, 1.0]}

    second = [_event(4, "alpha", emb[3]), _event(5, "gamma", emb[3])]
    store.put("batches/b2.jsonl", "".join(json.dumps(e) + "\n" for e in second).encode())
    later = T0 + 24 * HOUR_MS
    entrypoint.run_job(store=store, batch_key="batches/b2.jsonl", model_key="models/evi.onnx",
                       model_digest=model[1], now_ms=later, config=cfg)
    x = 1 * 0.5 + 0.1 * 2 * 0.5 ** (24 / 168)  # alpha one day on: 0.5 + 0.181 = 0.681 -> gap 0.595
    assert _gaps(store, "scored/b2.jsonl") == pytest.approx([1 - x / (x + 1), 1.0], abs=1e-6)


def test_a_corrupt_index_fails_the_run(model: tuple[bytes, str]) -> None:
    store = InMemoryBlobStore()
    store.put("models/evi.onnx", model[0])
    store.put("batches/b1.jsonl", (json.dumps(_event(1, "a", [0.1] * 768)) + "\n").encode())
    store.put("corpus/current.coverage.json", b"{broken")
    with pytest.raises(ValueError, match="coverage index"):
        entrypoint.run_job(store=store, batch_key="batches/b1.jsonl", model_key="models/evi.onnx",
                           model_digest=model[1], now_ms=T0)
    with pytest.raises(KeyError):
        store.get("scored/b1.jsonl")


def test_a_topic_holding_a_unicode_line_separator_is_scored(model: tuple[bytes, str]) -> None:
    """Batch lines end at \\n only: U+2028 / U+0085 inside a JSON string (written raw by the
    ingest) do not cut the line."""
    store = InMemoryBlobStore()
    store.put("models/evi.onnx", model[0])
    doc = _event(1, "a\u2028b\u0085c", [0.1] * 768)
    store.put("batches/b1.jsonl", (json.dumps(doc, ensure_ascii=False) + "\n").encode())
    result = entrypoint.run_job(store=store, batch_key="batches/b1.jsonl", model_key="models/evi.onnx",
                                model_digest=model[1], now_ms=T0)
    assert (result.scored, result.rejected) == (1, [])
