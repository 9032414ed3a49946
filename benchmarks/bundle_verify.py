"""Release bundle size and `hallmark bundle verify` time for a HIGH release with 5 approvals.

Boots the local cloud with a multisig threshold of 5, registers five approvers, submits a HIGH
release, records five approvals, checkpoints the chains, downloads `GET /packages/{id}/bundle`
and times ``verify_bundle`` (what `hallmark bundle verify` runs, with the artifact) ``--repeat``
times, keeping the best (CPU time of this process). This bundle version holds no ceremony (see
``hallmark.bundle``), so none is measured.

The last line is exactly
``RESULT bundle_bytes=<n> events=<n> approvals=5 verify_ms=<best> checks=<n>``.
"""

from __future__ import annotations

import argparse
import json
import time

from hallmark.bundle import verify_bundle
from hallmark_tools import samples
from hallmark_tools.driver import Approvers, Driver
from hallmark_tools.localcloud.cloud import LocalCloud


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    with LocalCloud(env={"MULTISIG_THRESHOLD": "5"}) as cloud:
        from hallmark.adapters.runtime import audit_log

        driver = Driver(cloud)
        approvers = Approvers(driver)
        body = samples.clean_package("bench-bundle")
        pid = driver.submit(body, name="bench-bundle", version="2.0.0", impact="HIGH")
        doc = driver.wait_package(pid, ("AwaitingApproval", "Rejected", "Published"))
        assert doc["status"] == "AwaitingApproval", doc["status"]
        for a in sorted(approvers.keys):
            resp = approvers.submit(a, doc["upgradeId"], approvers.form(a, doc["upgradeId"], doc["manifest"]["digest"]))
            assert resp.status == 201, resp.body
        assert driver.wait_package(pid)["status"] == "Published"
        cloud.wait_idle(timeout=30)
        for chain in ("release", "governance"):
            audit_log().checkpoint_now(chain)
        resp = driver.call("GET", f"/packages/{pid}/bundle", "auditor")
        assert resp.status == 200, resp.body[:300]
        raw = resp.body
        pems = {k["purpose"]: k["pem"].encode() for k in driver.ok("GET", "/keys")["keys"]}
    bundle = json.loads(raw)
    best = float("inf")
    checks = []
    for _ in range(args.repeat):
        t0 = time.process_time()
        checks = verify_bundle(bundle, pems, body, min_threshold=5)
        best = min(best, time.process_time() - t0)
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]
    n_approvals = len(bundle["approvals"]["records"])
    print(f"bundle {len(raw)} bytes, {len(bundle['audit']['events'])} audit events with proofs, {n_approvals} approvals")
    print(f"verify_bundle best of {args.repeat}: {best * 1000:.2f} ms ({len(checks)} checks)")
    print(f"RESULT bundle_bytes={len(raw)} events={len(bundle['audit']['events'])} approvals={n_approvals} "
          f"verify_ms={best * 1000:.2f} checks={len(checks)}")


if __name__ == "__main__":
    main()
