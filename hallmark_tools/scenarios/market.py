"""Marketplace scenario (DESIGN.md flow 4): a buyer is funded, buys the listing the release
step published (idempotent checkout, balanced ledger posting, signed ledger proof), the
ArtifactPublisher delivers it encrypted, `hallmark fetch` decrypts and verifies it (manifest
digest, proofs with the public keys alone), other contexts and tampering are refused, and a
settlement plan pays out only after 3-of-5 approvals."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from hallmark_tools.export import export_keys
from hallmark_tools.fetch import fetch_order, quiet_esdk, verify_proofs, wait_delivered
from hallmark_tools.scenarios.base import DemoContext, Step

BUYER = "bob-buyer"


def _get(ctx: DemoContext, role: str = "buyer") -> Any:
    return lambda path: ctx.driver.ok("GET", path, role)


def _keys(ctx: DemoContext) -> dict[str, bytes]:
    if "public_keys" not in ctx.facts:
        paths = export_keys(ctx.out / "keys", ctx.cloud.client("kms"))
        ctx.facts["public_keys"] = {name: path.read_bytes() for name, path in paths.items()}
    keys: dict[str, bytes] = ctx.facts["public_keys"]
    return keys


def step_fund_buyer(ctx: DemoContext) -> dict[str, Any]:
    body = {"party": BUYER, "amountMinor": 5_000, "currency": "USD", "depositId": "demo-bob-topup-1"}
    first = ctx.driver.call("POST", "/wallets/deposit", "superadmin", body)
    again = ctx.driver.call("POST", "/wallets/deposit", "superadmin", body)
    assert (first.status, again.status) == (201, 200), (first.body, again.body)
    wallet = ctx.driver.ok("GET", "/wallets/me", "buyer")
    assert wallet["balanceMinor"] == 5_000, wallet
    refused = ctx.driver.call("POST", "/wallets/deposit", "buyer", {**body, "depositId": "x"}).status
    assert refused == 403
    return {"account": wallet["account"], "balanceMinor": wallet["balanceMinor"], "retriedDeposit": again.status,
            "buyerCannotDeposit": refused}


def step_checkout(ctx: DemoContext) -> dict[str, Any]:
    published = ctx.facts["published"]
    listing = ctx.driver.ok("GET", f"/listings/{published['listingId']}", "buyer")
    assert listing["manifestSignatureId"] == published["manifest"]["signatureId"], listing
    headers = {"Idempotency-Key": "demo-checkout-1"}
    first = ctx.driver.call("POST", f"/listings/{listing['listingId']}/checkout", "buyer", headers=headers)
    retry = ctx.driver.call("POST", f"/listings/{listing['listingId']}/checkout", "buyer", headers=headers)
    assert first.status == 201 and retry.status == 201, (first.body, retry.body)
    order, replay = first.json(), retry.json()
    assert replay["orderId"] == order["orderId"] and retry.headers.get("idempotency-replayed") == "true"
    balance = ctx.driver.ok("GET", "/wallets/me", "buyer")["balanceMinor"]
    assert balance == 5_000 - listing["price"], balance  # charged once
    missing = ctx.driver.call("POST", f"/listings/{listing['listingId']}/checkout", "buyer")
    assert missing.status == 400 and missing.json()["error"]["code"] == "missing_idempotency_key"
    ctx.facts["market_order"] = order["orderId"]
    ctx.facts["market_listing"] = listing
    return {"listingId": listing["listingId"], "orderId": order["orderId"], "status": order["status"],
            "priceMinor": listing["price"], "currency": listing["currency"], "balanceAfterMinor": balance,
            "retry": "same order, Idempotency-Replayed: true, charged once",
            "ledgerProofId": order["proofs"]["ledger"]["proofId"], "missingKey": missing.status}


def step_fetch(ctx: DemoContext) -> dict[str, Any]:
    from hallmark.adapters.encryption import EnvelopeEncryptor

    order_id = ctx.facts["market_order"]
    keys = _keys(ctx)
    s3 = ctx.cloud.client("s3")

    def read_manifest(ref: Mapping[str, Any]) -> Mapping[str, Any]:
        envelope: Mapping[str, Any] = json.loads(s3.get_object(Bucket=ref["bucket"], Key=ref["key"])["Body"].read())
        return envelope

    report = fetch_order(order_id, get_json=_get(ctx), download=lambda url: requests.get(url, timeout=30).content,
                         decryptor_for=EnvelopeEncryptor, proof_key_pem=keys["proof"],
                         out_dir=ctx.out / "deliveries", manifest_key_pem=keys["manifest"],
                         read_manifest=read_manifest, wait_s=30.0)
    assert all(report.checks.values()), report.checks
    (ctx.out / "deliveries" / f"{order_id}.view.json").write_text(
        json.dumps(ctx.driver.ok("GET", f"/orders/{order_id}", "auditor"), indent=2) + "\n")
    stranger = ctx.cloud.token("buyer", "eve-other-buyer", ["buyer"])
    hidden = ctx.driver.call("GET", f"/orders/{order_id}", token=stranger).status
    assert hidden == 404
    return {"file": report.path, "sha256": report.artifact_sha256, "checks": sorted(report.checks),
            "deliveryProofId": report.delivery_proof_id, "otherBuyerSeesOrder": hidden}


def step_refusals(ctx: DemoContext) -> dict[str, Any]:
    from hallmark.adapters.encryption import EnvelopeEncryptor
    from hallmark.errors import DomainError
    from hallmark.market.delivery import encryption_context

    quiet_esdk()
    order_id = ctx.facts["market_order"]
    view = wait_delivered(_get(ctx), order_id)
    delivery = view["delivery"]
    ciphertext = requests.get(delivery["url"], timeout=30).content
    enc = EnvelopeEncryptor(delivery["keyArn"])
    listing = ctx.facts["market_listing"]
    out: dict[str, Any] = {}
    for name, context in (
        ("anotherOrdersContext", encryption_context("ord-someone-else", BUYER, listing["manifestDigest"])),
        ("anotherBuyer", encryption_context(order_id, "eve-other-buyer", listing["manifestDigest"])),
    ):
        try:
            enc.decrypt(ciphertext, context)
            out[name] = "DECRYPTED (wrong!)"
        except DomainError as exc:
            out[name] = exc.code
    tampered = bytearray(ciphertext)
    tampered[len(tampered) // 2] ^= 0x01
    try:
        enc.decrypt(bytes(tampered), delivery["encryptionContext"])
        out["tamperedCiphertext"] = "DECRYPTED (wrong!)"
    except DomainError as exc:
        out["tamperedCiphertext"] = exc.code
    forged = json.loads(json.dumps(view))
    forged["proofs"]["ledger"]["proof"]["postings"][0]["amountMinor"] -= 1
    try:
        verify_proofs(forged, listing, _keys(ctx)["proof"])
        out["forgedLedgerProof"] = "VERIFIED (wrong!)"
    except Exception as exc:  # FetchError
        out["forgedLedgerProof"] = getattr(exc, "check", type(exc).__name__)
    unbalanced = ctx.driver.call("POST", "/wallets/deposit", "superadmin",
                                 {"party": BUYER, "amountMinor": -100, "depositId": "demo-negative"})
    out["negativeDeposit"] = unbalanced.status
    poor = ctx.cloud.token("buyer", "pat-poor-buyer", ["buyer"])
    broke = ctx.driver.call("POST", f"/listings/{listing['listingId']}/checkout", token=poor,
                            headers={"Idempotency-Key": "poor-1"})
    out["checkoutWithoutFunds"] = f"{broke.status} {broke.json()['error']['code']}"
    assert out == {"anotherOrdersContext": "context_mismatch", "anotherBuyer": "context_mismatch",
                   "tamperedCiphertext": "decryption_failed", "forgedLedgerProof": "ledger_proof_signature",
                   "negativeDeposit": 400, "checkoutWithoutFunds": "402 insufficient_funds"}, out
    return out


def _approvers(ctx: DemoContext) -> Any:
    """The approvers whose keys this run holds: the governance step's, or five registered here."""
    from hallmark_tools.driver import Approvers

    known = ctx.facts.get("approvers")
    if known is not None:
        return known
    registered = ctx.driver.ok("GET", "/approvers", "superadmin").get("approvers", [])
    if registered:
        return None  # someone else's keys: this run cannot sign for them
    ctx.facts["approvers"] = Approvers(ctx.driver)
    return ctx.facts["approvers"]


