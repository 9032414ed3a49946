"""Who may read whose packages, orders and settlements (docs/authorization.md), route by route,
and identities compared exactly (issue 17). One table: route x principal -> status. Principals:
the record's owner, another user with the same role, an auditor, a superadmin (and, where the
rules name them, an approver or a party)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from hallmark_tools import samples
from hallmark_tools.driver import Approvers, Driver
from hallmark_tools.localcloud.cloud import LocalCloud

RUN = uuid.uuid4().hex[:6]
OWNER, OTHER = f"owner-{RUN}", f"other-{RUN}"


@pytest.fixture(scope="module")
def world(shared_cloud: LocalCloud, driver: Driver) -> dict[str, Any]:
    """A published listing (seller: the driver's submitter), a paid order, a settlement plan and a
    package submitted by OWNER."""
    Approvers(driver)  # settlement approvals need the registry
    pid = driver.submit(samples.clean_package(f"authz-{RUN}"), name=f"authz-{RUN}", version="1.0.0")
    doc = driver.wait_package(pid)
    assert doc["status"] == "Published", doc
    listing = driver.ok("GET", f"/listings/{doc['listingId']}", "buyer")
    owner_tok = shared_cloud.token("submitter", OWNER)
    created = shared_cloud.api("POST", "/packages", token=owner_tok,
                               json_body=samples.submission(f"authz-own-{RUN}", "1.0.0", samples.clean_package("own")))
    assert created.status == 201, created.body
    assert driver.call("POST", "/wallets/deposit", "superadmin",
                       {"party": OWNER, "amountMinor": 10**6, "depositId": f"authz-{RUN}"}).status == 201
    order = shared_cloud.api("POST", f"/listings/{listing['listingId']}/checkout", token=owner_tok,
                             headers={"Idempotency-Key": f"authz-{RUN}"})
    assert order.status == 201, order.body
    seller = listing["seller"]
    planned = driver.call("POST", "/settlements", "submitter", {
        "listingId": listing["listingId"], "parties": [{"party": seller, "bps": 7_000},
                                                       {"party": f"coauthor-{RUN}", "bps": 3_000}]})
    assert planned.status == 201, planned.body
    return {"package": created.json()["packageId"], "order": order.json()["orderId"],
            "settlement": planned.json()["settlementId"], "seller": seller, "listing": listing}


# (route, principal) -> expected status. Principals are (role, sub) with subs relative to the world.
TABLE: list[tuple[str, str, str, int]] = [
    # GET /packages/{id}: the submitter, approvers, auditors, superadmins
    ("package", "submitter", "owner", 200),
    ("package", "submitter", "other", 404),
    ("package", "auditor", "auditor", 200),
    ("package", "superadmin", "root", 200),
    ("package", "approver", "approver", 200),
    # GET /orders/{id}: the buyer, auditors, superadmins; not the seller, not another buyer
    ("order", "submitter", "owner", 200),
    ("order", "submitter", "other", 404),
    ("order", "submitter", "seller", 404),
    ("order", "auditor", "auditor", 200),
    ("order", "superadmin", "root", 200),
    ("order", "approver", "approver", 404),
    # GET /settlements/{id}: proposer/seller, its parties, approvers, auditors, superadmins
    ("settlement", "submitter", "seller", 200),
    ("settlement", "submitter", "coauthor", 200),
    ("settlement", "submitter", "other", 404),
    ("settlement", "auditor", "auditor", 200),
    ("settlement", "superadmin", "root", 200),
    ("settlement", "approver", "approver", 200),
]


def _sub(who: str, world: dict[str, Any]) -> str:
    return {"owner": OWNER, "other": OTHER, "seller": world["seller"], "coauthor": f"coauthor-{RUN}",
            "auditor": f"auditor-{RUN}", "root": f"root-{RUN}", "approver": f"approver-{RUN}"}[who]


@pytest.mark.parametrize(("record", "role", "who", "status"), TABLE,
                         ids=[f"{r}-{who}-as-{role}" for r, role, who, _ in TABLE])
def test_who_reads_what(shared_cloud: LocalCloud, world: dict[str, Any], record: str, role: str, who: str,
                        status: int) -> None:
    path = {"package": f"/packages/{world['package']}", "order": f"/orders/{world['order']}",
            "settlement": f"/settlements/{world['settlement']}"}[record]
    resp = shared_cloud.api("GET", path, token=shared_cloud.token(role, _sub(who, world)))
    assert resp.status == status, (record, role, who, resp.status, resp.body[:300])
    if status == 404:  # indistinguishable from a record that does not exist
        assert resp.json()["error"]["code"] == "not_found"


def test_ownership_is_exact_never_a_prefix(shared_cloud: LocalCloud, driver: Driver) -> None:
    """carol must not plan a settlement out of carol:x's wallet (the check split the account id on ':')."""
    carol, carol_x = f"carol{RUN}", f"carol{RUN}:x"
    assert driver.call("POST", "/wallets/deposit", "superadmin",
                       {"party": carol_x, "amountMinor": 5_000, "depositId": f"carolx-{RUN}"}).status == 201
    plan = {"sellerAccount": f"wallet:{carol_x}:USD", "parties": [{"party": carol, "bps": 10_000}]}
    stolen = shared_cloud.api("POST", "/settlements", token=shared_cloud.token("submitter", carol), json_body=plan)
    assert stolen.status == 403 and stolen.json()["error"]["code"] == "forbidden", stolen.body
    own = shared_cloud.api("POST", "/settlements", token=shared_cloud.token("submitter", carol_x),
                           json_body={**plan, "parties": [{"party": carol_x, "bps": 10_000}]})
    assert own.status == 201, own.body
    sid = own.json()["settlementId"]
    peek = shared_cloud.api("GET", f"/settlements/{sid}", token=shared_cloud.token("submitter", carol))
    assert peek.status == 404, peek.body


def test_a_refused_checkout_audits_nothing(shared_cloud: LocalCloud, driver: Driver, world: dict[str, Any]) -> None:
    """402 insufficient_funds wrote OrderPlaced first; only what happened is audited. A retry
    after a top-up pays, and then OrderPlaced and the capture are audited, once."""
    broke = shared_cloud.token("submitter", f"broke-{RUN}")
    refused = shared_cloud.api("POST", f"/listings/{world['listing']['listingId']}/checkout", token=broke,
                               headers={"Idempotency-Key": f"broke-{RUN}"})
    assert refused.status == 402 and refused.json()["error"]["code"] == "insufficient_funds", refused.body
    order_id = refused.json()["error"]["details"]["orderId"]
    shared_cloud.wait_idle()

    def audited() -> list[str]:
        events = driver.ok("GET", "/audit/market/events", "auditor")["events"]
        return [e["type"] for e in events if e["subject"] == order_id]

    assert audited() == []
    assert driver.call("POST", "/wallets/deposit", "superadmin",
                       {"party": f"broke-{RUN}", "amountMinor": 10**6, "depositId": f"broke-{RUN}"}).status == 201
    shared_cloud.api("POST", f"/listings/{world['listing']['listingId']}/checkout", token=broke,
                     headers={"Idempotency-Key": f"retry-{RUN}"})
    paid = shared_cloud.api("POST", f"/listings/{world['listing']['listingId']}/checkout", token=broke,
                            headers={"Idempotency-Key": f"broke-{RUN}"})
    assert paid.status == 201, paid.body
    shared_cloud.wait_idle()
    assert audited().count("OrderPlaced") == 1


