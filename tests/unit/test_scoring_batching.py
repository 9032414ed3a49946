"""The open batch: appended in chunks, sealed at the size or time threshold (or flushed), composed
into one file with its digest, started once; a caller that stops half-way is finished by the next."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from hallmark.scoring.batching import (
    BATCH,
    INCOMING,
    ConfigUpdate,
    Intake,
    Limits,
    batch_key,
    limits,
    update_config,
)
from tests.fakes.docstore import InMemoryDocStore
from tests.fakes.scoring import InMemoryBlobStore


class Starter:
    def __init__(self, fail: bool = False) -> None:
        self.started: dict[str, dict[str, Any]] = {}
        self.fail = fail

    def start(self, name: str, payload: dict[str, Any]) -> str:
        if self.fail:
            raise RuntimeError("Step Functions is unreachable")
        self.started.setdefault(name, payload)
        return f"arn:aws:states:us-east-1:123456789012:execution:hallmark-scoring:{name}"


class Clock:
    def __init__(self) -> None:
        self.ms = 1_767_225_600_000

    def __call__(self) -> int:
        return self.ms


def intake(docs: InMemoryDocStore | None = None, blobs: InMemoryBlobStore | None = None, starter: Starter | None = None,
           clock: Clock | None = None, **kw: int) -> Intake:
    return Intake(docs or InMemoryDocStore(), blobs or InMemoryBlobStore(), starter or Starter(), Limits(**kw), clock or Clock())


def lines(n: int, start: int = 0) -> list[str]:
    return [f'{{"n":{i}}}' for i in range(start, start + n)]


def test_sealed_at_the_size_threshold_into_one_file_with_its_digest() -> None:
    blobs, starter, docs = InMemoryBlobStore(), Starter(), InMemoryDocStore()
    it = intake(docs, blobs, starter, max_events=25, max_age_s=3600)
    assert it.append(lines(10)) == []
    assert it.append(lines(10, 10)) == []
    sealed = it.append(lines(10, 20))
    assert len(sealed) == 1 and sealed[0].size == 30
    body = blobs.get(batch_key(sealed[0].batch_id))
    assert body.decode().splitlines() == lines(30)
    assert sealed[0].batch_digest == hashlib.sha256(body).hexdigest()
    assert starter.started[sealed[0].batch_id] == {"batchId": sealed[0].batch_id, "batchKey": sealed[0].batch_key,
                                                   "size": 30, "batchDigest": sealed[0].batch_digest}
    assert not [k for k in blobs.objects if k.startswith(INCOMING)]  # chunks removed once composed
    record = docs.get(BATCH, sealed[0].batch_id)
    assert record is not None and record["status"] == "Sealed" and record["events"] == 30
    assert it.open_batch()["count"] == 0 and it.open_batch()["batchId"] != sealed[0].batch_id


def test_counters_of_duplicates_and_rejects_travel_with_the_batch() -> None:
    docs = InMemoryDocStore()
    it = intake(docs, max_events=100)
    it.append(lines(3), duplicates=2, rejected=1)
    it.append([], duplicates=1, rejected=0)
    [sealed] = it.seal_if_due(force=True)
    record = docs.get(BATCH, sealed.batch_id)
    assert record is not None and (record["events"], record["duplicates"], record["rejected"]) == (3, 3, 1)


def test_sealed_at_the_time_threshold_by_the_tick() -> None:
    clock = Clock()
    it = intake(clock=clock, max_events=1000, max_age_s=60)
    it.append(lines(5))
    assert it.seal_if_due() == []
    clock.ms += 60_000
    [sealed] = it.seal_if_due()
    assert sealed.size == 5


def test_an_empty_batch_is_never_sealed() -> None:
    it = intake(max_events=1, max_age_s=1)
    assert it.seal_if_due(force=True) == []
    it.append([], duplicates=0, rejected=0)
    assert it.seal_if_due(force=True) == []


def test_a_caller_that_stopped_half_way_is_finished_by_the_next() -> None:
    docs, blobs = InMemoryDocStore(), InMemoryBlobStore()
    broken = intake(docs, blobs, Starter(fail=True), max_events=10)
    with pytest.raises(RuntimeError):
        broken.append(lines(10))
    pending = docs.get("scoring-intake", "open")
    assert pending is not None and len(pending["pending"]) == 1
    starter = Starter()
    [sealed] = intake(docs, blobs, starter, max_events=10).seal_if_due()  # e.g. the next tick
    assert sealed.size == 10 and sealed.batch_id in starter.started
    assert blobs.get(batch_key(sealed.batch_id)).decode().splitlines() == lines(10)
    doc = docs.get("scoring-intake", "open")
    assert doc is not None and doc["pending"] == []


def test_limits_from_the_environment_overridden_by_the_stored_configuration() -> None:
    docs = InMemoryDocStore()
    env = {"SCORING_BATCH_MAX_EVENTS": "300", "SCORING_BATCH_MAX_AGE_S": "30", "SCORING_GPU_THRESHOLD": "7"}
    assert limits(env, docs) == Limits(300, 30, 7)
    out = update_config(docs, env, ConfigUpdate(gpuThreshold=0), "root")
    assert out["gpuThreshold"] == 0 and out["batchMaxEvents"] == 300
    update_config(docs, env, ConfigUpdate(batchMaxEvents=50), "root")
    assert limits(env, docs) == Limits(50, 30, 0)


def test_config_update_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        ConfigUpdate.model_validate({"batchMaxEvents": 0})
    with pytest.raises(ValueError):
        ConfigUpdate.model_validate({"gpuThreshold": -1})
    with pytest.raises(ValueError):
        ConfigUpdate.model_validate({"threshold": 5})


class StaleBatchRead(InMemoryDocStore):
    """The first read of a batch record misses it, as a drainer that read just before another
    drainer created it would."""

    def __init__(self) -> None:
        super().__init__()
        self.stale = True

    def get(self, kind: str, ident: str) -> dict[str, Any] | None:
        if kind == BATCH and self.stale:
            self.stale = False
            return None
        return super().get(kind, ident)


def test_two_drainers_of_one_pending_batch_start_it_once_and_neither_fails() -> None:
    """The ingest seals a batch while an operator's flush drains the same pending entry: the first
    finishes it and removes its chunks; the second, whose record read came too early, must find the
    record instead of failing on the chunks that are gone."""
    docs, blobs, starter = InMemoryDocStore(), InMemoryBlobStore(), Starter()
    broken = intake(docs, blobs, Starter(fail=True), max_events=10)
    with pytest.raises(RuntimeError):
        broken.append(lines(10))  # sealed, pending, not started
    [pending] = docs.get("scoring-intake", "open")["pending"]  # type: ignore[index]
    [first] = intake(docs, blobs, starter, max_events=10).seal_if_due()
    assert not any(k.startswith(INCOMING) for k in blobs.objects)  # its chunks are gone

    late_docs = StaleBatchRead()
    late_docs._docs = docs._docs  # the same table, read too early once
    second = intake(late_docs, blobs, starter, max_events=10)._finish(pending)
    assert (second.batch_id, second.batch_digest, second.size) == (first.batch_id, first.batch_digest, 10)
    assert list(starter.started) == [first.batch_id]
    assert blobs.get(batch_key(first.batch_id)).decode().splitlines() == lines(10)


def test_a_pending_batch_whose_chunks_are_lost_is_not_sealed_empty() -> None:
    class LosingBlobs(InMemoryBlobStore):
        def put(self, key: str, data: bytes) -> None:
            if not key.startswith(INCOMING):
                super().put(key, data)

    docs, starter = InMemoryDocStore(), Starter()
    with pytest.raises(KeyError):
        intake(docs, LosingBlobs(), starter, max_events=10).append(lines(10))
    doc = docs.get("scoring-intake", "open")
    assert doc is not None and len(doc["pending"]) == 1
    assert docs.get(BATCH, doc["pending"][0]["batchId"]) is None and starter.started == {}
