"""Orders: ``Placed -> Paid -> Delivered``.

Paying posts the checkout capture (buyer -> escrow) and signs a ledger proof; delivering
releases escrow to the seller and the platform fee and signs a delivery proof that cites the
manifest signature and the ledger proof. Transaction ids derive from the order id, so a
retried step re-posts nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol

from pydantic import StrictInt, field_validator

from hallmark._domain import DomainModel, EventDraft, UtcDatetime
from hallmark.canonical import as_utc
from hallmark.errors import DomainError, NotFound
from hallmark.governance.models import check_id
from hallmark.market.delivery import (
    DEFAULT_DELIVERY_TTL,
    delivery_issued_event,
    delivery_proof,
    sign_delivery_proof,
)
from hallmark.market.ledger import (
    Account,
    CheckoutPlan,
    LedgerService,
    check_currency,
    checkout_plan,
    sign_ledger_proof,
    split_fee,
)
from hallmark.market.proofs import SignedProof
from hallmark.ports import Signer

OrderStatus = Literal["Placed", "Paid", "Delivered"]
TRANSITIONS: dict[OrderStatus, tuple[OrderStatus, ...]] = {
    "Placed": ("Paid",),
    "Paid": ("Delivered",),
    "Delivered": (),
}


class Order(DomainModel):
    order_id: str
    listing_id: str
    buyer: str
    seller: str
    price_minor: StrictInt
    currency: str
    fee_bps: StrictInt
    manifest_signature_id: str
    manifest_digest: str
    status: OrderStatus = "Placed"
    placed_at: UtcDatetime
    paid_at: UtcDatetime | None = None
    delivered_at: UtcDatetime | None = None
    ledger_proof_id: str | None = None
    delivery_proof_id: str | None = None
    version: int = 1

    @field_validator("currency")
    @classmethod
    def _check_currency(cls, value: str) -> str:
        return check_currency(value)


def transition(order: Order, to: OrderStatus, **changes: object) -> Order:
    """The order in state ``to`` (``invalid_transition`` unless allowed from its state)."""
    if to not in TRANSITIONS[order.status]:
        raise DomainError("invalid_transition", f"an order cannot go from {order.status} to {to}",
                          details={"orderId": order.order_id, "from": order.status, "to": to})
    return order.model_copy(update={**changes, "status": to, "version": order.version + 1})


class OrderRepository(Protocol):
    def get(self, order_id: str) -> Order | None: ...

    def create(self, order: Order) -> None: ...

    def save(self, order: Order, *, expected_version: int) -> None: ...


@dataclass(frozen=True)
class AccountNames:
    """Ledger account ids: a wallet per party and currency, one escrow and one platform
    revenue account per currency."""

    def wallet(self, party: str, currency: str) -> str:
        return f"wallet:{party}:{currency}"

    def wallet_owner(self, account: str, currency: str) -> str | None:
        """The party whose wallet ``account`` is (exactly: ``wallet(party, currency) == account``), else None."""
        prefix, suffix = "wallet:", f":{currency}"
        if not (account.startswith(prefix) and account.endswith(suffix)) or len(account) <= len(prefix) + len(suffix):
            return None
        party = account[len(prefix):-len(suffix)]
        return party if self.wallet(party, currency) == account else None

    def escrow(self, currency: str) -> str:
        return f"escrow:{currency}"

    def platform(self, currency: str) -> str:
        return f"platform:{currency}"

    def payout(self, party: str, currency: str) -> str:
        """Where a settlement pays a party (money leaving the marketplace for the party)."""
        return f"payout:{party}:{currency}"


@dataclass(frozen=True)
class OrderChange:
    order: Order
    events: list[EventDraft] = field(default_factory=list)
    proof: SignedProof | None = None


class OrderService:
    def __init__(
        self,
        orders: OrderRepository,
        ledger: LedgerService,
        proof_signer: Signer,
        *,
        fee_bps: int = 500,
        accounts: AccountNames | None = None,
        proof_sink: Callable[[SignedProof], None] | None = None,
    ) -> None:
        """``proof_sink`` receives each signed proof *before* the order that cites it is
        saved, so a stored order never names a proof that was lost in a crash."""
        split_fee(1, fee_bps)  # validates the fee
        self._sink = proof_sink
        self._orders = orders
        self._ledger = ledger
        self._signer = proof_signer
        self._fee_bps = fee_bps
        self._names = accounts or AccountNames()

    def load(self, order_id: str) -> Order:
        order = self._orders.get(order_id)
        if order is None:
            raise NotFound("order", order_id)
        return order

    def place(
        self,
        *,
        order_id: str,
        listing_id: str,
        buyer: str,
        seller: str,
        price_minor: int,
        currency: str,
        manifest_signature_id: str,
        manifest_digest: str,
        now: datetime,
    ) -> OrderChange:
        for name, value in (("orderId", order_id), ("listingId", listing_id), ("buyer", buyer), ("seller", seller)):
            try:
                check_id(value, name)
            except ValueError as exc:
                raise DomainError("invalid_input", str(exc), details={"field": name}) from None
        if buyer == seller:
            raise DomainError("invalid_input", "a seller cannot buy their own listing", details={"buyer": buyer})
        split_fee(price_minor, self._fee_bps)
        order = Order(order_id=order_id, listing_id=listing_id, buyer=buyer, seller=seller, price_minor=price_minor,
                      currency=currency, fee_bps=self._fee_bps, manifest_signature_id=manifest_signature_id,
                      manifest_digest=manifest_digest, placed_at=as_utc(now))
        for account in (Account(account_id=self._names.escrow(currency), currency=currency),
                        Account(account_id=self._names.platform(currency), currency=currency),
                        Account(account_id=self._names.wallet(seller, currency), currency=currency)):
            self._ledger.open_account(account)
        self._orders.create(order)
        return OrderChange(order, [EventDraft("OrderPlaced", order_id, {
            "listingId": listing_id, "buyer": buyer, "seller": seller, "priceMinor": price_minor,
            "currency": currency, "feeBps": self._fee_bps, "manifestSignatureId": manifest_signature_id,
        }, actor=buyer)])

    def pay(self, order: Order, now: datetime) -> OrderChange:
        """Placed -> Paid: post buyer -> escrow and sign the ledger proof."""
        transition(order, "Paid")  # refuse early, before touching the ledger
        plan = self._plan(order)
        posted = self._ledger.post(plan.capture, now, actor=order.buyer)
        proof = sign_ledger_proof(posted.posted, self._signer)
        if self._sink is not None:
            self._sink(proof)
        paid = transition(order, "Paid", paid_at=as_utc(now), ledger_proof_id=proof.proof_id)
        self._orders.save(paid, expected_version=order.version)
        events = [EventDraft(e.type, e.subject, {**e.data, "ledgerProofId": proof.proof_id}, e.actor)
                  for e in posted.events]
        return OrderChange(paid, events, proof)

    def deliver(
        self, order: Order, ciphertext_digest: str, now: datetime, *, ttl: timedelta = DEFAULT_DELIVERY_TTL
    ) -> OrderChange:
        """Paid -> Delivered: release escrow (seller + fee) and sign the delivery proof."""
        transition(order, "Delivered")
        assert order.ledger_proof_id is not None
        proof_body = delivery_proof(order_id=order.order_id, manifest_signature_id=order.manifest_signature_id,
                                    ledger_proof_id=order.ledger_proof_id, ciphertext_digest=ciphertext_digest,
                                    now=now, ttl=ttl)
        released = self._ledger.post(self._plan(order).release, now)
        signed = sign_delivery_proof(proof_body, self._signer)
        if self._sink is not None:
            self._sink(signed)
        delivered = transition(order, "Delivered", delivered_at=as_utc(now), delivery_proof_id=signed.proof_id)
        self._orders.save(delivered, expected_version=order.version)
        return OrderChange(delivered, [*released.events, delivery_issued_event(signed)], signed)

    @property
    def accounts(self) -> AccountNames:
        return self._names

    def plan(self, order: Order) -> CheckoutPlan:
        """The capture and release transactions of ``order`` (ids derive from the order id)."""
        return self._plan(order)

    def _plan(self, order: Order) -> CheckoutPlan:
        return checkout_plan(
            order_id=order.order_id, buyer_account=self._names.wallet(order.buyer, order.currency),
            escrow_account=self._names.escrow(order.currency),
            seller_account=self._names.wallet(order.seller, order.currency),
            platform_account=self._names.platform(order.currency), price_minor=order.price_minor,
            currency=order.currency, fee_bps=order.fee_bps,
        )
