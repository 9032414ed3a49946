"""Offline proof documents (`hallmark audit prove`): inclusion against a named checkpoint,
consistency between checkpoints, forked logs, key sets; and `hallmark audit verify` with
several `--key` flags (issue 18, items 1 and 6)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hallmark.audit.checkpoints import CheckpointPolicy, build_checkpoint
from hallmark.audit.log import AuditLog
from hallmark.audit.merkle import merkle_root
from hallmark.audit.proofs import check_proof_document
from hallmark_tools.cli import app
from tests.fakes.audit import InMemoryAuditStore
from tests.fakes.signing import LocalSigner

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def _log(signer: LocalSigner, actors: list[str]) -> AuditLog:
    log = AuditLog(InMemoryAuditStore(), signer, CheckpointPolicy(1000, math.inf), lambda: T0)
    for i, actor in enumerate(actors, 1):
        log.append("release", f"e{i}", T0, "PackageSubmitted", actor, f"pkg-{i}", {"i": i})
        if i in (3, 5, 8, 13):
            log.checkpoint_now("release")
    return log


@pytest.fixture(scope="module")
def signer() -> LocalSigner:
    return LocalSigner.generate(key_id="audit-key")


@pytest.fixture(scope="module")
def log(signer: LocalSigner) -> AuditLog:
    return _log(signer, [f"a{i}" for i in range(1, 14)])


def _keys(*signers: LocalSigner) -> dict[str, bytes]:
    return {f"k{i}": s.public_key_pem() for i, s in enumerate(signers)}


def test_inclusion_against_every_named_checkpoint(log: AuditLog, signer: LocalSigner) -> None:
    for ckpt in (3, 5, 8, 13):
        for seq in range(1, ckpt + 1):
            doc = log.inclusion_proof("release", seq, ckpt).to_dict()
            assert doc["checkpoint"]["seq"] == ckpt == doc["treeSize"]
            result = check_proof_document(doc, _keys(signer))
            assert result.ok, (seq, ckpt, result.reason)
            assert result.verified_by == {ckpt: "k0"}
    with pytest.raises(LookupError):
        log.inclusion_proof("release", 4, 3)
    with pytest.raises(LookupError):
        log.inclusion_proof("release", 1, 4)  # no checkpoint at 4


def test_inclusion_tampering_is_refused(log: AuditLog, signer: LocalSigner) -> None:
    doc = log.inclusion_proof("release", 2, 8).to_dict()
    keys = _keys(signer)
    cases: dict[str, tuple[dict[str, Any], str]] = {
        "eventHash": ({**doc, "eventHash": "0" * 64}, "audit path does not lead"),
        "path": ({**doc, "path": ["0" * 64, *doc["path"][1:]]}, "audit path does not lead"),
        "seq": ({**doc, "seq": 3, "leafIndex": 2}, "audit path does not lead"),
        "leafIndex": ({**doc, "leafIndex": 5}, "leafIndex 5 is not seq - 1"),
        "treeSize": ({**doc, "treeSize": 13}, "treeSize 13 differs"),
        "root": ({**doc, "checkpoint": {**doc["checkpoint"], "merkleRoot": "1" * 64}}, "signature does not verify"),
        "chain": ({**doc, "chain": "market"}, "proof is for chain 'market'"),
    }
    for field, (bad, reason) in cases.items():
        result = check_proof_document(bad, keys)
        assert not result.ok and reason in str(result.reason), (field, result.reason)


def test_consistency_between_every_pair_of_checkpoints(log: AuditLog, signer: LocalSigner) -> None:
    sizes = (3, 5, 8, 13)
    for i, old in enumerate(sizes):
        for new in sizes[i:]:
            doc = log.consistency_proof("release", old, new).to_dict()
            result = check_proof_document({"chain": "release", "proof": doc}, _keys(signer))
            assert result.ok and not result.fork, (old, new, result.reason)
    doc = log.consistency_proof("release", 3, 13).to_dict()
    flipped = {**doc, "path": [doc["path"][0][:-1] + ("0" if doc["path"][0][-1] != "0" else "1"), *doc["path"][1:]]}
    assert not check_proof_document(flipped, _keys(signer)).ok
    assert not check_proof_document({**doc, "path": doc["path"][:-1]}, _keys(signer)).ok


def test_fork_same_size_different_root_is_detected(log: AuditLog, signer: LocalSigner) -> None:
    """The log's key signs a second checkpoint of size 8 over a different history."""
    honest = log.store.get_checkpoint("release", 8)
    assert honest is not None
    forked_log = _log(signer, ["a1", "a2", "a3", "a4", "a5", "a6", "EVIL", "a8"])
    forked = forked_log.store.get_checkpoint("release", 8)
    assert forked is not None and forked["merkleRoot"] != honest["merkleRoot"]
    doc = {"chain": "release", "oldSize": 8, "newSize": 8, "path": [], "oldCheckpoint": honest, "newCheckpoint": forked}
    result = check_proof_document(doc, _keys(signer))
    assert not result.ok and result.fork and "different roots" in str(result.reason)
    # an inclusion proof against the forked checkpoint is valid on its own, but not against a known one
    incl = forked_log.inclusion_proof("release", 7, 8).to_dict()
    assert check_proof_document(incl, _keys(signer)).ok
    result = check_proof_document(incl, _keys(signer), known=[honest])
    assert not result.ok and result.fork and "against a known checkpoint" in str(result.reason)


