"""Issue 17, "Release policy" and "Approvals", on the local cloud through the HTTP API and the
real release ASL: names owned and delegated, immutable name@version, governed rollbacks, the
effective impact (routing reads it), too few approvers, capped and audited approvals, and the
impact policy changed only through 3-of-5.

The tests run in file order on one cloud: the first ones need fewer than three approvers
registered; the ``approvers`` fixture registers five for the rest."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from hallmark_tools import samples
from hallmark_tools.driver import Approvers, Driver
from hallmark_tools.localcloud.cloud import LocalCloud

RATIFY_S = 3


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(env={"RATIFICATION_WINDOW_SECONDS": str(RATIFY_S), "APPROVAL_TIMEOUT_SECONDS": "300"}) as c:
        yield c


@pytest.fixture(scope="module")
def d(cloud: LocalCloud) -> Driver:
    return Driver(cloud)


@pytest.fixture(scope="module")
def mallory(cloud: LocalCloud) -> str:
    return cloud.token("submitter", "mallory")


def _audit(cloud: LocalCloud, chain: str) -> list[Any]:
    from hallmark.adapters.runtime import audit_log

    cloud.wait_idle()
    return list(audit_log().store.events(chain))


def _post(d: Driver, req: dict[str, Any], *, role: str = "submitter", token: str | None = None) -> Any:
    return d.call("POST", "/packages", role if token is None else None, req, token=token)


def _submit(d: Driver, body: bytes, name: str, version: str, *, token: str | None = None,
            role: str = "submitter", **over: Any) -> str:
    req = {**samples.submission(name, version, body), **over}
    resp = _post(d, req, role=role, token=token)
    assert resp.status == 201, resp.body
    put = requests.put(resp.json()["uploadUrl"], data=body, timeout=30)
    assert put.status_code < 300, put.text[:200]
    return str(resp.json()["packageId"])


def _error(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status == status, (resp.status, resp.body[:400])
    err: dict[str, Any] = resp.json()["error"]
    assert err["code"] == code and err["message"], err
    return err


def _ai_package(name: str) -> bytes:
    files = samples.clean_files(name)
    module = name.replace("-", "_")
    files[f"src/{module}/__init__.py"] = b"# Generated with Claude Code\n" + files[f"src/{module}/__init__.py"]
    files["README.md"] = b"# x\n\nThis package was AI-generated.\n"
    files["requirements.txt"] = b"# Generated with Claude Code\n" + files["requirements.txt"]
    return samples.tar_gz(files)


# ----------------------------------------------------------------------------- fewer than 3 approvers


def test_high_release_with_too_few_approvers_is_refused_at_submit(cloud: LocalCloud, d: Driver) -> None:
    body = samples.clean_package("few-approvers")
    resp = _post(d, samples.submission("few-approvers", "1.0.0", body, impact="HIGH"))
    err = _error(resp, 409, "approvers_insufficient")
    assert err["details"] == {"impact": "HIGH", "threshold": 3, "registeredApprovers": 0}
    assert "approvers are registered" in err["message"]
    assert d.call("GET", "/names/few-approvers", "submitter").status == 404, "nothing stored, not even the claim"
    # the declared impact LOW does not dodge it: a production target makes it HIGH
    low = _post(d, {**samples.submission("few-approvers", "1.0.0", body), "target": "prod:eu"})
    _error(low, 409, "approvers_insufficient")


def test_a_release_that_becomes_high_after_validation_is_rejected_with_the_reason(cloud: LocalCloud,
                                                                                  d: Driver) -> None:
    pid = _submit(d, _ai_package("ai-heavy"), "ai-heavy", "1.0.0")
    doc = d.wait_package(pid)
    assert doc["status"] == "Rejected", doc
    assert doc["impact"] == "HIGH" and doc["declaredImpact"] == "LOW"
    assert any(r.startswith("policy:") and "approvers are registered" in r for r in doc["reasons"]), doc["reasons"]
    assert "aiShare" in [r["rule"] for r in doc["policy"]["rules"]]
    rejected = [e for e in _audit(cloud, "release") if e.type == "PackageRejected" and e.subject == pid]
    assert len(rejected) == 1


# ----------------------------------------------------------------------------- names


@pytest.fixture(scope="module")
def approvers(d: Driver) -> Approvers:
    return Approvers(d)


def test_another_submitter_cannot_release_under_an_owned_name(cloud: LocalCloud, d: Driver, mallory: str,
                                                              approvers: Approvers) -> None:
    body = samples.clean_package("owned-pkg")
    base = d.wait_package(_submit(d, body, "owned-pkg", "1.2.0"))
    assert base["status"] == "Published" and base["authority"] == "claim"
    name = d.ok("GET", "/names/owned-pkg", "auditor")
    assert name["owner"] == "sam-submitter" and list(name["releases"]) == ["1.2.0"]
    for version in ("1.3.0", "0.0.1"):  # a higher and a lower version: both refused
        err = _error(_post(d, samples.submission("owned-pkg", version, body), token=mallory), 403, "name_owned")
        assert err["details"]["owner"] == "sam-submitter"
    assert list(d.ok("GET", "/names/owned-pkg", "auditor")["releases"]) == ["1.2.0"], "nothing stored"
    # the owner cannot republish or go lower either
    _error(_post(d, samples.submission("owned-pkg", "1.2.0", body)), 409, "version_exists")
    _error(_post(d, samples.submission("owned-pkg", "1.1.9", body)), 409, "version_lower")
    # the namespace is the owner's too
    _error(_post(d, samples.submission("owned-pkg-evil", "9.0.0", body), token=mallory), 403, "name_owned")
    assert "NameClaimed" in [e.type for e in _audit(cloud, "release")]


def test_racing_claims_of_a_new_name_have_exactly_one_winner(cloud: LocalCloud, d: Driver,
                                                              approvers: Approvers) -> None:
    """Eight submitters claim one new name at once through the real DynamoDB adapter (the
    conditional write); the handlers' shared resolver makes in-process HTTP calls unfit for
    this (a Lambda invocation is isolated in AWS), so the domain is called directly here and
    the forced interleaving is pinned by the unit test with a racing store."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from hallmark.adapters import runtime
    from hallmark.errors import DomainError
    from hallmark.release.service import ReleaseService, SubmitRequest

    body = samples.clean_package("raced-pkg")
    req = SubmitRequest.model_validate(samples.submission("raced-pkg", "1.0.0", body))
    start = threading.Barrier(8)

    def claim(i: int) -> str:
        service = ReleaseService(runtime.docs(), runtime.audit(), governance=runtime.governance())
        start.wait()
        try:
            service.submit(req, f"racer-{i}", frozenset({"submitter"}))
            return "won"
        except DomainError as err:
            return err.code

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(claim, range(8)))
    assert outcomes.count("won") == 1, outcomes
    assert sorted(set(outcomes) - {"won"}) == ["name_owned"], outcomes
    name = d.ok("GET", "/names/raced-pkg", "auditor")
    assert name["owner"] == f"racer-{outcomes.index('won')}" and list(name["releases"]) == ["1.0.0"]
    claims = [e for e in _audit(cloud, "release") if e.type == "NameClaimed" and e.data["name"] == "raced-pkg"]
    assert len(claims) == 1


