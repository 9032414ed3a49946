"""Release bundle size and `hallmark bundle verify` time for a HIGH release with 5 approvals, a
gold ceremony and a purchase, against the bare cryptography floor of the same checks.

Boots the local cloud with a multisig threshold of 5, registers five approvers, submits a HIGH
release and records five approvals; registers five witnesses and takes the package (with four
other artifacts) through bronze (1 witness), silver (3) and gold (5 and a blessing); a buyer
buys it and the delivery is issued; every chain is checkpointed. It then downloads
`GET /packages/{id}/bundle?order=` and times, interleaved, ``--repeat`` times, keeping each one's
best (CPU time of this process):

(a) verify: ``verify_bundle`` (what `hallmark bundle verify` runs, with the artifact);
(b) floor: the cryptography that verification cannot do without, done directly with the
    ``cryptography`` library: one ECDSA P-256 verification per signature the bundle holds
    (the manifest, each approval, each distinct checkpoint, each provenance record, each witness
    signature, the ledger and delivery proofs), over messages of the same sizes, and the SHA-256
    calls (each event's canonical bytes, each proof's leaf and path nodes, the manifest payload
    and the artifact).

The last line is exactly
``RESULT bundle_bytes=<n> events=<n> approvals=5 ceremonies=<n> witness_sigs=<n> ecdsa=<n>
verify_ms=<a> floor_ms=<b> ratio=<a/b> checks=<n>`` (one line).
"""

from __future__ import annotations

import argparse
import base64
import gc
import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from hallmark.audit.events import event_hash
from hallmark.bundle import verify_bundle
from hallmark.canonical import canonical_bytes
from hallmark_tools import samples
from hallmark_tools.driver import Approvers, Driver
from hallmark_tools.fetch import wait_delivered
from hallmark_tools.localcloud.cloud import LocalCloud
from hallmark_tools.scenarios.ceremony import Witnesses


def _release(cloud: LocalCloud) -> tuple[bytes, bytes, dict[str, bytes]]:
    """The bundle (raw JSON), the artifact and the public keys."""
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
    doc = driver.wait_package(pid)
    assert doc["status"] == "Published", doc["status"]
    witnesses = Witnesses(driver, [f"bench-wit-{i}" for i in range(5)])
    artifacts = [pid, *(f"bench-art-{i}" for i in range(4))]
    for tier, n in (("bronze", 1), ("silver", 3), ("gold", 5)):
        done = witnesses.run(tier, artifacts, witnesses.ids[:n], bless=tier == "gold")
        assert done["status"] == "Completed", done
    buyer = f"bench-buyer-{uuid.uuid4().hex[:6]}"
    token = cloud.token("buyer", buyer, ["buyer"])
    driver.ok("POST", "/wallets/deposit", "superadmin", {"party": buyer, "amountMinor": 10_000, "depositId": buyer})
    resp = driver.call("POST", f"/listings/{doc['listingId']}/checkout", token=token,
                       headers={"Idempotency-Key": "bench"})
    assert resp.status == 201, resp.body
    order = resp.json()["orderId"]
    wait_delivered(lambda path: driver.ok("GET", path, token=token), order)
    cloud.wait_idle(timeout=30)
    for chain in ("release", "governance", "ceremony", "market"):
        audit_log().checkpoint_now(chain)
    resp = driver.call("GET", f"/packages/{pid}/bundle?order={order}", token=token)
    assert resp.status == 200, resp.body[:300]
    pems = {k["purpose"]: k["pem"].encode() for k in driver.ok("GET", "/keys")["keys"]}
    return resp.body, body, pems


def _floor_work(bundle: dict[str, Any], artifact: bytes) -> tuple[list[bytes], list[bytes]]:
    """The messages of every signature the bundle holds, and every input SHA-256 must digest."""
    signed: list[bytes] = [base64.b64decode(bundle["manifest"]["envelope"]["payload"])]
    signed += [b"x" * 160 for _ in bundle["approvals"]["records"]]
    checkpoints = {json.dumps(i["proof"]["checkpoint"], sort_keys=True) for i in bundle["audit"]["events"]}
    signed += [c.encode() for c in checkpoints]
    for c in bundle["ceremony"]["ceremonies"]:
        record = canonical_bytes(c["attestation"]["record"])
        signed.append(record)
        signed += [b"s" * 400 for _ in c["attestation"]["record"]["witnessSignatures"]]
    signed += [canonical_bytes(bundle["purchase"][k]["proof"]) for k in ("ledgerProof", "deliveryProof")]
    hashed: list[bytes] = [signed[0], artifact]
    for item in bundle["audit"]["events"]:
        hashed.append(canonical_bytes({k: v for k, v in item["event"].items() if k not in ("hash", "signature")}))
        hashed += [b"\x00" + os.urandom(32)] + [b"\x01" + os.urandom(64) for _ in item["proof"]["path"]]
    return signed, hashed


def _best(fn: Callable[[], Any]) -> float:
    gc.collect()
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    with LocalCloud(env={"MULTISIG_THRESHOLD": "5"}) as cloud:
        raw, body, pems = _release(cloud)
    bundle = json.loads(raw)
    checks = verify_bundle(bundle, pems, body, min_threshold=5)
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]
    assert bundle["ceremony"]["tier"] == "gold" and bundle["purchase"] is not None
    assert all(event_hash(i["event"]) == i["event"]["hash"] for i in bundle["audit"]["events"])
    signed, hashed = _floor_work(bundle, body)
    key = ec.generate_private_key(ec.SECP256R1())
    pub = key.public_key()
    sigs = [(m, key.sign(m, ec.ECDSA(hashes.SHA256()))) for m in signed]

    def floor() -> None:
        for m, s in sigs:
            pub.verify(s, m, ec.ECDSA(hashes.SHA256()))
        for data in hashed:
            hashlib.sha256(data).digest()

    t = {"verify": float("inf"), "floor": float("inf")}
    for _ in range(args.repeat):
        t["verify"] = min(t["verify"], _best(lambda: verify_bundle(bundle, pems, body, min_threshold=5)))
        t["floor"] = min(t["floor"], _best(floor))
    n_approvals = len(bundle["approvals"]["records"])
    ceremonies = bundle["ceremony"]["ceremonies"]
    witness_sigs = sum(len(c["attestation"]["record"]["witnessSignatures"]) for c in ceremonies)
    events = len(bundle["audit"]["events"])
    print(f"bundle {len(raw)} bytes: {events} audit events with proofs, {n_approvals} approvals, "
          f"{len(ceremonies)} ceremonies ({witness_sigs} witness signatures), a purchase")
    print(f"verify_bundle best of {args.repeat}: {t['verify'] * 1000:.2f} ms ({len(checks)} checks); floor "
          f"({len(sigs)} ECDSA P-256 verifications + {len(hashed)} SHA-256): {t['floor'] * 1000:.2f} ms")
    print(f"RESULT bundle_bytes={len(raw)} events={events} approvals={n_approvals} ceremonies={len(ceremonies)} "
          f"witness_sigs={witness_sigs} ecdsa={len(sigs)} verify_ms={t['verify'] * 1000:.2f} "
          f"floor_ms={t['floor'] * 1000:.2f} ratio={t['verify'] / t['floor']:.2f} checks={len(checks)}")


if __name__ == "__main__":
    main()
