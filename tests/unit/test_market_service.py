"""``MarketService`` against the fakes: wallets, checkout and who may read an order."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from hallmark._domain import Caller
from hallmark.errors import DomainError, NotFound
from hallmark.market.proofs import SignedProof, verify_proof
from hallmark.market.service import MarketService
from tests.fakes.docstore import InMemoryDocStore
from tests.fakes.market import InMemoryLedgerRepository
from tests.fakes.release import RecordingAudit
from tests.fakes.signing import LocalSigner

NOW = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
LISTING = "lst-1"


class Queue:
    def __init__(self) -> None:
        self.orders: list[str] = []

    def enqueue(self, order_id: str) -> None:
        self.orders.append(order_id)


class World:
    def __init__(self) -> None:
        self.docs, self.audit, self.signer = InMemoryDocStore(), RecordingAudit(), LocalSigner.generate()
        self.market = MarketService(self.docs, InMemoryLedgerRepository(), self.signer, self.audit)
        self.queue = Queue()
        self.docs.create("listing", LISTING, {
            "listingId": LISTING, "packageId": "pkg-1", "name": "acme", "seller": "seller", "price": 1900,
            "currency": "USD", "manifestSignatureId": "sig-1", "manifestDigest": "a" * 64, "status": "Active",
        })

    def deposit(self, amount: int, deposit_id: str = "d1", party: str = "buyer") -> dict[str, Any]:
        return self.market.deposit(party=party, amount_minor=amount, currency="USD", deposit_id=deposit_id,
                                   actor=party, now=NOW)

    def checkout(self, key: str = "k1", listing: str = LISTING) -> dict[str, Any]:
        return self.market.checkout(listing_id=listing, buyer="buyer", idempotency_key=key, now=NOW,
                                    queue=self.queue)

    def types(self) -> list[str]:
        return [e["type"] for e in self.audit.events.values()]


@pytest.fixture()
def world() -> World:
    return World()


def test_a_deposit_credits_the_wallet_once_and_is_signed(world: World) -> None:
    first = world.deposit(5000)
    assert first["balanceMinor"] == 5000 and first["replayed"] is False
    again = world.deposit(5000)
    assert again["replayed"] is True and again["balanceMinor"] == 5000
    assert world.market.wallet("buyer", "USD")["balanceMinor"] == 5000
    proof = first["ledgerProof"]
    assert proof["keyId"] == world.signer.key_id
    assert world.types().count("LedgerPosted") == 1


@pytest.mark.parametrize("amount", [0, -1, True])
def test_a_deposit_must_be_a_positive_integer(world: World, amount: Any) -> None:
    with pytest.raises(DomainError) as err:
        world.deposit(amount)
    assert err.value.code == "invalid_amount"
    assert world.audit.events == {}


def test_a_checkout_the_wallet_cannot_pay_is_402_and_audits_nothing(world: World) -> None:
    with pytest.raises(DomainError) as err:
        world.checkout()
    assert (err.value.code, err.value.http_status) == ("insufficient_funds", 402)
    assert "OrderPlaced" not in world.types() and world.queue.orders == []


def test_a_paid_checkout_is_handed_to_the_publisher_and_resumes_on_retry(world: World) -> None:
    world.deposit(5000)
    view = world.checkout()
    assert view["status"] == "Paid" and world.queue.orders == [view["orderId"]]
    assert view["delivery"] == {"status": "Pending"}
    assert world.market.wallet("buyer", "USD")["balanceMinor"] == 5000 - 1900
    again = world.checkout()
    assert again["orderId"] == view["orderId"]
    assert world.market.wallet("buyer", "USD")["balanceMinor"] == 5000 - 1900, "paid once"
    assert world.types().count("OrderPlaced") == 1


def test_an_idempotency_key_cannot_buy_another_listing(world: World) -> None:
    world.deposit(5000)
    world.checkout()
    world.docs.create("listing", "lst-2", {**world.docs.get("listing", LISTING), "listingId": "lst-2"})
    with pytest.raises(DomainError) as err:
        world.checkout(listing="lst-2")
    assert (err.value.code, err.value.http_status) == ("idempotency_key_reused", 422)


def test_only_the_buyer_or_an_auditor_reads_an_order(world: World) -> None:
    world.deposit(5000)
    order_id = world.checkout()["orderId"]
    assert world.market.order_view(order_id, Caller("auditor-1", frozenset({"auditor"})), None, None, NOW)
    with pytest.raises(NotFound):
        world.market.order_view(order_id, Caller("seller", frozenset({"submitter"})), None, None, NOW)


def test_a_deposits_ledger_proof_verifies_with_the_signers_key_only(world: World) -> None:
    proof = SignedProof.model_validate(world.deposit(700)["ledgerProof"])
    assert verify_proof(proof, world.signer.public_key_pem())
    assert not verify_proof(proof, LocalSigner.generate().public_key_pem())