def test_delegations_through_the_api_are_recorded_and_audited(cloud: LocalCloud, d: Driver, mallory: str,
                                                              approvers: Approvers) -> None:
    body = samples.clean_package("deleg-pkg")
    d.wait_package(_submit(d, body, "deleg-pkg", "1.0.0"))
    # mallory cannot delegate to herself
    resp = d.call("POST", "/names/deleg-pkg/delegations", body={"delegate": "mallory", "prefix": True}, token=mallory)
    _error(resp, 403, "not_owner")
    granted = d.call("POST", "/names/deleg-pkg/delegations", "submitter", {"delegate": "mallory", "prefix": True})
    assert granted.status == 201, granted.body
    assert granted.json()["delegations"][0]["delegate"] == "mallory"
    assert d.wait_package(_submit(d, body, "deleg-pkg", "1.1.0", token=mallory))["status"] == "Published"
    sub = d.wait_package(_submit(d, body, "deleg-pkg.plugin", "1.0.0", token=mallory))
    assert sub["authority"] == "prefix:deleg-pkg"
    assert d.ok("GET", "/names/deleg-pkg.plugin", "auditor")["owner"] == "sam-submitter"
    assert d.call("DELETE", "/names/deleg-pkg/delegations/mallory", "submitter").status == 200
    _error(_post(d, samples.submission("deleg-pkg", "1.2.0", body), token=mallory), 403, "name_owned")
    _error(d.call("DELETE", "/names/deleg-pkg/delegations/mallory", "submitter"), 404, "not_found")
    types = [e.type for e in _audit(cloud, "release") if e.subject == "deleg-pkg"]
    assert "NameDelegated" in types and "DelegationRevoked" in types


