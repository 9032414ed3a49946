"""The auditor API on the local cloud (issue 3, item 5): events, checkpoints, inclusion proofs and
replay of the stored chain or an uploaded export, all checked with the audit public key alone;
bad paths get a JSON 4xx and other roles a 403."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from hallmark.audit.checkpoints import verify_checkpoint_signature
from hallmark.audit.log import InclusionProof
from hallmark_tools import samples
from hallmark_tools.driver import Driver
from hallmark_tools.export import export_keys
from hallmark_tools.localcloud.cloud import LocalCloud


@pytest.fixture(scope="module")
def released(shared_cloud: LocalCloud, driver: Driver, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """One published package, its events checkpointed; returns the audit public key (PEM)."""
    from hallmark.adapters.runtime import audit_log

    pid = driver.submit(samples.clean_package("audit-api"), name="audit-api")
    assert driver.wait_package(pid, timeout=60)["status"] == "Published"
    shared_cloud.wait_idle(timeout=30)
    audit_log().checkpoint_now("release")
    keys = export_keys(tmp_path_factory.mktemp("keys"), shared_cloud.client("kms"))
    return keys["audit"].read_bytes()


def _get(driver: Driver, path: str) -> Any:
    return driver.ok("GET", path, "auditor")


def test_events_pages_cover_the_chain_in_order(driver: Driver, released: bytes) -> None:
    first = _get(driver, "/audit/release/events?limit=3")
    assert len(first["events"]) == 3 and first["next"] == 3 and first["total"] >= 8
    rest = _get(driver, f"/audit/release/events?after={first['next']}&limit=1000")
    events = [json.loads(e) if isinstance(e, str) else e for e in first["events"] + rest["events"]]
    assert [e["seq"] for e in events] == list(range(1, first["total"] + 1))
    assert all(b["prevHash"] == a["hash"] for a, b in pairwise(events))


def test_latest_checkpoint_verifies_with_the_public_key(driver: Driver, released: bytes) -> None:
    latest = _get(driver, "/audit/release/checkpoints/latest")["checkpoint"]
    total = _get(driver, "/audit/release/events?limit=1")["total"]
    assert latest["seq"] == total
    assert verify_checkpoint_signature(latest, released)
    assert not verify_checkpoint_signature({**latest, "seq": latest["seq"] - 1}, released)
    listed = _get(driver, "/audit/release/checkpoints")["checkpoints"]
    assert listed[-1] == latest


def test_inclusion_proof_of_every_event_verifies(driver: Driver, released: bytes) -> None:
    total = _get(driver, "/audit/release/events?limit=1")["total"]
    for seq in range(1, total + 1):
        body = _get(driver, f"/audit/release/proof/{seq}")["proof"]
        proof = InclusionProof(chain=body["chain"], seq=body["seq"], event_hash=body["eventHash"],
                               tree_size=body["treeSize"], path=tuple(body["path"]), checkpoint=body["checkpoint"])
        assert proof.verify(released), seq
        wrong_leaf = InclusionProof(**{**proof.__dict__, "event_hash": "0" * 64})
        assert not wrong_leaf.verify(released)


def test_replay_of_the_stored_chain_and_of_an_upload(driver: Driver, released: bytes) -> None:
    stored = driver.ok("POST", "/audit/release/replay", "auditor", {})
    assert stored["ok"] and stored["source"] == "stored chain" and stored["firstBadSeq"] is None
    events = [json.dumps(e, separators=(",", ":")) if not isinstance(e, str) else e
              for e in _get(driver, "/audit/release/events?limit=1000")["events"]]
    ckpts = [json.dumps(c, separators=(",", ":"), sort_keys=True)
             for c in _get(driver, "/audit/release/checkpoints")["checkpoints"]]
    upload = {"events": "\n".join(events), "checkpoints": "\n".join(ckpts)}
    good = driver.ok("POST", "/audit/release/replay", "auditor", upload)
    assert good["ok"] and good["source"] == "uploaded export" and good["events"] == len(events)
    tampered = events[:]
    tampered[2] = tampered[2].replace('"actor":"', '"actor":"x', 1)
    bad = driver.ok("POST", "/audit/release/replay", "auditor", {**upload, "events": "\n".join(tampered)})
    assert not bad["ok"] and bad["firstBadSeq"] == 3 and "modified" in bad["reason"]


@pytest.mark.parametrize(("path", "status"), [
    ("/audit/Release!/events", 400),
    ("/audit/release/proof/0", 400),
    ("/audit/release/proof/not-a-number", 400),
    ("/audit/release/proof/999999", 404),
    ("/audit/no-such-chain/checkpoints/latest", 404),
])
def test_bad_paths_get_a_json_error(driver: Driver, released: bytes, path: str, status: int) -> None:
    resp = driver.call("GET", path, "auditor")
    assert resp.status == status, resp.body[:300]
    assert set(resp.json()["error"]) == {"code", "message", "details"}


@pytest.mark.parametrize("role", ["submitter", "buyer"])
def test_other_roles_are_refused(driver: Driver, released: bytes, role: str) -> None:
    assert driver.call("POST", "/audit/release/replay", role, {}).status == 403
    assert driver.call("GET", "/audit/release/events", role).status == 403


def test_keys_in_the_export_are_public_only(released: bytes, tmp_path: Path) -> None:
    assert b"PUBLIC KEY" in released and b"PRIVATE" not in released
