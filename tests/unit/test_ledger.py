"""Double-entry ledger: validation, no overdraft under concurrency (fake and moto DynamoDB),
idempotent posting, checkout and settlement arithmetic, proofs, the order state machine."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import assume, given
from hypothesis import strategies as st
from moto import mock_aws

from hallmark.adapters.dynamo_ledger import DynamoLedgerRepository, ledger_table_definition
from hallmark.errors import DomainError
from hallmark.governance import SettlementApproval
from hallmark.market import (
    Account,
    LedgerRepository,
    LedgerService,
    OrderService,
    Posting,
    SettlementPlan,
    Share,
    Transaction,
    checkout_plan,
    parse_settlement_plan,
    parse_transaction,
    payout_transaction,
    plan_digest,
    post_payout,
    sign_ledger_proof,
    split_amount,
    split_fee,
    verify_proof,
)
from hallmark.signing import public_pem_of, sign_p256
from tests.fakes.market import InMemoryLedgerRepository, InMemoryOrderRepository

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


class TestSigner:
    __test__ = False

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())

    @property
    def key_id(self) -> str:
        return "test-proof-key"

    def sign(self, message: bytes) -> bytes:
        return sign_p256(self._key, message)

    def public_key_pem(self) -> bytes:
        return public_pem_of(self._key).encode()


@pytest.fixture()
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)


def _serialize_moto_dynamodb(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto 5.2.1 evaluates a TransactWriteItems' conditions and writes without any lock
    (and rolls back by restoring a table copy), so under threads it lets transactions whose
    conditions no longer hold commit: 8 concurrent checkouts over-fill escrow without this.
    Real DynamoDB runs each transaction serializably; this lock restores exactly that
    guarantee (whole transactions and consistent reads are atomic), nothing more."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("transact_write_items", "get_item", "put_item"):
        original = getattr(DynamoDBBackend, name)

        def locked(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, locked)


@pytest.fixture(params=["fake", "moto"])
def repo(
    request: pytest.FixtureRequest, aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LedgerRepository]:
    if request.param == "fake":
        yield InMemoryLedgerRepository()
        return
    _serialize_moto_dynamodb(monkeypatch)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(**ledger_table_definition("ledger"))
        yield DynamoLedgerRepository(client, "ledger")


def tx(tx_id: str, *postings: tuple[str, int], currency: str = "USD") -> Transaction:
    return Transaction(tx_id=tx_id, postings=tuple(
        Posting(account=a, amount_minor=m, currency=currency) for a, m in postings))


def funded(repo: LedgerRepository, balance: int = 1000) -> LedgerService:
    ledger = LedgerService(repo)
    for account in (Account(account_id="external:card", currency="USD", allow_negative=True),
                    Account(account_id="wallet:buyer", currency="USD"),
                    Account(account_id="escrow:USD", currency="USD"),
                    Account(account_id="wallet:seller", currency="USD"),
                    Account(account_id="platform:USD", currency="USD"),
                    Account(account_id="wallet:eur", currency="EUR")):
        ledger.open_account(account)
    ledger.post(tx("topup", ("external:card", -balance), ("wallet:buyer", balance)), NOW)
    return ledger


# ----------------------------------------------------------------------------- validation


def test_balanced_transaction_posts(repo: LedgerRepository) -> None:
    ledger = funded(repo)
    result = ledger.post(tx("t1", ("wallet:buyer", -300), ("escrow:USD", 300)), NOW)
    assert not result.replayed
    assert result.posted.balances_after == {"wallet:buyer": 700, "escrow:USD": 300}
    assert [e.type for e in result.events] == ["LedgerPosted"]
    assert ledger.balance("external:card") == -1000  # allowed to go negative


def _refused(ledger: LedgerService, t: Transaction, code: str) -> None:
    accounts = ["external:card", "wallet:buyer", "escrow:USD", "wallet:seller", "wallet:eur"]
    before = ledger.repository.balances(accounts)
    with pytest.raises(DomainError) as err:
        ledger.post(t, NOW)
    assert err.value.code == code
    assert ledger.repository.balances(accounts) == before
    assert ledger.repository.get_transaction(t.tx_id) is None


def test_unbalanced_refused(repo: LedgerRepository) -> None:
    _refused(funded(repo), tx("t", ("wallet:buyer", -300), ("escrow:USD", 299)), "unbalanced")


def test_negative_balance_refused(repo: LedgerRepository) -> None:
    _refused(funded(repo), tx("t", ("wallet:buyer", -1001), ("escrow:USD", 1001)), "negative_balance")


def test_mixed_currency_refused(repo: LedgerRepository) -> None:
    ledger = funded(repo)
    mixed = Transaction(tx_id="t", postings=(Posting(account="wallet:buyer", amount_minor=-5, currency="USD"),
                                             Posting(account="wallet:eur", amount_minor=5, currency="EUR")))
    _refused(ledger, mixed, "mixed_currency")
    _refused(ledger, tx("t", ("wallet:buyer", -5), ("wallet:eur", 5)), "currency_mismatch")
    _refused(ledger, tx("t", ("wallet:buyer", -5), ("nobody", 5)), "unknown_account")


@pytest.mark.parametrize("amount", [1.5, 2.0, "3", True, 0, 2**53])
def test_integers_only(amount: Any) -> None:
    raw = {"txId": "t", "postings": [{"account": "a", "amountMinor": amount, "currency": "USD"},
                                     {"account": "b", "amountMinor": 1, "currency": "USD"}]}
    with pytest.raises(DomainError) as err:
        parse_transaction(raw)
    assert err.value.code == "invalid_amount"


def test_idempotent_repost_of_the_same_tx_id(repo: LedgerRepository) -> None:
    ledger = funded(repo)
    t = tx("t1", ("wallet:buyer", -300), ("escrow:USD", 300))
    first = ledger.post(t, NOW)
    again = ledger.post(t, NOW + timedelta(minutes=5))
    assert again.replayed and again.posted == first.posted
    assert again.events[0].event_id == first.events[0].event_id  # the audit log dedupes it
    assert ledger.balance("wallet:buyer") == 700
    # straight to the repository, bypassing the service's read: still posted once
    outcome = repo.post(t, {"wallet:buyer": 700, "escrow:USD": 300}, posted_at=NOW)
    assert outcome.replayed and ledger.balance("wallet:buyer") == 700
    with pytest.raises(DomainError) as err:
        ledger.post(tx("t1", ("wallet:buyer", -1), ("escrow:USD", 1)), NOW)
    assert err.value.code == "tx_id_reused"


def test_stale_expected_balance_is_a_conflict(repo: LedgerRepository) -> None:
    ledger = funded(repo)
    with pytest.raises(DomainError) as err:
        repo.post(tx("t", ("wallet:buyer", -1), ("escrow:USD", 1)), {"wallet:buyer": 999, "escrow:USD": 0},
                  posted_at=NOW)
    assert err.value.code == "conflict"
    assert ledger.balance("wallet:buyer") == 1000 and repo.get_transaction("t") is None


def test_concurrent_checkouts_never_overdraw(repo: LedgerRepository) -> None:
    ledger = funded(repo, balance=1000)
    start = threading.Barrier(8)

    def checkout(i: int) -> str:
        plan = checkout_plan(order_id=f"o{i}", buyer_account="wallet:buyer", escrow_account="escrow:USD",
                             seller_account="wallet:seller", platform_account="platform:USD",
                             price_minor=300, currency="USD", fee_bps=250)
        start.wait()
        try:
            ledger.post(plan.capture, NOW)
            return "paid"
        except DomainError as err:
            return err.code

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(checkout, range(8)))
    assert sorted(results) == ["negative_balance"] * 5 + ["paid"] * 3
    balances = repo.balances(["wallet:buyer", "escrow:USD", "external:card"])
    assert balances == {"wallet:buyer": 100, "escrow:USD": 900, "external:card": -1000}
    assert sum(1 for i in range(8) if repo.get_transaction(f"o{i}:capture")) == 3


# ----------------------------------------------------------------------------- checkout & settlement


@given(st.integers(1, 10**12), st.integers(0, 10_000))
def test_fee_split_is_exact_and_rounds_down(price: int, bps: int) -> None:
    fee, seller = split_fee(price, bps)
    assert fee + seller == price and 0 <= fee <= price
    assert fee * 10_000 <= price * bps < (fee + 1) * 10_000


def test_checkout_plan_is_balanced() -> None:
    plan = checkout_plan(order_id="o1", buyer_account="b", escrow_account="e", seller_account="s",
                         platform_account="p", price_minor=999, currency="USD", fee_bps=250)
    assert (plan.fee_minor, plan.seller_minor) == (24, 975)
    for t in (plan.capture, plan.release):
        assert sum(p.amount_minor for p in t.postings) == 0
    assert plan.capture.tx_id == "o1:capture" and plan.release.tx_id == "o1:release"


@given(st.integers(1, 10**12), st.lists(st.integers(1, 100), min_size=1, max_size=8))
def test_settlement_split_is_exact(amount: int, weights: list[int]) -> None:
    total = sum(weights)
    bps = [w * 10_000 // total for w in weights]
    bps[0] += 10_000 - sum(bps)
    assume(all(b > 0 for b in bps))
    shares = tuple(Share(party=f"p{i}", account=f"a{i}", bps=b) for i, b in enumerate(bps))
    parts = split_amount(amount, shares)
    assert sum(a for _, a in parts) == amount
    for share, a in parts:
        assert abs(a * 10_000 - amount * share.bps) < 10_000


def _plan(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"settlementId": "stl-1", "currency": "USD", "sourceAccount": "platform:USD",
                            "shares": [{"party": "alice", "account": "wallet:alice", "bps": 6000},
                                       {"party": "bob", "account": "wallet:bob", "bps": 4000}]}
    data.update(over)
    return data


@pytest.mark.parametrize("shares", [
    [{"party": "alice", "account": "wallet:alice", "bps": 6000}],
    [{"party": "alice", "account": "wallet:alice", "bps": 6000}, {"party": "alice", "account": "x", "bps": 4000}],
    [{"party": "alice", "account": "wallet:alice", "bps": 11000}, {"party": "bob", "account": "b", "bps": -1000}],
    [{"party": "alice", "account": "wallet:alice", "bps": 60.5}, {"party": "bob", "account": "b", "bps": 9939.5}],
])
def test_settlement_plan_validation(shares: list[dict[str, Any]]) -> None:
    with pytest.raises(DomainError) as err:
        parse_settlement_plan(_plan(shares=shares))
    assert err.value.code == "invalid_plan"


def test_payout_needs_multisig_approval_of_this_plan() -> None:
    repo = InMemoryLedgerRepository()
    ledger = LedgerService(repo)
    for a in ("platform:USD", "wallet:alice", "wallet:bob"):
        ledger.open_account(Account(account_id=a, currency="USD"))
    ledger.open_account(Account(account_id="external", currency="USD", allow_negative=True))
    ledger.post(tx("seed", ("external", -1001), ("platform:USD", 1001)), NOW)
    plan = parse_settlement_plan(_plan())
    pending = SettlementApproval(settlement_id="stl-1", plan_digest=plan_digest(plan), threshold=3,
                                 proposed_by="alice", created_at=NOW)
    with pytest.raises(DomainError) as err:
        payout_transaction(plan, 1001, pending, "payout-1")
    assert err.value.code == "not_approved"
    approved = pending.model_copy(update={"status": "Applied"})
    other = SettlementPlan.model_validate(_plan(shares=[
        {"party": "alice", "account": "wallet:alice", "bps": 9000},
        {"party": "bob", "account": "wallet:bob", "bps": 1000}]))
    with pytest.raises(DomainError) as err:  # approval was for other content
        payout_transaction(other, 1001, approved, "payout-1")
    assert err.value.code == "not_approved"
    result = post_payout(ledger, plan, 1001, approved, "payout-1", NOW)
    assert [e.type for e in result.events] == ["LedgerPosted", "PayoutPosted"]
    assert repo.balances(["wallet:alice", "wallet:bob", "platform:USD"]) == {
        "wallet:alice": 601, "wallet:bob": 400, "platform:USD": 0}


# ----------------------------------------------------------------------------- proofs & orders


def test_ledger_proof_is_signed_and_verifiable() -> None:
    ledger = funded(InMemoryLedgerRepository())
    posted = ledger.post(tx("t1", ("wallet:buyer", -300), ("escrow:USD", 300)), NOW).posted
    signer = TestSigner()
    proof = sign_ledger_proof(posted, signer)
    assert set(proof.proof) == {"txId", "postings", "balancesAfterDigest", "ts"}
    assert proof.proof_id.startswith("ledger-")
    assert verify_proof(proof, signer.public_key_pem())
    forged = proof.model_copy(update={"proof": {**proof.proof, "txId": "t2"}})
    assert not verify_proof(forged, signer.public_key_pem())


def test_order_state_machine_end_to_end() -> None:
    repo = InMemoryLedgerRepository()
    ledger = funded(repo)
    signer = TestSigner()
    orders = OrderService(InMemoryOrderRepository(), ledger, signer, fee_bps=250)
    placed = orders.place(order_id="ord-1", listing_id="lst-1", buyer="buyer", seller="seller", price_minor=400,
                          currency="USD", manifest_signature_id="mkey:abc", manifest_digest="d" * 64, now=NOW)
    assert placed.order.status == "Placed" and [e.type for e in placed.events] == ["OrderPlaced"]
    with pytest.raises(DomainError) as err:
        orders.deliver(placed.order, "c" * 64, NOW)
    assert err.value.code == "invalid_transition"
    # the buyer's wallet is "wallet:buyer:USD" by the default naming: fund it
    ledger.open_account(Account(account_id="wallet:buyer:USD", currency="USD"))
    ledger.post(tx("topup-2", ("external:card", -500), ("wallet:buyer:USD", 500)), NOW)
    paid = orders.pay(placed.order, NOW)
    assert paid.order.status == "Paid" and paid.proof is not None
    assert paid.order.ledger_proof_id == paid.proof.proof_id
    assert [e.type for e in paid.events] == ["LedgerPosted"]
    delivered = orders.deliver(paid.order, "c" * 64, NOW)
    assert delivered.order.status == "Delivered"
    assert [e.type for e in delivered.events] == ["LedgerPosted", "DeliveryIssued"]
    assert delivered.proof is not None
    body = delivered.proof.proof
    assert body["ledgerProofId"] == paid.proof.proof_id and body["manifestSignatureId"] == "mkey:abc"
    assert body["expiresAt"] == "2026-11-22T12:15:00Z"
    assert verify_proof(delivered.proof, signer.public_key_pem())
    assert repo.balances(["wallet:buyer:USD", "escrow:USD", "wallet:seller:USD", "platform:USD"]) == {
        "wallet:buyer:USD": 100, "escrow:USD": 0, "wallet:seller:USD": 390, "platform:USD": 10}
    with pytest.raises(DomainError) as err:
        orders.pay(delivered.order, NOW)
    assert err.value.code == "invalid_transition"