def test_a_superadmin_assigns_a_name(cloud: LocalCloud, d: Driver, mallory: str, approvers: Approvers) -> None:
    body = samples.clean_package("assigned-pkg")
    _error(d.call("PUT", "/names/assigned-pkg/owner", "submitter", {"owner": "sam-submitter"}), 403, "forbidden")
    assert d.call("PUT", "/names/assigned-pkg/owner", "superadmin", {"owner": "mallory"}).status == 200
    _error(_post(d, samples.submission("assigned-pkg", "1.0.0", body)), 403, "name_owned")
    assert _post(d, samples.submission("assigned-pkg", "1.0.0", body), token=mallory).status == 201
    assert "NameOwnerAssigned" in [e.type for e in _audit(cloud, "release")]


# ----------------------------------------------------------------------------- effective impact


def test_declared_low_is_routed_by_the_effective_impact(cloud: LocalCloud, d: Driver, approvers: Approvers) -> None:
    body = samples.clean_package("prod-svc")
    pid = _submit(d, body, "prod-svc", "1.0.0", target="production:payments")
    doc = d.wait_package(pid, ("AwaitingApproval", "Published", "Rejected"))
    assert doc["status"] == "AwaitingApproval", "a LOW declaration does not skip the 3-of-5"
    assert (doc["impact"], doc["declaredImpact"]) == ("HIGH", "LOW")
    upgrade = d.ok("GET", f"/upgrades/{doc['upgradeId']}", "superadmin")
    assert upgrade["impact"] == "HIGH" and upgrade["threshold"] == 3
    up, digest = doc["upgradeId"], doc["manifest"]["digest"]
    # approver-1 approves, then is removed: that approval no longer counts
    assert approvers.submit("approver-1", up, approvers.form("approver-1", up, digest)).status == 201
    assert approvers.submit("approver-2", up, approvers.form("approver-2", up, digest)).status == 201
    assert d.call("DELETE", "/approvers/approver-1", "superadmin").status == 200
    assert d.ok("GET", f"/upgrades/{up}", "superadmin")["approvalCount"] == 1
    third = approvers.submit("approver-3", up, approvers.form("approver-3", up, digest))
    assert third.status == 201 and third.json()["outcome"] == "waiting", third.body
    fourth = approvers.submit("approver-4", up, approvers.form("approver-4", up, digest))
    assert fourth.json()["outcome"] == "resume"
    published = d.wait_package(pid)
    assert published["status"] == "Published"
    statement = _statement(cloud, published)
    assert statement["predicate"]["impact"] == "HIGH" and statement["predicate"]["declaredImpact"] == "LOW"
    assert statement["predicate"]["policy"]["impactPolicyVersion"] == 1
    assert statement["predicate"]["policy"]["rules"] == ["firstRelease", "targets"]


