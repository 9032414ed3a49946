"""The release bundle's ceremony and purchase parts (issue 18, item 3): a package taken through
bronze and silver ceremonies and bought by a buyer; `GET /packages/{id}/bundle?order=` and
`hallmark bundle verify` check the witness signatures, the tier, the ledger and delivery proofs
offline, and each single-field tampering of those parts fails with its own reason."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hallmark.bundle import verify_bundle
from hallmark_tools import samples
from hallmark_tools.cli import app
from hallmark_tools.driver import Driver
from hallmark_tools.fetch import wait_delivered
from hallmark_tools.localcloud.cloud import LocalCloud
from hallmark_tools.scenarios.ceremony import Witnesses
from tests.integration.bundle_support import failed_checks, flip_b64, public_keys, serving

SUFFIX = uuid.uuid4().hex[:6]


@pytest.fixture(scope="module")
def keys(driver: Driver, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    return public_keys(driver, tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def bought(shared_cloud: LocalCloud, driver: Driver) -> dict[str, Any]:
    """A published package that climbed to silver (bronze: 1 witness, silver: 3), bought and
    delivered; every chain checkpointed; the buyer's bundle of it."""
    from hallmark.adapters.runtime import audit_log

    body = samples.clean_package("bundle-tiered")
    pid = driver.submit(body, name="bundle-tiered", version="1.0.0")
    doc = driver.wait_package(pid)
    assert doc["status"] == "Published", doc
    witnesses = Witnesses(driver, [f"bw{i}-{SUFFIX}" for i in range(3)])
    artifacts = [pid, f"bundle-art-1-{SUFFIX}", f"bundle-art-2-{SUFFIX}"]
    assert witnesses.run("bronze", artifacts, witnesses.ids[:1])["status"] == "Completed"
    assert witnesses.run("silver", artifacts, witnesses.ids)["status"] == "Completed"
    buyer = f"bundle-buyer-{SUFFIX}"
    token = shared_cloud.token("buyer", buyer, ["buyer"])
    resp = driver.call("POST", "/wallets/deposit", "superadmin",
                       {"party": buyer, "amountMinor": 10_000, "depositId": f"fund-{SUFFIX}"})
    assert resp.status == 201, resp.body
    resp = driver.call("POST", f"/listings/{doc['listingId']}/checkout", token=token,
                       headers={"Idempotency-Key": f"bundle-{SUFFIX}"})
    assert resp.status == 201, resp.body
    order_id = resp.json()["orderId"]
    view = wait_delivered(lambda path: driver.ok("GET", path, token=token), order_id)
    shared_cloud.wait_idle(timeout=30)
    for chain in ("release", "governance", "ceremony", "market"):
        audit_log().checkpoint_now(chain)
    bundle = driver.ok("GET", f"/packages/{pid}/bundle?order={order_id}", token=token)
    ciphertext = shared_cloud.client("s3").get_object(Bucket=view["delivery"]["bucket"],
                                                      Key=view["delivery"]["key"])["Body"].read()
    return {"bundle": bundle, "body": body, "pid": pid, "order": order_id, "token": token,
            "ciphertext": ciphertext, "listing": doc["listingId"]}



def test_a_tiered_purchase_bundle_verifies(bought: dict[str, Any], keys: tuple[Path, dict[str, bytes]],
                                           tmp_path: Path) -> None:
    bundle = bought["bundle"]
    assert bundle["ceremony"]["tier"] == "silver"
    assert [c["attestation"]["record"]["tier"] for c in bundle["ceremony"]["ceremonies"]] == ["bronze", "silver"]
    assert bundle["purchase"]["orderId"] == bought["order"] and bundle["notIncluded"] == []
    chains = {i["event"]["chain"] for i in bundle["audit"]["events"]}
    assert {"release", "ceremony", "market"} <= chains
    checks = verify_bundle(bundle, keys[1], bought["body"], ciphertext=bought["ciphertext"])
    assert [c for c in checks if not c.ok] == []
    names = {c.name for c in checks}
    assert {"ceremony tier", "purchase order", "purchase ledger proof", "purchase ledger balance",
            "purchase delivery proof"} <= names
    silver = bundle["ceremony"]["ceremonies"][1]["ceremonyId"]
    assert sum(n.startswith(f"ceremony {silver} witness ") for n in names) == 3
    # without the provenance / proof key nothing about the ceremony or the purchase passes
    no_proof_key = {k: v for k, v in keys[1].items() if k != "proof"}
    assert any("no proof.pem" in f for f in failed_checks(bundle, no_proof_key, bought["body"]))
    # the CLI: every part named in the report, exit 0; a wrong ciphertext fails its own check
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    (tmp_path / "pkg").write_bytes(bought["body"])
    (tmp_path / "ct").write_bytes(bought["ciphertext"])
    args = ["bundle", "verify", str(path), "--keys", str(keys[0]), "--artifact", str(tmp_path / "pkg")]
    r = CliRunner().invoke(app, [*args, "--ciphertext", str(tmp_path / "ct")])
    assert r.exit_code == 0 and "PASS ceremony tier: silver" in r.output and "PASS purchase delivery proof" in r.output, \
        r.output
    (tmp_path / "ct").write_bytes(bought["ciphertext"] + b"x")
    r = CliRunner().invoke(app, [*args, "--ciphertext", str(tmp_path / "ct")])
    assert r.exit_code == 2 and "FAIL purchase delivery proof: the given ciphertext's sha256" in r.output, r.output