def step_settlement(ctx: DemoContext) -> dict[str, Any]:
    from hallmark.governance.messages import sign_approval

    listing = ctx.facts["market_listing"]
    seller = listing["seller"]
    approvers = _approvers(ctx)  # the registry must be able to reach the threshold
    plan = ctx.driver.call("POST", "/settlements", "submitter", {
        "listingId": listing["listingId"], "memo": "greeter revenue split",
        "parties": [{"party": seller, "bps": 7_000}, {"party": "ada-coauthor", "bps": 3_000}]})
    assert plan.status == 201, plan.body
    settlement = plan.json()
    sid, digest = settlement["settlementId"], settlement["planDigest"]
    payout = {"amountMinor": 1_000, "payoutId": "demo-payout-1"}
    early = ctx.driver.call("POST", f"/settlements/{sid}/payouts", "superadmin", payout)
    assert early.status == 409 and early.json()["error"]["code"] == "not_approved", early.body
    result: dict[str, Any] = {"settlementId": sid, "planDigest": digest, "shares": "70% seller / 30% co-author",
                              "payoutBeforeApproval": f"{early.status} not_approved"}
    if approvers is None:
        result["approvals"] = "skipped: the registered approvers' keys are not in this run"
        return result
    expires = datetime.now(UTC) + timedelta(minutes=10)
    outcome = ""
    for approver_id in list(approvers.keys)[:3]:
        form = sign_approval(approvers.keys[approver_id], approver_id=approver_id, subject_id=sid, digest=digest,
                             decision="approve", expires_at=expires, kind="settlement")
        resp = ctx.driver.call("POST", f"/settlements/{sid}/approvals", body=form,
                               token=approvers.token(approver_id))
        assert resp.status == 201, resp.body
        outcome = resp.json()["outcome"]
    assert outcome == "resume", outcome
    paid = ctx.driver.call("POST", f"/settlements/{sid}/payouts", "superadmin", payout)
    assert paid.status == 201, paid.body
    again = ctx.driver.call("POST", f"/settlements/{sid}/payouts", "superadmin", payout)
    assert again.status == 200 and again.json()["replayed"], again.body
    postings = {p["account"]: p["amountMinor"] for p in paid.json()["postings"]}
    assert postings == {f"wallet:{seller}:USD": -1_000, f"payout:{seller}:USD": 700, "payout:ada-coauthor:USD": 300}
    result.update({"approvals": "3 of 5 -> Applied", "payout": postings, "retriedPayout": "replayed, paid once"})
    return result


STEPS: list[tuple[str, Step]] = [
    ("Market: fund the buyer's wallet (balanced top-up, idempotent)", step_fund_buyer),
    ("Market: buy the published listing (idempotent checkout, signed ledger proof)", step_checkout),
    ("Market: ArtifactPublisher delivers; fetch decrypts and verifies manifest and proofs", step_fetch),
    ("Market: other contexts, tampering, forged proofs, overdraft are refused", step_refusals),
    ("Market: settlement plan pays out only after 3-of-5 approvals", step_settlement),
]