def _statement(cloud: LocalCloud, doc: dict[str, Any]) -> dict[str, Any]:
    import base64
    import json

    ref = doc["manifest"]["repository"]
    envelope = json.loads(cloud.client("s3").get_object(Bucket=ref["bucket"], Key=ref["key"])["Body"].read())
    return dict(json.loads(base64.b64decode(envelope["payload"])))


def test_a_lower_version_only_as_a_governed_rollback(cloud: LocalCloud, d: Driver, approvers: Approvers) -> None:
    body = samples.clean_package("roll-pkg")
    assert d.wait_package(_submit(d, body, "roll-pkg", "2.0.0"))["status"] == "Published"
    _error(_post(d, samples.submission("roll-pkg", "1.9.0", body)), 409, "version_lower")
    pid = _submit(d, body, "roll-pkg", "1.9.0", rollback=True)
    doc = d.wait_package(pid, ("AwaitingApproval", "Published", "Rejected"))
    assert doc["status"] == "AwaitingApproval" and doc["impact"] == "HIGH"
    up, digest = doc["upgradeId"], doc["manifest"]["digest"]
    for a in ("approver-2", "approver-3", "approver-4"):
        assert approvers.submit(a, up, approvers.form(a, up, digest)).status == 201
    done = d.wait_package(pid)
    assert done["status"] == "Published"
    assert _statement(cloud, done)["predicate"]["policy"]["rollback"] is True


def test_an_emergency_package_shows_its_upgrade_id(cloud: LocalCloud, d: Driver, approvers: Approvers) -> None:
    body = samples.clean_package("hot-pkg")
    assert d.wait_package(_submit(d, body, "hot-pkg", "1.0.0"))["status"] == "Published"
    pid = _submit(d, body, "hot-pkg", "1.0.1", role="superadmin", impact="CRITICAL", emergency=True)
    doc = d.wait_package(pid, ("Published", "RolledBack"))
    assert doc["upgradeId"] == f"up-{pid}"
    assert doc["authority"] == "superadmin"


# ----------------------------------------------------------------------------- approvals


def test_a_millennium_approval_is_refused_and_every_refusal_audited(cloud: LocalCloud, d: Driver,
                                                                    approvers: Approvers) -> None:
    from hallmark.governance.messages import sign_approval

    body = samples.clean_package("cap-pkg")
    doc = d.wait_package(_submit(d, body, "cap-pkg", "1.0.0", impact="HIGH"), ("AwaitingApproval",))
    up, digest = doc["upgradeId"], doc["manifest"]["digest"]
    before = sum(1 for e in _audit(cloud, "governance") if e.type == "ApprovalRefused" and e.subject == up)
    forever = approvers.form("approver-2", up, digest, expires_in_s=1000 * 365 * 24 * 3600)
    _error(approvers.submit("approver-2", up, forever), 422, "expiry_too_far")
    eight_days = approvers.form("approver-2", up, digest, expires_in_s=8 * 24 * 3600)
    _error(approvers.submit("approver-2", up, eight_days), 422, "expiry_too_far")
    _error(approvers.submit("approver-2", up, {"approverId": "approver-2", "decision": "approve"}), 400,
           "invalid_input")
    removed = sign_approval(approvers.keys["approver-1"], approver_id="approver-1", subject_id=up, digest=digest,
                            decision="approve", expires_at=datetime.now(UTC) + timedelta(minutes=5))
    _error(approvers.submit("approver-1", up, removed), 403, "unknown_approver")
    refusals = [e for e in _audit(cloud, "governance") if e.type == "ApprovalRefused" and e.subject == up]
    assert len(refusals) - before == 4
    assert [e.data["code"] for e in refusals[-4:]] == ["expiry_too_far", "expiry_too_far", "invalid_input",
                                                       "unknown_approver"]
    assert all(e.data["reason"] for e in refusals)
    assert d.ok("GET", f"/upgrades/{up}", "superadmin")["approvalCount"] == 0
    # a decision on an upgrade that does not exist is refused and audited too
    ghost = approvers.form("approver-2", "up-ghost", digest)
    _error(approvers.submit("approver-2", "up-ghost", ghost), 404, "not_found")
    assert [e.data["code"] for e in _audit(cloud, "governance")
            if e.type == "ApprovalRefused" and e.subject == "up-ghost"] == ["not_found"]


