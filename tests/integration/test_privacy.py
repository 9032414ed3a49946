"""Issue 22 item 3 on the local cloud: a silver package witnessed by three witnesses and bought
by a buyer (the fixture of test_bundle_provenance). No chain names the buyer or a witness in the
clear, every chain replays, and the buyer's bundle still verifies (its pseudonym table pairs the
signed records with the events)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hallmark.audit.replay import verify_export
from hallmark.bundle import verify_bundle
from hallmark.governance.messages import sign_approval
from hallmark.privacy.vault import PSEUDONYM_RE
from hallmark_tools.driver import Approvers, Driver
from hallmark_tools.localcloud.cloud import LocalCloud
from tests.integration.test_bundle_provenance import SUFFIX, bought, keys  # noqa: F401 (fixtures)

CHAINS = ("release", "governance", "ceremony", "market")
PEOPLE = (f"bundle-buyer-{SUFFIX}", *(f"bw{i}-{SUFFIX}" for i in range(3)))


def test_no_chain_names_the_buyer_or_a_witness(shared_cloud: LocalCloud, driver: Driver,
                                               bought: dict[str, Any],  # noqa: F811
                                               keys: tuple[Path, dict[str, bytes]]) -> None:  # noqa: F811
    from hallmark.adapters.runtime import audit_log

    pem = keys[1]["audit"]
    for chain in CHAINS:
        events, ckpts = audit_log().export(chain)
        text = "\n".join(events + ckpts)
        assert not [p for p in PEOPLE if p in text], chain
        assert verify_export(events, ckpts, pem).ok, chain
    bundle = bought["bundle"]
    names = bundle["pseudonyms"]
    assert set(PEOPLE) <= set(names.values()) and all(PSEUDONYM_RE.fullmatch(p) for p in names)
    assert [c for c in verify_bundle(bundle, keys[1], bought["body"], ciphertext=bought["ciphertext"]) if not c.ok] == []


def _state_text(cloud: LocalCloud) -> str:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": cloud.resources["TABLE_STATE"], "ConsistentRead": True}
    while True:
        page = cloud.client("dynamodb").scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return json.dumps(items, default=str)
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _erase(driver: Driver, approvers: Approvers, who: str) -> dict[str, Any]:
    opened = driver.call("POST", "/privacy/erasure", "superadmin", {"subjectId": who})
    assert opened.status == 201, opened.body
    view = opened.json()
    assert who not in json.dumps(view) and view["approval"]["threshold"] == 3
    early = driver.call("POST", f"/privacy/erasure/{view['erasureId']}/execute", "superadmin")
    assert early.status == 409 and early.json()["error"]["code"] == "not_approved"
    expires = datetime.now(UTC) + timedelta(minutes=5)
    for a in list(approvers.keys)[:3]:
        form = sign_approval(approvers.keys[a], approver_id=a, subject_id=view["erasureId"], digest=view["digest"],
                             decision="approve", expires_at=expires, kind="settlement")
        resp = driver.call("POST", f"/privacy/erasure/{view['erasureId']}/approvals", body=form,
                           token=approvers.token(a))
        assert resp.status == 201, resp.body
    done = driver.call("POST", f"/privacy/erasure/{view['erasureId']}/execute", "superadmin")
    assert done.status == 200 and done.json()["status"] == "Erased", done.body
    again = driver.call("POST", f"/privacy/erasure/{view['erasureId']}/execute", "superadmin")
    assert again.status == 409 and again.json()["error"]["code"] == "already_erased"
    return dict(done.json())


def test_erasing_the_buyer_and_a_witness_keeps_every_chain_and_bundle_verifiable(
        shared_cloud: LocalCloud, driver: Driver, bought: dict[str, Any],  # noqa: F811
        keys: tuple[Path, dict[str, bytes]]) -> None:  # noqa: F811
    from hallmark.adapters.runtime import audit_log

    buyer, witness = PEOPLE[0], PEOPLE[1]
    assert buyer in _state_text(shared_cloud)  # before: the order, the wallet, the proofs name the buyer
    assert driver.call("POST", "/privacy/erasure", "auditor", {"subjectId": buyer}).status == 403
    assert driver.call("POST", "/privacy/erasure", "superadmin", {"subjectId": f"nobody-{SUFFIX}"}).status == 404
    approvers = Approvers(driver, prefix=f"era-{SUFFIX}")
    before = {c: [e.hash for e in audit_log().store.events(c)] for c in CHAINS}
    erased = [_erase(driver, approvers, who) for who in (buyer, witness)]
    shared_cloud.wait_idle(timeout=30)
    for chain in (*CHAINS, "governance"):
        audit_log().checkpoint_now(chain)
    pem = keys[1]["audit"]
    for chain in CHAINS:  # replay every chain: the independent verifier passes
        events, ckpts = audit_log().export(chain)
        assert verify_export(events, ckpts, pem).ok, chain
        hashes = [json.loads(line)["hash"] for line in events]
        assert hashes[:len(before[chain])] == before[chain], f"{chain}: an event changed"
        text = "\n".join(events + ckpts)
        assert buyer not in text and witness not in text, chain
    gone = [e for e in audit_log().store.events("governance") if e.type == "SubjectErased"]
    assert sorted(e.subject for e in gone) == sorted(e["pseudonym"] for e in erased)
    assert not [e for e in gone if buyer in json.dumps(e.to_wire()) or witness in json.dumps(e.to_wire())]
    # the buyer's data is unrecoverable from the state table (order, wallet, proofs, link, key)
    assert buyer not in _state_text(shared_cloud)
    # a bundle issued before the erasure still verifies with the public keys
    assert [c for c in verify_bundle(bought["bundle"], keys[1], bought["body"], ciphertext=bought["ciphertext"])
            if not c.ok] == []
    # the erased buyer no longer reads the order (it names a pseudonym linked to nobody)
    assert driver.call("GET", f"/orders/{bought['order']}", token=bought["token"]).status in (403, 404)
