"""Governance on the real release ASL: 3-of-5 approvals resume the waiting execution; forged,
replayed, duplicate, expired, misdirected and impersonated decisions are refused and audited;
an emergency upgrade is kept when ratified and rolled back when not."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from hallmark_tools import samples
from hallmark_tools.driver import Approvers, Driver
from hallmark_tools.localcloud.cloud import LocalCloud

RATIFY_S = 4


@pytest.fixture(scope="module")
def gov_cloud() -> Iterator[LocalCloud]:
    env = {"RATIFICATION_WINDOW_SECONDS": str(RATIFY_S), "APPROVAL_TIMEOUT_SECONDS": "120"}
    with LocalCloud(env=env) as c:
        yield c


@pytest.fixture(scope="module")
def gd(gov_cloud: LocalCloud) -> Driver:
    return Driver(gov_cloud)


@pytest.fixture(scope="module")
def approvers(gd: Driver) -> Approvers:
    return Approvers(gd)


def _awaiting(gd: Driver, name: str, **kw: Any) -> dict[str, Any]:
    pid = gd.submit(samples.clean_package(name), name=name, version="2.0.0", impact="HIGH", **kw)
    return gd.wait_package(pid, ("AwaitingApproval", "Rejected", "Published"))


def _audit_types(cloud: LocalCloud, chain: str) -> list[str]:
    from hallmark.adapters.runtime import audit_log

    cloud.wait_idle()
    return [e.type for e in audit_log().store.events(chain)]


def test_two_approvals_wait_three_apply(gov_cloud: LocalCloud, gd: Driver, approvers: Approvers) -> None:
    doc = _awaiting(gd, "high-one")
    assert doc["status"] == "AwaitingApproval" and doc["listingId"] is None
    up = doc["upgradeId"]
    digest = doc["manifest"]["digest"]
    for a in ("approver-1", "approver-2"):
        resp = approvers.submit(a, up, approvers.form(a, up, digest))
        assert resp.status == 201, resp.body
        assert resp.json()["outcome"] == "waiting"
    time.sleep(1.0)
    still = gd.package(doc["packageId"])
    assert still["status"] == "AwaitingApproval" and still["listingId"] is None
    assert gov_cloud.client("stepfunctions").describe_execution(executionArn=doc["executionArn"])["status"] == "RUNNING"
    resp = approvers.submit("approver-3", up, approvers.form("approver-3", up, digest))
    assert resp.status == 201 and resp.json()["outcome"] == "resume"
    published = gd.wait_package(doc["packageId"])
    assert published["status"] == "Published" and published["listingId"]
    assert gov_cloud.wait_execution(doc["executionArn"])["status"] == "SUCCEEDED"


def test_forgeries_replays_duplicates_and_expired_are_refused(gov_cloud: LocalCloud, gd: Driver,
                                                              approvers: Approvers) -> None:
    doc = _awaiting(gd, "high-two")
    other = _awaiting(gd, "high-three")
    up, digest = doc["upgradeId"], doc["manifest"]["digest"]
    first = approvers.form("approver-1", up, digest)
    assert approvers.submit("approver-1", up, first).status == 201
    cases = {
        # signed with approver-2's key but claiming approver-1... posted by approver-4: forged
        "bad_signature": ("approver-4", approvers.form("approver-4", up, digest, key_of="approver-5")),
        "wrong_subject": ("approver-4", approvers.form("approver-4", other["upgradeId"], other["manifest"]["digest"])),
        "wrong_digest": ("approver-4", approvers.form("approver-4", up, "f" * 64)),
        "expired": ("approver-4", approvers.form("approver-4", up, digest, expires_in_s=-5)),
        "duplicate_approver": ("approver-1", approvers.form("approver-1", up, digest)),
        "approver_mismatch": ("approver-2", approvers.form("approver-4", up, digest)),
    }
    codes = {}
    for name, (poster, form) in cases.items():
        resp = approvers.submit(poster, up, form)
        assert 400 <= resp.status < 500, (name, resp.status, resp.body)
        codes[name] = resp.json()["error"]["code"]
    # a replay: approver-1 signs a fresh decision for another upgrade but reuses its nonce
    replay = approvers.form("approver-1", other["upgradeId"], other["manifest"]["digest"], nonce=first["nonce"])
    for name, (poster, form) in {"nonce_reused": ("approver-1", replay)}.items():
        resp = approvers.submit(poster, other["upgradeId"], form)
        assert 400 <= resp.status < 500, (name, resp.status, resp.body)
        codes[name] = resp.json()["error"]["code"]
    assert codes["bad_signature"] == "bad_signature"
    assert codes["wrong_subject"] == "wrong_subject" and codes["wrong_digest"] == "wrong_subject"
    assert codes["expired"] == "expired"
    assert codes["duplicate_approver"] == "duplicate_approver"
    assert codes["approver_mismatch"] == "approver_mismatch"
    assert codes["nonce_reused"] == "nonce_reused"
    assert gd.ok("GET", f"/upgrades/{other['upgradeId']}", "superadmin")["approvalCount"] == 0
    unknown = approvers.driver.call("POST", f"/upgrades/{up}/approvals", body=approvers.form("approver-1", up, digest),
                                    token=gov_cloud.token("approver", "nobody"))
    assert unknown.status in (403, 400)
    state = gd.ok("GET", f"/upgrades/{up}", "superadmin")
    assert state["approvalCount"] == 1 and state["status"] == "Pending"
    assert gd.package(doc["packageId"])["status"] == "AwaitingApproval"
    assert _audit_types(gov_cloud, "governance").count("ApprovalRefused") >= len(cases) + 1


def test_rejections_that_make_three_impossible_end_rejected(gov_cloud: LocalCloud, gd: Driver,
                                                            approvers: Approvers) -> None:
    doc = _awaiting(gd, "high-four")
    up, digest = doc["upgradeId"], doc["manifest"]["digest"]
    outcomes = [approvers.submit(a, up, approvers.form(a, up, digest, decision="reject")).json()["outcome"]
                for a in ("approver-1", "approver-2", "approver-3")]
    assert outcomes[-1] == "reject"
    final = gd.wait_package(doc["packageId"])
    assert final["status"] == "Rejected" and final["listingId"] is None
    execution = gov_cloud.wait_execution(doc["executionArn"])
    assert execution["status"] == "FAILED" and execution["error"] == "Rejected"


def _emergency(gd: Driver, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    base = gd.wait_package(gd.submit(samples.clean_package(name), name=name, version="1.0.0"))
    assert base["status"] == "Published"
    pid = gd.submit(samples.clean_package(name), name=name, version="1.0.1", impact="CRITICAL", emergency=True,
                    role="superadmin")
    return base, gd.wait_package(pid, ("Published",))


def test_emergency_without_ratification_is_rolled_back(gov_cloud: LocalCloud, gd: Driver) -> None:
    base, doc = _emergency(gd, "hotfix-a")
    assert doc["status"] == "Published"  # applied at once
    rolled = gd.wait_package(doc["packageId"], ("RolledBack",), timeout=RATIFY_S + 60)
    assert rolled["restored"]["packageId"] == base["packageId"]
    assert gov_cloud.wait_execution(doc["executionArn"])["status"] == "SUCCEEDED"
    types = _audit_types(gov_cloud, "governance")
    assert "UpgradeApplied" in types and "UpgradeRolledBack" in types


def test_emergency_with_three_ratifications_is_kept(gov_cloud: LocalCloud, gd: Driver, approvers: Approvers) -> None:
    _, doc = _emergency(gd, "hotfix-b")
    up, digest = f"up-{doc['packageId']}", doc["manifest"]["digest"]
    for a in ("approver-1", "approver-2", "approver-3"):
        resp = approvers.submit(a, up, approvers.form(a, up, digest, decision="ratify"), "ratifications")
        assert resp.status == 201, resp.body
    execution = gov_cloud.wait_execution(doc["executionArn"], timeout=RATIFY_S + 60)
    assert execution["status"] == "SUCCEEDED"
    assert gd.package(doc["packageId"])["status"] == "Published"
    assert gd.ok("GET", f"/upgrades/{up}", "superadmin")["status"] == "Ratified"