def test_settlement_approvals_follow_the_same_rules(cloud: LocalCloud, d: Driver, approvers: Approvers) -> None:
    from hallmark.governance.messages import sign_approval

    body = samples.clean_package("settle-pkg")
    listing_id = d.wait_package(_submit(d, body, "settle-pkg", "1.0.0"))["listingId"]
    planned = d.call("POST", "/settlements", "submitter", {
        "listingId": listing_id, "parties": [{"party": "sam-submitter", "bps": 7_000}, {"party": "co", "bps": 3_000}]})
    assert planned.status == 201, planned.body
    sid, digest = planned.json()["settlementId"], planned.json()["planDigest"]

    def form(a: str, seconds: int) -> dict[str, Any]:
        return sign_approval(approvers.keys[a], approver_id=a, subject_id=sid, digest=digest, decision="approve",
                             expires_at=datetime.now(UTC) + timedelta(seconds=seconds), kind="settlement")

    def post(a: str, f: dict[str, Any]) -> Any:
        return d.call("POST", f"/settlements/{sid}/approvals", body=f, token=approvers.token(a))

    _error(post("approver-2", form("approver-2", 1000 * 365 * 24 * 3600)), 422, "expiry_too_far")
    _error(post("approver-1", form("approver-1", 300)), 403, "unknown_approver")  # removed earlier
    _error(post("approver-2", {"approverId": "approver-2"}), 400, "invalid_input")
    refusals = [e for e in _audit(cloud, "governance") if e.type == "ApprovalRefused" and e.subject == sid]
    assert [e.data["code"] for e in refusals] == ["expiry_too_far", "unknown_approver", "invalid_input"]
    outcomes = [post(a, form(a, 300)).json()["outcome"] for a in ("approver-2", "approver-3", "approver-4")]
    assert outcomes == ["waiting", "waiting", "resume"]


# ----------------------------------------------------------------------------- the policy is data


def test_the_impact_policy_changes_only_through_three_of_five(cloud: LocalCloud, d: Driver,
                                                             approvers: Approvers) -> None:
    current = d.ok("GET", "/policies/impact", "submitter")
    assert current["version"] == 1 and current["document"]["firstRelease"] == "MEDIUM"
    stricter = {**current["document"], "firstRelease": "HIGH"}
    _error(d.call("POST", "/policies/impact/proposals", "submitter", {"document": stricter}), 403, "forbidden")
    created = d.call("POST", "/policies/impact/proposals", "superadmin", {"document": stricter})
    assert created.status == 201, created.body
    pid, digest = created.json()["proposalId"], created.json()["digest"]
    _error(d.call("POST", f"/policies/impact/proposals/{pid}/apply", "superadmin"), 409, "not_approved")
    for a in ("approver-2", "approver-3", "approver-4"):
        resp = approvers.submit(a, pid, approvers.form(a, pid, digest))
        assert resp.status == 201, resp.body
    applied = d.call("POST", f"/policies/impact/proposals/{pid}/apply", "superadmin")
    assert applied.status == 200, applied.body
    assert d.ok("GET", "/policies/impact", "auditor")["version"] == 2
    changed = [e for e in _audit(cloud, "governance") if e.type == "ImpactPolicyChanged"]
    assert len(changed) == 1 and changed[0].data["toVersion"] == 2 and changed[0].data["digest"] == digest
    # the new version applies to the next submission
    resp = _post(d, samples.submission("brand-new", "1.0.0", samples.clean_package("brand-new")))
    assert resp.status == 201
    doc = d.package(resp.json()["packageId"])
    assert doc["impact"] == "HIGH" and doc["policy"]["policy"]["version"] == 2

