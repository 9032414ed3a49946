"""Governance scenario: a HIGH-impact release through 3-of-5 approvals (a forged approval
refused on the way), and an emergency apply rolled back when nobody ratifies it."""

from __future__ import annotations

from typing import Any

from hallmark_tools import samples
from hallmark_tools.driver import Approvers
from hallmark_tools.scenarios.base import DemoContext, Step


def step_register(ctx: DemoContext) -> dict[str, Any]:
    ctx.facts["approvers"] = Approvers(ctx.driver)
    listed = ctx.driver.ok("GET", "/approvers", "superadmin")["approvers"]
    return {"approvers": [a["approverId"] for a in listed]}


def step_multisig(ctx: DemoContext) -> dict[str, Any]:
    approvers: Approvers = ctx.facts["approvers"]
    pid = ctx.driver.submit(samples.clean_package("payments-core"), name="payments-core", version="2.0.0",
                            impact="HIGH")
    doc = ctx.driver.wait_package(pid, ("AwaitingApproval",))
    up, digest = doc["upgradeId"], doc["manifest"]["digest"]
    forged = approvers.form("approver-4", up, digest, key_of="approver-5")  # signed with someone else's key
    refused = approvers.submit("approver-4", up, forged)
    assert 400 <= refused.status < 500, refused.body
    outcomes = []
    for a in ("approver-1", "approver-2", "approver-3"):
        outcomes.append(approvers.submit(a, up, approvers.form(a, up, digest)).json()["outcome"])
    published = ctx.driver.wait_package(pid)
    assert published["status"] == "Published", published
    return {"packageId": pid, "upgradeId": up, "forgedApproval": refused.json()["error"]["code"],
            "outcomes": outcomes, "status": published["status"]}


def step_emergency_rollback(ctx: DemoContext) -> dict[str, Any]:
    base = ctx.driver.wait_package(ctx.driver.submit(samples.clean_package("edge-router"), name="edge-router",
                                                     version="1.4.0"))
    pid = ctx.driver.submit(samples.clean_package("edge-router"), name="edge-router", version="1.4.1",
                            impact="CRITICAL", emergency=True, role="superadmin")
    applied = ctx.driver.wait_package(pid, ("Published",))
    rolled = ctx.driver.wait_package(pid, ("RolledBack",), timeout=120)
    assert rolled["restored"]["packageId"] == base["packageId"]
    return {"emergencyPackageId": pid, "appliedAt": applied.get("publishedAt"), "status": rolled["status"],
            "restoredVersion": rolled["restored"]["version"]}


STEPS: list[tuple[str, Step]] = [
    ("Governance: superadmin registers 5 approvers (public keys only)", step_register),
    ("Governance: HIGH release waits; a forged approval is refused; 3-of-5 approve -> Published", step_multisig),
    ("Governance: emergency apply, nobody ratifies -> rolled back to the previous version", step_emergency_rollback),
]
