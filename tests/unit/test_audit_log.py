"""AuditLog on the in-memory store: hashes to the wire format, idempotency, races, the
checkpoint policy, signed checkpoints, export, proofs, and 3 threads x 1,000 appends."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import math
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import rfc8785
from pydantic import ValidationError

from hallmark.audit.checkpoints import CheckpointPolicy, checkpoint_hash, verify_checkpoint_signature
from hallmark.audit.events import (
    ALL_EVENT_TYPES,
    EVENT_FIELDS,
    EVENT_TYPES,
    GENESIS,
    AuditEvent,
    UnknownEventType,
    event_hash,
    flow_of,
    validate_event_type,
)
from hallmark.audit.log import AuditLog
from hallmark.audit.merkle import merkle_root
from hallmark.audit.replay import verify_export
from hallmark.audit.store import CheckpointConflict, CheckpointRecord, HeadMoved
from hallmark.signing import public_key_fingerprint, verify_signature
from tests.fakes.audit import InMemoryAuditStore
from tests.fakes.signing import LocalSigner

TS = "2026-11-22T20:11:00.000Z"


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 22, 20, 11, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def signer() -> LocalSigner:
    return LocalSigner.generate(key_id="audit-key")


def make_log(signer: LocalSigner, every_n: int = 10, every_seconds: float = math.inf) -> AuditLog:
    return AuditLog(InMemoryAuditStore(), signer, CheckpointPolicy(every_n, every_seconds), FakeClock())


def add(log: AuditLog, i: int, chain: str = "release", **data: Any) -> AuditEvent:
    return log.append(chain, f"ev-{i}", TS, "PackageSubmitted", "alice", f"pkg-{i}", {"i": i, **data})


def test_vocabulary() -> None:
    assert set(EVENT_TYPES) == {"release", "governance", "ceremony", "market", "scoring"}
    assert EVENT_TYPES["release"][0] == "PackageSubmitted"
    # DESIGN.md's 32 types, plus registry maintenance (approvers, witnesses) and settlement expiry
    # + PackageUploadIgnored, AdvisorySetPublished, names (4), ImpactPolicyChanged; FeedbackRecorded,
    # WeightsProposed/Promoted/RolledBack; the deployment flow's steps (10); SubjectErased; DeliveryDownloaded
    assert len(ALL_EVENT_TYPES) == 8 + 7 + 8 + 5 + 4 + 6 + 2 + 5 + 4 + 10 + 1 + 1
    assert {"ApproverAdded", "WitnessRegistered", "SettlementExpired"} <= ALL_EVENT_TYPES
    assert flow_of("TierAwarded") == "ceremony"
    assert validate_event_type("WebhookDelivered") == "WebhookDelivered"
    with pytest.raises(UnknownEventType):
        validate_event_type("PackageExploded")


def test_append_builds_the_wire_format(signer: LocalSigner) -> None:
    log = make_log(signer)
    e1 = add(log, 1, score=0.5)
    e2 = add(log, 2)
    assert (e1.seq, e1.prevHash) == (1, GENESIS)
    assert (e2.seq, e2.prevHash) == (2, e1.hash)
    wire = e1.to_wire()
    assert tuple(wire) == EVENT_FIELDS
    body = {k: v for k, v in wire.items() if k not in ("hash", "signature")}
    assert e1.hash == hashlib.sha256(rfc8785.dumps(body)).hexdigest() == event_hash(wire)
    assert e1.signature is None
    assert AuditEvent.from_wire(wire) == e1
    with pytest.raises(ValueError):
        AuditEvent.from_wire(dict(wire, actor="mallory"))
    with pytest.raises(ValidationError):
        AuditEvent.model_validate(dict(wire, extra=1))


def test_append_validates_input(signer: LocalSigner) -> None:
    log = make_log(signer)
    with pytest.raises(UnknownEventType):
        log.append("release", "x", TS, "Nope", "a", "s", {})
    with pytest.raises(ValueError):
        log.append("release", "x", "2026-11-22 20:11:00", "PackageSubmitted", "a", "s", {})
    with pytest.raises(ValueError):
        log.append("release", "x", TS, "PackageSubmitted", "a", "s", {"bad": float("nan")})
    with pytest.raises(ValueError):
        log.append("release", "x", TS, "PackageSubmitted", "a", "s", {"big": 2**60})
    with pytest.raises(ValueError):
        log.append("no spaces", "x", TS, "PackageSubmitted", "a", "s", {})
    assert log.store.head("release") is None
    ev = log.append(
        "release", "y", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "PackageSubmitted", "a", "s", {}
    )
    assert ev.ts == "2026-01-02T03:04:05.000Z"


def test_duplicate_id_is_idempotent(signer: LocalSigner) -> None:
    log = make_log(signer)
    first = add(log, 1)
    add(log, 2)
    again = log.append("release", "ev-1", TS, "PackageRejected", "bob", "other", {"different": True})
    assert again == first
    assert log.store.head("release") == (2, log.store.get("release", "ev-2").hash)  # type: ignore[union-attr]
    assert [e.id for e in log.store.events("release")] == ["ev-1", "ev-2"]
    # the same id on another chain is another event
    assert add(log, 1, chain="market").seq == 1


class RacingStore(InMemoryAuditStore):
    """Lets a rival writer append between our head() read and our append()."""

    def __init__(self, rivals: int) -> None:
        super().__init__()
        self.rivals = rivals
        self.lost = 0

    def append(self, event: AuditEvent) -> AuditEvent:
        if self.rivals and event.id.startswith("ours"):
            self.rivals -= 1
            head = self.head(event.chain)
            seq, prev = (1, GENESIS) if head is None else (head[0] + 1, head[1])
            rival = AuditEvent.create(
                id=f"rival-{self.rivals}", chain=event.chain, seq=seq, ts=TS, type="ApprovalRecorded",
                actor="rival", subject="s", data={}, prevHash=prev,
            )  # fmt: skip
            super().append(rival)
        try:
            return super().append(event)
        except HeadMoved:
            self.lost += 1
            raise


def test_lost_race_rereads_the_head(signer: LocalSigner) -> None:
    store = RacingStore(rivals=3)
    log = AuditLog(store, signer, CheckpointPolicy(100, math.inf), FakeClock(), backoff_s=0)
    ours = log.append("governance", "ours-1", TS, "ApprovalRequested", "a", "s", {})
    assert store.lost == 3
    assert ours.seq == 4
    chain = list(store.events("governance"))
    assert [e.seq for e in chain] == [1, 2, 3, 4]
    assert all(b.prevHash == a.hash for a, b in itertools.pairwise(chain))


def test_in_memory_store_refuses_a_stale_append(signer: LocalSigner) -> None:
    store = InMemoryAuditStore()
    e1 = AuditEvent.create(
        id="a", chain="c", seq=1, ts=TS, type="OrderPlaced", actor="x", subject="y", data={}, prevHash=GENESIS
    )
    store.append(e1)
    stale = AuditEvent.create(
        id="b", chain="c", seq=1, ts=TS, type="OrderPlaced", actor="x", subject="y", data={}, prevHash=GENESIS
    )
    with pytest.raises(HeadMoved):
        store.append(stale)
    wrong_prev = AuditEvent.create(
        id="b",
        chain="c",
        seq=2,
        ts=TS,
        type="OrderPlaced",
        actor="x",
        subject="y",
        data={},
        prevHash="1" * 64,
    )
    with pytest.raises(HeadMoved):
        store.append(wrong_prev)
    assert store.append(e1) == e1  # duplicate id: the stored event


def test_checkpoints_every_n(signer: LocalSigner) -> None:
    log = make_log(signer, every_n=10)
    events = [add(log, i) for i in range(1, 26)]
    ckpts = list(log.store.checkpoints("release"))
    assert [c["seq"] for c in ckpts] == [10, 20]
    c10, c20 = ckpts
    assert tuple(c10) == (
        "chain",
        "seq",
        "ts",
        "headHash",
        "merkleRoot",
        "prevCheckpointHash",
        "keyId",
        "keyFingerprint",
        "signature",
    )
    assert c10["keyFingerprint"] == public_key_fingerprint(signer.public_key_pem())
    assert c10["headHash"] == events[9].hash
    assert c10["merkleRoot"] == merkle_root([bytes.fromhex(e.hash) for e in events[:10]]).hex()
    assert c10["prevCheckpointHash"] == "0" * 64
    assert c10["keyId"] == "audit-key"
    assert c20["prevCheckpointHash"] == hashlib.sha256(rfc8785.dumps(c10)).hexdigest() == checkpoint_hash(c10)
    body = {k: v for k, v in c20.items() if k != "signature"}
    assert verify_signature(signer.public_key_pem(), rfc8785.dumps(body), base64.b64decode(c20["signature"]))
    assert verify_checkpoint_signature(c20, signer.public_key_pem())
    assert not verify_checkpoint_signature(dict(c20, seq=21), signer.public_key_pem())
    assert not verify_checkpoint_signature(c20, LocalSigner.generate().public_key_pem())


def test_checkpoint_every_t_seconds_and_checkpoint_now(signer: LocalSigner) -> None:
    clock = FakeClock()
    log = AuditLog(InMemoryAuditStore(), signer, CheckpointPolicy(1000, 60), clock)
    add(log, 1)
    clock.advance(30)
    add(log, 2)
    assert log.store.latest_checkpoint("release") is None
    clock.advance(31)  # 61 s since the first uncovered event
    add(log, 3)
    latest = log.store.latest_checkpoint("release")
    assert latest is not None and latest.seq == 3
    assert log.maybe_checkpoint("release") is None  # nothing uncovered
    add(log, 4)
    clock.advance(59)
    assert log.maybe_checkpoint("release") is None
    clock.advance(2)
    made = log.maybe_checkpoint("release")  # the scheduled sweeper's call
    assert made is not None and made["seq"] == 4
    assert log.checkpoint_now("release") is None  # head already covered
    add(log, 5)
    forced = log.checkpoint_now("release")
    assert forced is not None and forced["seq"] == 5
    assert log.checkpoint_now("empty-chain") is None


def test_policy_validation() -> None:
    p = CheckpointPolicy(every_n=5, every_seconds=10)
    assert not p.due(uncovered=0, seconds_since_last=100)
    assert p.due(uncovered=5, seconds_since_last=0)
    assert p.due(uncovered=1, seconds_since_last=10)
    assert not p.due(uncovered=1, seconds_since_last=None)
    for bad in ({"every_n": 0}, {"every_seconds": 0}, {"every_seconds": float("nan")}):
        with pytest.raises(ValueError):
            CheckpointPolicy(**bad)  # type: ignore[arg-type]


def test_export_derives_signature_references(signer: LocalSigner) -> None:
    log = make_log(signer, every_n=10)
    for i in range(1, 24):
        add(log, i, note='é\n"q"', ratio=0.25)
    event_lines, ckpt_lines = log.export("release")
    assert len(event_lines) == 23 and len(ckpt_lines) == 2
    events = [json.loads(x) for x in event_lines]
    for line, ev in zip(event_lines, events, strict=True):
        assert line.encode() == rfc8785.dumps(ev)  # canonical lines
    refs = [e["signature"] for e in events]
    assert refs[0] == refs[9] == {"checkpoint": 10, "keyId": "audit-key"}
    assert refs[10] == refs[19] == {"checkpoint": 20, "keyId": "audit-key"}
    assert refs[20:] == [None, None, None]
    assert verify_export(event_lines, ckpt_lines, signer.public_key_pem()).ok


def test_write_export_files(signer: LocalSigner, tmp_path: Any) -> None:
    log = make_log(signer, every_n=5)
    for i in range(1, 8):
        add(log, i)
    ev_path, ck_path = log.write_export("release", tmp_path)
    assert ev_path.name == "release.events.jsonl" and ck_path.name == "release.checkpoints.jsonl"
    assert len(ev_path.read_text().splitlines()) == 7
    with ev_path.open() as ev, ck_path.open() as ck:
        assert verify_export(ev, ck, signer.public_key_pem()).ok


def test_inclusion_and_consistency_proofs(signer: LocalSigner) -> None:
    log = make_log(signer, every_n=7)
    for i in range(1, 30):
        add(log, i)
    pem = signer.public_key_pem()
    for seq in (1, 7, 13, 28):
        proof = log.inclusion_proof("release", seq)
        assert proof.tree_size == 28
        assert proof.verify(pem)
        assert not proof.verify(LocalSigner.generate().public_key_pem())
        assert proof.to_dict()["leafIndex"] == seq - 1
    p7 = log.inclusion_proof("release", 3, checkpoint_seq=7)
    assert p7.tree_size == 7 and p7.verify(pem)
    forged = type(p7)(p7.chain, p7.seq, "0" * 64, p7.tree_size, p7.path, p7.checkpoint)
    assert not forged.verify(pem)
    with pytest.raises(LookupError):
        log.inclusion_proof("release", 29)  # not covered yet
    for old, new in ((7, 28), (14, 21), (7, 7)):
        cp = log.consistency_proof("release", old, new)
        assert cp.verify(pem), (old, new)
    cp = log.consistency_proof("release", 7, 21)
    assert cp.path
    tampered = type(cp)(
        cp.chain, cp.old_size, cp.new_size, ("0" * 64, *cp.path[1:]), cp.old_checkpoint, cp.new_checkpoint
    )
    assert not tampered.verify(pem)
    with pytest.raises(LookupError):
        log.consistency_proof("release", 8, 21)


def test_checkpoint_race_is_resolved(signer: LocalSigner) -> None:
    store = InMemoryAuditStore()
    a = AuditLog(store, signer, CheckpointPolicy(1000, math.inf), FakeClock())
    b = AuditLog(store, signer, CheckpointPolicy(1000, math.inf), FakeClock())
    for i in range(1, 6):
        add(a, i)
    assert store.latest_checkpoint("release") is None
    assert a.checkpoint_now("release") is not None
    # b lost the race: its conditional put, expecting no checkpoint yet, is refused...
    with pytest.raises(CheckpointConflict):
        store.put_checkpoint(CheckpointRecord({"chain": "release", "seq": 5}, ()), None)
    # ...and its next attempt re-reads and finds nothing left to cover
    assert b.checkpoint_now("release") is None


def _threads(log: AuditLog, n_threads: int, per_thread: int) -> Iterator[threading.Thread]:
    def work(t: int) -> None:
        for i in range(per_thread):
            log.append(
                "scoring", f"t{t}-{i}", TS, "BatchScored", f"worker-{t}", f"batch-{i}", {"t": t, "i": i}
            )

    for t in range(n_threads):
        yield threading.Thread(target=work, args=(t,))


class CountingStore(InMemoryAuditStore):
    def __init__(self) -> None:
        super().__init__()
        self.lost = 0

    def append(self, event: AuditEvent) -> AuditEvent:
        try:
            return super().append(event)
        except HeadMoved:
            self.lost += 1  # (+= under the GIL from several threads: a lower bound is enough)
            raise


def test_three_threads_one_chain_no_gap_no_fork(signer: LocalSigner) -> None:
    store = CountingStore()
    log = AuditLog(store, signer, CheckpointPolicy(250, math.inf), FakeClock())
    threads = list(_threads(log, 3, 1000))
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often: races between head() and append() happen
    try:
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    finally:
        sys.setswitchinterval(old)
    assert store.lost > 0, "the test never raced"
    events = list(store.events("scoring"))
    assert [e.seq for e in events] == list(range(1, 3001))
    assert len({e.id for e in events}) == 3000
    assert events[0].prevHash == GENESIS
    assert all(b.prevHash == a.hash for a, b in itertools.pairwise(events))
    log.checkpoint_now("scoring")
    event_lines, ckpt_lines = log.export("scoring")
    report = verify_export(event_lines, ckpt_lines, signer.public_key_pem())
    assert report.ok, report.reason
    assert report.events == 3000 and report.chains["scoring"].head_seq == 3000