def test_fork_later_root_not_extending_is_detected(log: AuditLog, signer: LocalSigner) -> None:
    """A validly signed checkpoint 13 whose tree does not extend the honest checkpoint 5."""
    honest5 = log.store.get_checkpoint("release", 5)
    forked_log = _log(signer, ["a1", "a2", "a3", "EVIL", *[f"a{i}" for i in range(5, 14)]])
    forked_proof = forked_log.consistency_proof("release", 5, 13).to_dict()
    assert check_proof_document(forked_proof, _keys(signer)).ok  # self-consistent fork
    spliced = {**forked_proof, "oldCheckpoint": honest5}
    result = check_proof_document(spliced, _keys(signer))
    assert not result.ok and result.fork and "does not extend" in str(result.reason)


def test_key_sets(log: AuditLog, signer: LocalSigner) -> None:
    other = LocalSigner.generate(key_id="other")
    doc = log.consistency_proof("release", 5, 13).to_dict()
    only_wrong = check_proof_document(doc, _keys(other))
    assert not only_wrong.ok and "signature does not verify with the key k0" in str(only_wrong.reason)
    either = check_proof_document(doc, {"old.pem": other.public_key_pem(), "audit.pem": signer.public_key_pem()})
    assert either.ok and either.verified_by == {5: "audit.pem", 13: "audit.pem"}


def test_checkpoint_signed_by_another_key_is_refused(log: AuditLog, signer: LocalSigner) -> None:
    mallory = LocalSigner.generate(key_id="audit-key")
    ck = log.store.get_checkpoint("release", 13)
    assert ck is not None
    forged = build_checkpoint(chain="release", seq=13, ts=ck["ts"], head_hash=ck["headHash"],
                              merkle_root=merkle_root([b"\x00" * 32]).hex(),
                              prev_checkpoint_hash=ck["prevCheckpointHash"], signer=mallory)
    doc = {**log.consistency_proof("release", 13, 13).to_dict(), "newCheckpoint": forged}
    result = check_proof_document(doc, _keys(signer))
    assert not result.ok and not result.fork and "new checkpoint (seq 13): signature does not verify" in str(result.reason)


# -- the CLI -------------------------------------------------------------------------------

def _write(tmp: Path, name: str, data: Any) -> Path:
    p = tmp / name
    p.write_bytes(data if isinstance(data, bytes) else json.dumps(data).encode())
    return p


def test_cli_prove(tmp_path: Path, log: AuditLog, signer: LocalSigner) -> None:
    runner = CliRunner()
    key = _write(tmp_path, "audit.pem", signer.public_key_pem())
    wrong = _write(tmp_path, "wrong.pem", LocalSigner.generate().public_key_pem())
    incl = _write(tmp_path, "incl.json", {"chain": "release", "proof": log.inclusion_proof("release", 4, 5).to_dict()})
    cons = _write(tmp_path, "cons.json", {"chain": "release", "proof": log.consistency_proof("release", 3, 13).to_dict()})
    for f in (incl, cons):
        r = runner.invoke(app, ["audit", "prove", str(f), "--key", str(key)])
        assert r.exit_code == 0 and "OK" in r.output, r.output
    r = runner.invoke(app, ["audit", "prove", str(cons), "--key", str(wrong)])
    assert r.exit_code == 2 and "signature does not verify" in r.output
    r = runner.invoke(app, ["audit", "prove", str(cons), "--key", str(wrong), "--key", str(key)])
    assert r.exit_code == 0 and str(key) in r.output
    forked = _log(signer, ["a1", "a2", "a3", "EVIL", "a5"]).store.get_checkpoint("release", 5)
    known = _write(tmp_path, "known.json", forked)
    r = runner.invoke(app, ["audit", "prove", str(incl), "--key", str(key), "--known", str(known)])
    assert r.exit_code == 3 and "FORK" in r.output and "different roots" in r.output, r.output


def test_cli_verify_with_a_key_set(tmp_path: Path, log: AuditLog, signer: LocalSigner) -> None:
    """Before: several --key flags silently used the last one and reported a false FAILED."""
    runner = CliRunner()
    events, ckpts = log.write_export("release", tmp_path)
    key = _write(tmp_path, "audit.pem", signer.public_key_pem())
    wrong = _write(tmp_path, "wrong.pem", LocalSigner.generate().public_key_pem())
    r = runner.invoke(app, ["audit", "verify", str(events), "--checkpoints", str(ckpts),
                            "--key", str(key), "--key", str(wrong)])
    assert r.exit_code == 0 and f"with key {key}" in r.output, r.output
    r = runner.invoke(app, ["audit", "verify", str(events), "--checkpoints", str(ckpts), "--key", str(wrong)])
    assert r.exit_code == 2 and "FAILED" in r.output
    r = runner.invoke(app, ["audit", "verify", str(events), "--checkpoints", str(ckpts),
                            "--key", str(wrong), "--key", str(wrong)])
    assert r.exit_code != 0 and "given twice" in r.output
