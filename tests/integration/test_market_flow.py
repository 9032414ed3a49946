"""Marketplace, delivery and finance (DESIGN.md flow 4) on the local cloud: listings from the
release pipeline, idempotent checkout on a DynamoDB double-entry ledger with signed ledger
proofs, the ArtifactPublisher (encrypted delivery, signed delivery proof) with its DLQ and
redrive, `hallmark fetch`'s verification, and settlement payouts gated by multisig.

Each test builds its own buyers and orders (pytest-xdist may split this module across
workers, each with its own cloud and published listing)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests

from hallmark.adapters.dynamo_ledger import DynamoLedgerRepository
from hallmark.adapters.encryption import EnvelopeEncryptor
from hallmark.errors import DomainError
from hallmark.market.delivery import encryption_context
from hallmark.market.ledger import LedgerService, Posting, Transaction
from hallmark.market.proofs import SignedProof, verify_proof
from hallmark_tools import samples
from hallmark_tools.driver import Approvers, Driver
from hallmark_tools.export import export_keys
from hallmark_tools.fetch import FetchError, fetch_order, quiet_esdk, wait_delivered
from hallmark_tools.localcloud.cloud import ROOT, LocalCloud

PACKAGE = samples.clean_package("market-x")


@pytest.fixture(scope="module", autouse=True)
def _serializable_dynamodb_transactions() -> Iterator[None]:
    """moto 5.2.1 runs TransactWriteItems without a lock (conditions and writes interleave
    across threads, and a cancelled transaction rolls back by restoring a copy of the whole
    table). DynamoDB runs each transaction serializably: restore exactly that, as
    tests/unit/test_ledger.py does, so the concurrency test checks our code, not moto's."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    with pytest.MonkeyPatch.context() as mp:
        for name in ("transact_write_items", "get_item", "put_item", "update_item", "delete_item", "scan"):
            original = getattr(DynamoDBBackend, name)

            def locked(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
                with lock:
                    return __original(self, *args, **kwargs)

            mp.setattr(DynamoDBBackend, name, locked)
        quiet_esdk()
        yield


@pytest.fixture(scope="module")
def listing(driver: Driver) -> dict[str, Any]:
    pid = driver.submit(PACKAGE, name="market-x", version="1.0.0")
    doc = driver.wait_package(pid)
    assert doc["status"] == "Published", doc
    result: dict[str, Any] = driver.ok("GET", f"/listings/{doc['listingId']}", "buyer")
    return result


@pytest.fixture(scope="module")
def keys(shared_cloud: LocalCloud, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    paths = export_keys(tmp_path_factory.mktemp("keys"), shared_cloud.client("kms"))
    return {name: path.read_bytes() for name, path in paths.items()}


# --------------------------------------------------------------------------- helpers


def buyer(cloud: LocalCloud, name: str) -> str:
    return cloud.token("buyer", f"{name}-{uuid.uuid4().hex[:6]}", ["buyer"])


def sub_of(cloud: LocalCloud, token: str) -> str:
    return str(cloud.issuer.verify(token)["sub"])


def fund(driver: Driver, party: str, amount: int) -> None:
    resp = driver.call("POST", "/wallets/deposit", "superadmin",
                       {"party": party, "amountMinor": amount, "depositId": f"fund-{uuid.uuid4()}"})
    assert resp.status == 201, resp.body


def balance(driver: Driver, token: str) -> int:
    return int(driver.ok("GET", "/wallets/me", token=token)["balanceMinor"])


def checkout(driver: Driver, listing_id: str, token: str, key: str | None) -> Any:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return driver.call("POST", f"/listings/{listing_id}/checkout", token=token, headers=headers)


def getter(driver: Driver, token: str) -> Callable[[str], Any]:
    return lambda path: driver.ok("GET", path, token=token)


def ledger_items(cloud: LocalCloud) -> list[dict[str, Any]]:
    ddb = cloud.client("dynamodb")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": cloud.resources["TABLE_LEDGER"], "ConsistentRead": True}
    while True:
        page = ddb.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def assert_ledger_balanced(cloud: LocalCloud) -> dict[str, int]:
    """Every transaction sums to zero in one currency, and so do all balances."""
    items = ledger_items(cloud)
    balances = {i["accountId"]["S"]: int(i["balance"]["N"]) for i in items if i["pk"]["S"].startswith("ACCOUNT#")}
    for item in items:
        if item["pk"]["S"].startswith("TX#"):
            tx = json.loads(item["tx"]["S"])
            assert sum(p["amountMinor"] for p in tx["postings"]) == 0, tx
            assert len({p["currency"] for p in tx["postings"]}) == 1, tx
    assert sum(balances.values()) == 0, balances
    negative = {a: b for a, b in balances.items() if b < 0 and not a.startswith("funding:")}
    assert not negative, negative
    return balances


def ledger_service(cloud: LocalCloud) -> LedgerService:
    return LedgerService(DynamoLedgerRepository(cloud.client("dynamodb"), cloud.resources["TABLE_LEDGER"]))


def lambda_environment(index: int) -> ModuleType:
    """A fresh copy of the orders_api handler module: one Lambda execution environment."""
    path = ROOT / "functions" / "orders_api" / "app.py"
    spec = importlib.util.spec_from_file_location(f"orders_api_env_{index}_{uuid.uuid4().hex[:6]}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def concurrent_checkout(env: ModuleType, listing_id: str, buyer_sub: str, key: str) -> tuple[int, Any]:
    """The checkout below the HTTP routing, in its own execution environment: Powertools
    idempotency on DynamoDB, the order, the ledger's conditional transaction. (Powertools keeps
    the current HTTP request on a class attribute, ``BaseRouter.current_event``, so HTTP requests
    running at once in one process would read each other's headers; Lambda never runs two
    requests in one environment, and the routing adds nothing to what is checked here.)"""
    try:
        return 201, env.idempotent_checkout()(request={"listingId": listing_id, "buyer": buyer_sub,
                                                       "idempotencyKey": key})
    except DomainError as err:
        return err.http_status, err.to_response_body()


# --------------------------------------------------------------------------- listings


def test_listings_carry_the_manifest_signature(driver: Driver, listing: dict[str, Any]) -> None:
    listed = driver.ok("GET", "/listings", "buyer")["items"]
    assert listing["listingId"] in {item["listingId"] for item in listed}
    assert listing["price"] > 0 and listing["currency"] == "USD" and listing["seller"] == "sam-submitter"
    assert listing["manifestSignatureId"] and listing["manifestDigest"] and listing["manifestRef"]["key"]
    assert listing["artifactSha256"] == hashlib.sha256(PACKAGE).hexdigest()
    assert listing["version"] == "1.0.0" and "tier" in listing
    assert driver.call("GET", "/listings/nope", "buyer").json()["error"]["code"] == "not_found"
    assert driver.call("GET", "/listings").status == 401


# --------------------------------------------------------------------------- checkout


def test_a_retried_checkout_with_the_same_key_charges_once(shared_cloud: LocalCloud, driver: Driver,
                                                          listing: dict[str, Any]) -> None:
    token = buyer(shared_cloud, "retry")
    fund(driver, sub_of(shared_cloud, token), 5_000)
    first = checkout(driver, listing["listingId"], token, "key-1")
    again = checkout(driver, listing["listingId"], token, "key-1")
    assert first.status == again.status == 201, (first.body, again.body)
    assert again.json()["orderId"] == first.json()["orderId"]
    assert (first.headers["idempotency-replayed"], again.headers["idempotency-replayed"]) == ("false", "true")
    assert balance(driver, token) == 5_000 - listing["price"]
    order_id = first.json()["orderId"]
    captures = [i for i in ledger_items(shared_cloud) if i["pk"]["S"] == f"TX#{order_id}:capture"]
    assert len(captures) == 1
    # the signed ledger proof: buyer -> escrow, the price, balanced
    proof = first.json()["proofs"]["ledger"]
    assert proof["proof"]["txId"] == f"{order_id}:capture"
    assert sorted(p["amountMinor"] for p in proof["proof"]["postings"]) == [-listing["price"], listing["price"]]
    # the same key for another listing is refused; a missing or malformed key is a 400
    other = checkout(driver, "another-listing", token, "key-1")
    assert other.status == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    missing = checkout(driver, listing["listingId"], token, None)
    assert missing.status == 400 and missing.json()["error"]["code"] == "missing_idempotency_key"
    bad = checkout(driver, listing["listingId"], token, "has space")
    assert bad.status == 400 and bad.json()["error"]["code"] == "invalid_idempotency_key"
    assert checkout(driver, listing["listingId"], "", "k").status == 401
    # a second purchase is a second key
    assert checkout(driver, listing["listingId"], token, "key-2").json()["orderId"] != order_id
    assert balance(driver, token) == 5_000 - 2 * listing["price"]
    assert_ledger_balanced(shared_cloud)


def test_key_reuse_for_another_listing_is_refused(shared_cloud: LocalCloud, driver: Driver,
                                                  listing: dict[str, Any]) -> None:
    pid = driver.submit(samples.clean_package("market-y"), name="market-y", version="1.0.0")
    second = driver.wait_package(pid)["listingId"]
    token = buyer(shared_cloud, "reuse")
    fund(driver, sub_of(shared_cloud, token), 10_000)
    assert checkout(driver, listing["listingId"], token, "same").status == 201
    reused = checkout(driver, second, token, "same")
    assert reused.status == 422 and reused.json()["error"]["code"] == "idempotency_key_reused"
    assert balance(driver, token) == 10_000 - listing["price"]


def test_concurrent_checkouts_never_overdraw(shared_cloud: LocalCloud, driver: Driver,
                                             listing: dict[str, Any]) -> None:
    price = listing["price"]
    token = buyer(shared_cloud, "rush")
    sub = sub_of(shared_cloud, token)
    fund(driver, sub, 3 * price + price // 2)  # affords three
    envs = [lambda_environment(i) for i in range(8)]
    with ThreadPoolExecutor(len(envs)) as pool:
        results = list(pool.map(lambda i: concurrent_checkout(envs[i], listing["listingId"], sub, f"rush-{i}"),
                                range(len(envs))))
    statuses = sorted(status for status, _ in results)
    assert all(status in (201, 402) for status, _ in results), [b for st, b in results if st not in (201, 402)]
    assert statuses == [201] * 3 + [402] * 5, results
    assert {body["error"]["code"] for status, body in results if status == 402} == {"insufficient_funds"}
    assert balance(driver, token) == price // 2
    paid = {body["orderId"] for status, body in results if status == 201}
    assert len(paid) == 3
    balances = assert_ledger_balanced(shared_cloud)
    assert balances[f"wallet:{sub}:USD"] == price // 2
    # the paid ones are real orders, idempotent through the API as well
    retried = checkout(driver, listing["listingId"], token, "rush-0")
    assert retried.status in (201, 402)
    assert balance(driver, token) == price // 2


def test_unbalanced_or_negative_postings_are_refused(shared_cloud: LocalCloud, driver: Driver) -> None:
    token = buyer(shared_cloud, "strict")
    party = sub_of(shared_cloud, token)
    fund(driver, party, 1_000)
    wallet = f"wallet:{party}:USD"
    ledger = ledger_service(shared_cloud)
    now = datetime.now(UTC)

    def post(tx_id: str, *postings: tuple[str, int, str]) -> str:
        tx = Transaction(tx_id=tx_id, postings=tuple(Posting(account=a, amount_minor=m, currency=c)
                                                     for a, m, c in postings))
        with pytest.raises(DomainError) as err:
            ledger.post(tx, now)
        return err.value.code

    assert post("bad-unbalanced", (wallet, -100, "USD"), ("escrow:USD", 99, "USD")) == "unbalanced"
    assert post("bad-overdraft", (wallet, -1_001, "USD"), ("escrow:USD", 1_001, "USD")) == "negative_balance"
    assert post("bad-currency", (wallet, -100, "USD"), ("escrow:USD", 100, "EUR")) == "mixed_currency"
    assert post("bad-account", (wallet, -100, "USD"), ("nobody:USD", 100, "USD")) == "unknown_account"
    written = {i["pk"]["S"] for i in ledger_items(shared_cloud)}  # a refusal writes nothing
    assert not {f"TX#bad-{k}" for k in ("unbalanced", "overdraft", "currency", "account")} & written
    assert "ACCOUNT#nobody:USD" not in written and balance(driver, token) == 1_000
    # the API never builds one: amounts are positive integers, a reused id with other content is refused
    neg = driver.call("POST", "/wallets/deposit", "superadmin", {"party": party, "amountMinor": -5, "depositId": "n"})
    frac = driver.call("POST", "/wallets/deposit", "superadmin", {"party": party, "amountMinor": 1.5, "depositId": "f"})
    assert (neg.status, frac.status) == (400, 400)
    body = {"party": party, "amountMinor": 10, "depositId": f"once-{party}"}
    assert driver.call("POST", "/wallets/deposit", "superadmin", body).status == 201
    assert driver.call("POST", "/wallets/deposit", "superadmin", body).status == 200
    changed = driver.call("POST", "/wallets/deposit", "superadmin", {**body, "amountMinor": 11})
    assert changed.status == 409 and changed.json()["error"]["code"] == "tx_id_reused"
    assert driver.call("POST", "/wallets/deposit", "buyer", body).status == 403
    huge = driver.call("POST", "/wallets/deposit", "superadmin",
                       {"party": party, "amountMinor": 2**53 - 1, "depositId": f"huge-{party}"})
    assert huge.status == 422 and huge.json()["error"]["code"] == "balance_out_of_range"  # I-JSON safe
    assert balance(driver, token) == 1_010
    assert_ledger_balanced(shared_cloud)


# --------------------------------------------------------------------------- delivery


def _paid_order(cloud: LocalCloud, driver: Driver, listing: dict[str, Any], name: str) -> tuple[str, str]:
    token = buyer(cloud, name)
    fund(driver, sub_of(cloud, token), listing["price"])
    resp = checkout(driver, listing["listingId"], token, f"{name}-order")
    assert resp.status == 201, resp.body
    return token, str(resp.json()["orderId"])


def test_delivery_decrypts_for_the_buyer_and_every_proof_verifies(shared_cloud: LocalCloud, driver: Driver,
                                                                  listing: dict[str, Any], keys: dict[str, bytes],
                                                                  tmp_path: Path) -> None:
    token, order_id = _paid_order(shared_cloud, driver, listing, "fetcher")
    s3 = shared_cloud.client("s3")
    report = fetch_order(
        order_id, get_json=getter(driver, token), download=lambda url: requests.get(url, timeout=30).content,
        decryptor_for=EnvelopeEncryptor, proof_key_pem=keys["proof"], out_dir=tmp_path,
        manifest_key_pem=keys["manifest"],
        read_manifest=lambda ref: json.loads(s3.get_object(Bucket=ref["bucket"], Key=ref["key"])["Body"].read()),
        wait_s=30)
    assert all(report.checks.values()) and len(report.checks) >= 15, report.checks
    assert Path(str(report.path)).read_bytes() == PACKAGE
    view = driver.ok("GET", f"/orders/{order_id}", token=token)
    assert view["status"] == "Delivered" and view["delivery"]["status"] == "Issued"
    assert view["delivery"]["encryptionContext"] == encryption_context(order_id, sub_of(shared_cloud, token),
                                                                       listing["manifestDigest"])
    # proofs verify with the public key alone; any change, or another key, fails
    ledger = SignedProof.model_validate(view["proofs"]["ledger"])
    delivery = SignedProof.model_validate(view["proofs"]["delivery"])
    assert verify_proof(ledger, keys["proof"]) and verify_proof(delivery, keys["proof"])
    assert delivery.proof["manifestSignatureId"] == listing["manifestSignatureId"]
    assert delivery.proof["ledgerProofId"] == ledger.proof_id
    forged = delivery.model_copy(update={"proof": {**delivery.proof, "manifestSignatureId": "forged"}})
    assert not verify_proof(forged, keys["proof"])
    assert not verify_proof(ledger, keys["manifest"])
    # the seller and the platform were paid from escrow on delivery; escrow holds nothing for it
    release = next(i for i in ledger_items(shared_cloud) if i["pk"]["S"] == f"TX#{order_id}:release")
    postings = {p["account"]: p["amountMinor"] for p in json.loads(release["tx"]["S"])["postings"]}
    assert postings["escrow:USD"] == -listing["price"] and sum(postings.values()) == 0
    # another buyer cannot see the order; an auditor sees it without a download URL
    assert driver.call("GET", f"/orders/{order_id}", token=buyer(shared_cloud, "eve")).status == 404
    audited = driver.ok("GET", f"/orders/{order_id}", "auditor")
    assert audited["delivery"]["url"] is None and audited["proofs"]["delivery"]


def test_other_contexts_and_tampered_ciphertext_are_refused(shared_cloud: LocalCloud, driver: Driver,
                                                            listing: dict[str, Any], keys: dict[str, bytes]) -> None:
    token_a, order_a = _paid_order(shared_cloud, driver, listing, "alice")
    token_b, order_b = _paid_order(shared_cloud, driver, listing, "bert")
    view_a = wait_delivered(getter(driver, token_a), order_a)
    view_b = wait_delivered(getter(driver, token_b), order_b)
    cipher_a = requests.get(view_a["delivery"]["url"], timeout=30).content
    cipher_b = requests.get(view_b["delivery"]["url"], timeout=30).content
    enc = EnvelopeEncryptor(view_a["delivery"]["keyArn"])
    assert enc.decrypt(cipher_a, view_a["delivery"]["encryptionContext"]) == PACKAGE
    # a delivery opened with another order's context fails
    with pytest.raises(DomainError) as err:
        enc.decrypt(cipher_a, view_b["delivery"]["encryptionContext"])
    assert err.value.code == "context_mismatch"
    # tampered ciphertext fails (header, body, tail)
    for where in (40, len(cipher_a) // 2, len(cipher_a) - 10):
        tampered = bytearray(cipher_a)
        tampered[where] ^= 0x01
        with pytest.raises(DomainError) as err:
            enc.decrypt(bytes(tampered), view_a["delivery"]["encryptionContext"])
        assert err.value.code in ("decryption_failed", "context_mismatch")
    # fetch refuses a swapped download before decrypting, and a swapped one that matches the digest
    with pytest.raises(FetchError) as fetch_err:
        fetch_order(order_a, get_json=getter(driver, token_a), download=lambda url: cipher_b,
                    decryptor_for=EnvelopeEncryptor, proof_key_pem=keys["proof"])
    assert fetch_err.value.check == "ciphertext_digest"
    # and a view whose proof was altered (same digest, different order) does not verify
    def forged_view(path: str) -> Any:
        data = driver.ok("GET", path, token=token_a)
        if path.startswith("/orders/"):
            data["proofs"]["delivery"]["proof"]["ciphertextDigest"] = hashlib.sha256(cipher_b).hexdigest()
        return data
    with pytest.raises(FetchError) as fetch_err:
        fetch_order(order_a, get_json=forged_view, download=lambda url: cipher_b, decryptor_for=EnvelopeEncryptor,
                    proof_key_pem=keys["proof"])
    assert fetch_err.value.check == "delivery_proof_signature"


def test_publisher_faults_retry_land_in_the_dlq_and_redrive_without_duplicates(
        shared_cloud: LocalCloud, driver: Driver, listing: dict[str, Any]) -> None:
    def boom(event: dict[str, Any]) -> None:
        raise RuntimeError("KMS unavailable (injected)")

    shared_cloud.faults["market_publisher"] = boom
    try:
        token, order_id = _paid_order(shared_cloud, driver, listing, "dlq")
        sqs = shared_cloud.client("sqs")
        dlq = shared_cloud.resources["QUEUE_DELIVERIES_DLQ_URL"]
        deadline = time.monotonic() + 30
        moved: list[dict[str, Any]] = []
        while order_id not in {json.loads(m["Body"])["orderId"] for m in moved} and time.monotonic() < deadline:
            moved += sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                         VisibilityTimeout=60).get("Messages", [])
            time.sleep(0.1)
        assert order_id in {json.loads(m["Body"])["orderId"] for m in moved}
        attempts = sum(1 for name, _ in shared_cloud.invocations if name == "market_publisher")
        assert attempts >= 5
        assert driver.ok("GET", f"/orders/{order_id}", token=token)["status"] == "Paid"  # nothing half-done
    finally:
        shared_cloud.faults.pop("market_publisher", None)
    # redrive (what `aws sqs start-message-move-task` does): back to the source queue, twice
    source = shared_cloud.resources["QUEUE_DELIVERIES_URL"]
    for message in moved:
        sqs.send_message(QueueUrl=source, MessageBody=message["Body"])
        sqs.send_message(QueueUrl=source, MessageBody=message["Body"])  # a duplicate redrive
        sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
    view = wait_delivered(getter(driver, token), order_id)
    shared_cloud.wait_idle()
    releases = [i for i in ledger_items(shared_cloud) if i["pk"]["S"] == f"TX#{order_id}:release"]
    assert len(releases) == 1 and view["order"]["version"] == 3
    assert driver.ok("GET", f"/orders/{order_id}", token=token)["proofs"]["delivery"]["proofId"] == \
        view["proofs"]["delivery"]["proofId"]
    events = driver.ok("GET", "/audit/market/events", "auditor")["events"]
    issued = [e for e in events if e["type"] == "DeliveryIssued" and e["subject"] == order_id]
    assert len(issued) == 1


# --------------------------------------------------------------------------- settlement


def test_settlement_pays_out_only_after_multisig(shared_cloud: LocalCloud, driver: Driver,
                                                listing: dict[str, Any]) -> None:
    from hallmark.governance.messages import sign_approval

    approvers = Approvers(driver)
    seller = listing["seller"]
    token, _order = _paid_order(shared_cloud, driver, listing, "payer")  # the seller earns on delivery
    wait_delivered(getter(driver, token), _order)
    bad = driver.call("POST", "/settlements", "submitter", {
        "listingId": listing["listingId"], "parties": [{"party": seller, "bps": 6_000}, {"party": "co", "bps": 3_000}]})
    assert bad.status == 422 and bad.json()["error"]["code"] == "invalid_plan"
    assert driver.call("POST", "/settlements", "buyer", {
        "listingId": listing["listingId"], "parties": [{"party": "x", "bps": 10_000}]}).status == 403
    planned = driver.call("POST", "/settlements", "submitter", {
        "listingId": listing["listingId"], "memo": "split",
        "parties": [{"party": seller, "bps": 7_000}, {"party": "co-author", "bps": 3_000}]})
    assert planned.status == 201, planned.body
    sid, digest = planned.json()["settlementId"], planned.json()["planDigest"]
    assert planned.json()["approval"] == {"status": "Pending", "threshold": 3, "approvals": 0, "rejections": 0,
                                          "approvers": []}
    payout = {"amountMinor": 1_001, "payoutId": "p1"}
    early = driver.call("POST", f"/settlements/{sid}/payouts", "superadmin", payout)
    assert early.status == 409 and early.json()["error"]["code"] == "not_approved"
    expires = datetime.now(UTC) + timedelta(minutes=5)
    ids = list(approvers.keys)
    forms = [sign_approval(approvers.keys[a], approver_id=a, subject_id=sid, digest=digest, decision="approve",
                           expires_at=expires, kind="settlement") for a in ids[:3]]
    wrong = sign_approval(approvers.keys[ids[4]], approver_id=ids[3], subject_id=sid, digest=digest,
                          decision="approve", expires_at=expires, kind="settlement")
    assert driver.call("POST", f"/settlements/{sid}/approvals", body=wrong,
                       token=approvers.token(ids[3])).json()["error"]["code"] == "bad_signature"
    outcomes = [driver.call("POST", f"/settlements/{sid}/approvals", body=f, token=approvers.token(a)).json()
                for a, f in zip(ids[:3], forms, strict=True)]
    assert [o["outcome"] for o in outcomes] == ["waiting", "waiting", "resume"], outcomes
    assert outcomes[-1]["approval"]["status"] == "Applied"
    paid = driver.call("POST", f"/settlements/{sid}/payouts", "superadmin", payout)
    assert paid.status == 201, paid.body
    postings = {p["account"]: p["amountMinor"] for p in paid.json()["postings"]}
    assert postings == {f"wallet:{seller}:USD": -1_001, f"payout:{seller}:USD": 701, "payout:co-author:USD": 300}
    again = driver.call("POST", f"/settlements/{sid}/payouts", "superadmin", payout)
    assert again.status == 200 and again.json()["replayed"]
    too_much = driver.call("POST", f"/settlements/{sid}/payouts", "superadmin",
                           {"amountMinor": 10**12, "payoutId": "p2"})
    assert too_much.status == 409 and too_much.json()["error"]["code"] == "negative_balance"
    assert_ledger_balanced(shared_cloud)
    shared_cloud.wait_idle()
    events = driver.ok("GET", "/audit/market/events", "auditor")["events"]
    types = {e["type"] for e in events}
    assert {"OrderPlaced", "LedgerPosted", "DeliveryIssued", "SettlementPlanned", "PayoutPosted"} <= types
    keyed = [(e["type"], e["subject"], json.dumps(e["data"], sort_keys=True)) for e in events]
    assert len(keyed) == len(set(keyed)), "an audit event was recorded twice"
