"""A HIGH-impact release whose approvals never come ends Expired (its own cloud: a 2 s window)."""

from __future__ import annotations

from typing import Any

from hallmark_tools import samples
from hallmark_tools.driver import Approvers, Driver
from hallmark_tools.localcloud.cloud import LocalCloud


def test_no_approvals_in_time_expires(tmp_path: Any) -> None:
    with LocalCloud(env={"APPROVAL_TIMEOUT_SECONDS": "2"}) as cloud:
        d = Driver(cloud)
        Approvers(d)
        pid = d.submit(samples.clean_package("slow"), name="slow", version="1.0.0", impact="HIGH")
        doc = d.wait_package(pid, ("Rejected", "Published"), timeout=60)
        assert doc["status"] == "Rejected"
        execution = cloud.wait_execution(doc["executionArn"])
        assert execution["status"] == "FAILED" and execution["error"] == "Expired"
        assert d.package(pid)["listingId"] is None
        assert d.ok("GET", f"/upgrades/up-{pid}", "superadmin")["status"] == "Expired"