def test_each_single_field_tampering_of_the_new_parts_fails_with_its_reason(
        bought: dict[str, Any], keys: tuple[Path, dict[str, bytes]]) -> None:
    bundle, body, pems = bought["bundle"], bought["body"], keys[1]

    def silver(b: dict[str, Any]) -> dict[str, Any]:
        record: dict[str, Any] = b["ceremony"]["ceremonies"][1]["attestation"]["record"]
        return record

    def witness_signature(b: dict[str, Any]) -> None:
        sig = silver(b)["witnessSignatures"][1]
        sig["signature"] = flip_b64(sig["signature"])

    def tier(b: dict[str, Any]) -> None:
        b["ceremony"]["tier"] = "gold"

    def ceremony_proof_node(b: dict[str, Any]) -> None:
        item = next(i for i in b["audit"]["events"] if i["event"]["chain"] == "ceremony"
                    and i["event"]["type"] == "WitnessAdded" and i["proof"]["path"])
        item["proof"]["path"][0] = "0" * 64

    def ledger_amount(b: dict[str, Any]) -> None:
        postings = b["purchase"]["ledgerProof"]["proof"]["postings"]
        postings[0]["amountMinor"] -= 1

    def delivery_digest(b: dict[str, Any]) -> None:
        b["purchase"]["deliveryProof"]["proof"]["ciphertextDigest"] = "0" * 64

    def witness_registry(b: dict[str, Any]) -> None:
        del b["ceremony"]["witnesses"][silver(b)["witnessSignatures"][2]["witnessId"]]

    def order_price(b: dict[str, Any]) -> None:
        b["purchase"]["order"]["priceMinor"] += 100

    def witness_unregistered(b: dict[str, Any]) -> None:
        b["audit"]["events"] = [i for i in b["audit"]["events"] if i["event"]["type"] != "WitnessRegistered"]

    def release_dropped(b: dict[str, Any]) -> None:
        b["audit"]["events"] = [i for i in b["audit"]["events"]
                                if i["event"]["subject"] != f"{bought['order']}:release"]

    cases = {
        "witness signature": (witness_signature, "witness signature does not verify over this ceremony's statement"),
        "tier": (tier, "ceremony tier: the bundle claims gold; no verified ceremony awards gold"),
        "ceremony proof node": (ceremony_proof_node, "audit path does not lead"),
        "ledger amount": (ledger_amount, "purchase ledger proof: the ledger proof's signature (or its id) does not verify"),
        "delivery digest": (delivery_digest,
                            "purchase delivery proof: the delivery proof's signature (or its id) does not verify"),
        "witness registry": (witness_registry, "no registry entry for witness"),
        "order price": (order_price, "purchase order: the order's priceMinor differ from its proved OrderPlaced"),
        "witness unregistered": (witness_unregistered, "no proved audit event registers key"),
        "release dropped": (release_dropped, "purchase ledger balance: no verified payment and proved release"),
    }
    assert failed_checks(bundle, pems, body) == []
    for name, (change, reason) in cases.items():
        b = copy.deepcopy(bundle)
        change(b)
        failures = failed_checks(b, pems, body)
        assert any(reason in f for f in failures), (name, failures)
    # a tampered ceremony proof node fails on the ceremony chain's event, and the ceremony
    # that rests on it is no longer counted
    b = copy.deepcopy(bundle)
    ceremony_proof_node(b)
    failures = failed_checks(b, pems, body)
    assert any(f.startswith("audit ceremony#") for f in failures), failures
    assert any("the WitnessAdded event of" in f for f in failures), failures
    # the claimed tier stands only with its whole climb: dropping the bronze ceremony fails it
    b = copy.deepcopy(bundle)
    del b["ceremony"]["ceremonies"][0]
    assert any("no verified ceremony awards bronze" in f for f in failed_checks(b, pems, body))


def test_the_purchase_bundle_is_for_its_buyer_and_its_package(shared_cloud: LocalCloud, driver: Driver,
                                                               bought: dict[str, Any]) -> None:
    pid, order = bought["pid"], bought["order"]
    stranger = shared_cloud.token("buyer", f"someone-{SUFFIX}", ["buyer"])
    assert driver.call("GET", f"/packages/{pid}/bundle?order={order}", token=stranger).status == 404
    assert driver.call("GET", f"/packages/{pid}/bundle", token=bought["token"]).status == 404  # not a package reader
    assert driver.call("GET", f"/packages/{pid}/bundle?order=ord-nope", token=bought["token"]).status == 404
    other = driver.submit(samples.clean_package("bundle-other"), name="bundle-other", version="1.0.0")
    assert driver.wait_package(other)["status"] == "Published"
    assert driver.call("GET", f"/packages/{other}/bundle?order={order}", token=bought["token"]).status == 404
    # an auditor gets the same purchase bundle; without ?order= no purchase part, and it says so
    audited = driver.ok("GET", f"/packages/{pid}/bundle?order={order}", "auditor")
    assert audited["purchase"] == bought["bundle"]["purchase"]
    plain = driver.ok("GET", f"/packages/{pid}/bundle", "auditor")
    assert plain["purchase"] is None and plain["ceremony"]["tier"] == "silver"
    assert plain["notIncluded"] == ["purchase ledger and delivery proofs (no order asked for)"]


def test_hallmark_bundle_order_downloads_the_purchase(shared_cloud: LocalCloud, bought: dict[str, Any],
                                                      keys: tuple[Path, dict[str, bytes]], tmp_path: Path) -> None:
    out = tmp_path / "b.json"
    with serving(shared_cloud) as api:
        r = CliRunner().invoke(app, ["bundle", bought["pid"], "--order", bought["order"], "--out", str(out),
                                     "--api", api, "--token", bought["token"]])
        assert r.exit_code == 0, r.output
    assert json.loads(out.read_text())["purchase"]["orderId"] == bought["order"]
    r = CliRunner().invoke(app, ["bundle", "verify", str(out), "--keys", str(keys[0])])
    assert r.exit_code == 0 and "PASS purchase ledger balance" in r.output, r.output
