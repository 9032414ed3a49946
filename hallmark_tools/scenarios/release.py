"""Release scenario: a clean package published; rejected packages; refused requests."""

from __future__ import annotations

import json
import time
from typing import Any

from hallmark_tools import samples
from hallmark_tools.scenarios.base import DemoContext, Step


def step_health(ctx: DemoContext) -> dict[str, Any]:
    resp = ctx.driver.call("GET", "/health")
    assert resp.status == 200, resp.body
    return {"status": resp.json()["status"]}


def step_release_clean(ctx: DemoContext) -> dict[str, Any]:
    body = samples.clean_package("greeter")
    pid = ctx.driver.submit(body, name="greeter", version="1.0.0")
    doc = ctx.driver.wait_package(pid)
    assert doc["status"] == "Published", doc
    ctx.facts["published"] = doc
    return {"packageId": pid, "status": doc["status"], "manifestSignatureId": doc["manifest"]["signatureId"],
            "listingId": doc["listingId"], "validators": {k: v["passed"] for k, v in doc["validators"].items()}}


def _rejected(kind: str) -> Step:
    def step(ctx: DemoContext) -> dict[str, Any]:
        pid = ctx.driver.submit(samples.variant(kind), name=f"greeter-{kind.replace('_', '-')}", version="1.0.0")
        doc = ctx.driver.wait_package(pid)
        assert doc["status"] == "Rejected", doc
        assert doc["listingId"] is None
        return {"packageId": pid, "status": doc["status"], "reasons": doc["reasons"][:3]}

    return step


def step_swap_is_ignored(ctx: DemoContext) -> dict[str, Any]:
    """A submitter PUTs other bytes to their upload URL once validation started: nothing changes."""
    import requests

    body = samples.clean_package("swapper")
    req = samples.submission("swapper", "1.0.0", body)
    created = ctx.driver.ok("POST", "/packages", "submitter", req)
    pid = str(created["packageId"])

    def put(data: bytes) -> None:
        resp = requests.put(created["uploadUrl"], data=data, headers=created["uploadHeaders"], timeout=30)
        assert resp.status_code < 300, resp.text[:200]

    put(body)
    ctx.driver.wait_package(pid, statuses=("Validating", "AwaitingApproval", "Published", "Rejected", "Failed"))
    put(samples.variant("secret", "swapper"))
    doc = ctx.driver.wait_package(pid)
    assert doc["status"] == "Published", doc
    from hallmark.adapters.runtime import audit_log

    deadline = time.monotonic() + 30  # the swap starts its own execution: let it reach the log
    while True:
        ctx.cloud.wait_idle()
        lines, _ = audit_log().export("release")
        ignored = [e for e in (json.loads(line) for line in lines)
                   if e["subject"] == pid and e["type"] == "PackageUploadIgnored"]
        if ignored or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert ignored, "the swap must be audited"
    return {"packageId": pid, "status": doc["status"], "declaredSha256": req["sha256"],
            "uploadsIgnored": len(ignored), "reason": ignored[0]["data"]["reason"]}


def step_refusals(ctx: DemoContext) -> dict[str, Any]:
    out = {}
    r = ctx.driver.call("POST", "/packages", "submitter", {"name": "x"})
    out["schema_violation"] = r.status
    r = ctx.driver.cloud.api("POST", "/packages", token=ctx.driver.tokens["submitter"], body=b"{not json",
                             headers={"content-type": "application/json"})
    out["malformed_json"] = r.status
    r = ctx.driver.call("POST", "/packages", "auditor", samples.submission("x", "1.0.0", b"x"))
    out["wrong_role"] = r.status
    r = ctx.driver.call("POST", "/packages", None, samples.submission("x", "1.0.0", b"x"))
    out["no_token"] = r.status
    assert out == {"schema_violation": 400, "malformed_json": 400, "wrong_role": 403, "no_token": 401}, out
    return out


STEPS: list[tuple[str, Step]] = [
    ("API answers /health", step_health),
    ("Release: clean package -> validated, signed, published, listed", step_release_clean),
    ("Release: zip-slip archive -> Rejected", _rejected("zip_slip")),
    ("Release: leaked AWS key -> Rejected", _rejected("secret")),
    ("Release: bytes swapped under a running validation -> ignored, audited; the vetted bytes are signed",
     step_swap_is_ignored),
    ("API: malformed / invalid / wrong role / no token -> JSON 4xx", step_refusals),
]
