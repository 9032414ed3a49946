"""Double-entry ledger.

Amounts are integers in minor units (cents). A transaction has one currency, at least two
postings, and sums to exactly zero. An account that forbids negative balances never goes
below zero: the service reads the balances, validates, and asks the repository to post
*conditionally on those balances* (one DynamoDB ``TransactWriteItems``; a lock in the fake);
if another posting got there first it re-reads and tries again. Re-posting a ``tx_id``
with the same content returns the original result; with other content it is refused.

Checkout fee rounding: ``fee = price * fee_bps // 10_000`` (rounded down, never above the
stated rate) and ``seller = price - fee``, so the postings always sum exactly to the price.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from pydantic import Field, StrictInt, ValidationError, field_validator

from hallmark._domain import DomainModel, EventDraft, UtcDatetime
from hallmark.canonical import as_utc, digest_of, to_rfc3339
from hallmark.errors import Conflict, DomainError, InvalidInput
from hallmark.governance.models import check_id
from hallmark.market.proofs import SignedProof, sign_proof
from hallmark.ports import Signer

MAX_MINOR = 2**53 - 1  # RFC 8785 / I-JSON safe integers
BPS_DENOMINATOR = 10_000
_CURRENCY = re.compile(r"^[A-Z]{3}$")


def check_currency(value: str) -> str:
    if not _CURRENCY.match(value):
        raise ValueError("currency must be an ISO 4217 code (three capital letters)")
    return value


class Account(DomainModel):
    account_id: str
    currency: str
    allow_negative: bool = False

    @field_validator("currency")
    @classmethod
    def _check_currency(cls, value: str) -> str:
        return check_currency(value)

    @field_validator("account_id")
    @classmethod
    def _account_id(cls, value: str) -> str:
        return check_id(value, "accountId")


class Posting(DomainModel):
    account: str
    amount_minor: StrictInt
    currency: str

    @field_validator("amount_minor")
    @classmethod
    def _amount(cls, value: int) -> int:
        if value == 0 or abs(value) > MAX_MINOR:
            raise ValueError(f"amount must be a non-zero integer within +/-{MAX_MINOR}")
        return value

    @field_validator("currency")
    @classmethod
    def _check_currency(cls, value: str) -> str:
        return check_currency(value)


class Transaction(DomainModel):
    tx_id: str
    postings: tuple[Posting, ...]
    memo: str = ""
    metadata: dict[str, str] = Field(default_factory=dict)

    @field_validator("tx_id")
    @classmethod
    def _tx_id(cls, value: str) -> str:
        return check_id(value, "txId")

    @property
    def digest(self) -> str:
        """sha256 of the canonical transaction: what makes a re-post "the same"."""
        return digest_of(self.to_json_dict())

    @property
    def currency(self) -> str:
        return self.postings[0].currency


class PostedTransaction(DomainModel):
    tx: Transaction
    digest: str
    balances_after: dict[str, int]
    posted_at: UtcDatetime


class PostOutcome(NamedTuple):
    posted: PostedTransaction
    replayed: bool


def parse_transaction(data: Mapping[str, Any]) -> Transaction:
    """Validate untrusted input; ``invalid_amount`` for non-integer or zero amounts."""
    try:
        return Transaction.model_validate(dict(data))
    except ValidationError as exc:
        errors = [{"loc": [str(p) for p in e["loc"]], "msg": e["msg"]} for e in exc.errors()]
        code = "invalid_amount" if any(e["loc"] and e["loc"][-1] in ("amountMinor", "amount_minor")
                                       for e in errors) else "invalid_input"
        raise DomainError(code, "malformed transaction", details={"errors": errors}) from None


def net_deltas(tx: Transaction) -> dict[str, int]:
    """Net change per account (an account may appear in several postings)."""
    deltas: dict[str, int] = {}
    for p in tx.postings:
        deltas[p.account] = deltas.get(p.account, 0) + p.amount_minor
    return deltas


def validate_transaction(tx: Transaction, accounts: Mapping[str, Account | None]) -> dict[str, int]:
    """Structural checks (no balances needed); returns :func:`net_deltas`."""
    if len(tx.postings) < 2:
        raise InvalidInput("a transaction needs at least two postings", {"txId": tx.tx_id})
    currencies = sorted({p.currency for p in tx.postings})
    if len(currencies) != 1:
        raise DomainError("mixed_currency", "one currency per transaction", details={"currencies": currencies})
    total = sum(p.amount_minor for p in tx.postings)
    if total != 0:
        raise DomainError("unbalanced", "postings must sum to zero", details={"txId": tx.tx_id, "sum": total})
    for p in tx.postings:
        account = accounts.get(p.account)
        if account is None:
            raise DomainError("unknown_account", f"account {p.account!r} does not exist", 404,
                              {"account": p.account})
        if account.currency != p.currency:
            raise DomainError("currency_mismatch", f"account {p.account!r} holds {account.currency}",
                              details={"account": p.account, "currency": p.currency})
    return net_deltas(tx)


def balances_after(
    tx: Transaction, accounts: Mapping[str, Account], balances: Mapping[str, int]
) -> dict[str, int]:
    """New balances of the touched accounts; ``negative_balance`` where an account forbids it,
    ``balance_out_of_range`` beyond the I-JSON safe integers."""
    result: dict[str, int] = {}
    for account_id, delta in net_deltas(tx).items():
        new = balances.get(account_id, 0) + delta
        if abs(new) > MAX_MINOR:  # balances stay I-JSON safe integers (they are signed, RFC 8785)
            raise DomainError("balance_out_of_range", f"account {account_id!r} would leave +/-{MAX_MINOR}", 422,
                              {"account": account_id, "balance": balances.get(account_id, 0), "delta": delta})
        if new < 0 and not accounts[account_id].allow_negative:
            raise DomainError("negative_balance", f"account {account_id!r} cannot go below zero",
                              details={"account": account_id, "balance": balances.get(account_id, 0),
                                       "delta": delta})
        result[account_id] = new
    return result


# --------------------------------------------------------------------------- repository


class BalanceConflict(Conflict):
    """A balance changed between read and write: re-read and try again."""

    def __init__(self, accounts: Iterable[str] = ()) -> None:
        super().__init__("balances changed concurrently", {"accounts": sorted(accounts)})


class LedgerRepository(Protocol):
    def get_account(self, account_id: str) -> Account | None: ...

    def create_account(self, account: Account) -> None:
        """``Conflict`` if the account exists."""
        ...

    def balances(self, account_ids: Iterable[str]) -> dict[str, int]:
        """Strongly consistent current balances (0 for an account with no postings)."""
        ...

    def get_transaction(self, tx_id: str) -> PostedTransaction | None: ...

    def post(self, tx: Transaction, expected_balances: Mapping[str, int], *, posted_at: datetime) -> PostOutcome:
        """All or nothing: every touched account's balance must still equal
        ``expected_balances`` (else :class:`BalanceConflict`) and ``tx_id`` must be new; then
        every balance becomes expected + net delta and the transaction is stored.

        If ``tx_id`` is already stored: the stored result with ``replayed=True`` when its
        digest matches (idempotent replay), else ``tx_id_reused``.
        """
        ...


def replay_or_refuse(existing: PostedTransaction, tx: Transaction) -> PostedTransaction:
    """The stored result for a re-posted ``tx_id``; ``tx_id_reused`` if the content differs."""
    if existing.digest != tx.digest:
        raise DomainError("tx_id_reused", f"transaction {tx.tx_id!r} was posted with other content",
                          details={"txId": tx.tx_id})
    return existing


# --------------------------------------------------------------------------- service


@dataclass(frozen=True)
class PostingResult:
    posted: PostedTransaction
    replayed: bool
    events: list[EventDraft] = field(default_factory=list)


def _default_backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, min(0.05, 0.002 * 2**attempt)))


class LedgerService:
    def __init__(
        self,
        repo: LedgerRepository,
        *,
        max_attempts: int = 50,
        backoff: Callable[[int], None] = _default_backoff,
    ) -> None:
        self._repo = repo
        self._max_attempts = max_attempts
        self._backoff = backoff

    @property
    def repository(self) -> LedgerRepository:
        return self._repo

    def open_account(self, account: Account) -> Account:
        """Create the account, or return it if an identical one exists (idempotent)."""
        existing = self._repo.get_account(account.account_id)
        if existing is None:
            try:
                self._repo.create_account(account)
                return account
            except Conflict:
                existing = self._repo.get_account(account.account_id)
        if existing != account:
            raise Conflict(f"account {account.account_id!r} exists with other settings",
                           {"account": account.account_id})
        return existing

    def balance(self, account_id: str) -> int:
        return self._repo.balances([account_id])[account_id]

    def post(self, tx: Transaction, now: datetime, *, actor: str = "system") -> PostingResult:
        """Validate and post ``tx`` exactly once; retries on concurrent balance changes."""
        now = as_utc(now)
        for attempt in range(self._max_attempts):
            existing = self._repo.get_transaction(tx.tx_id)
            if existing is not None:
                posted = replay_or_refuse(existing, tx)
                return PostingResult(posted, True, [ledger_posted_event(posted, actor)])
            accounts = {p.account: self._repo.get_account(p.account) for p in tx.postings}
            validate_transaction(tx, accounts)
            known = {k: v for k, v in accounts.items() if v is not None}
            balances = self._repo.balances(known)
            balances_after(tx, known, balances)  # refuses a negative balance before writing
            try:
                posted, replayed = self._repo.post(tx, balances, posted_at=now)
            except BalanceConflict:
                self._backoff(attempt)
                continue
            return PostingResult(posted, replayed, [ledger_posted_event(posted, actor)])
        raise Conflict("the ledger is busy: too many concurrent postings, retry later",
                       {"txId": tx.tx_id, "attempts": self._max_attempts})


def ledger_posted_event(posted: PostedTransaction, actor: str = "system") -> EventDraft:
    proof = ledger_proof(posted)
    return EventDraft("LedgerPosted", posted.tx.tx_id, {
        "postings": proof["postings"], "memo": posted.tx.memo, "metadata": posted.tx.metadata,
        "balancesAfterDigest": proof["balancesAfterDigest"], "digest": posted.digest,
    }, actor=actor)


# --------------------------------------------------------------------------- proof


def ledger_proof(posted: PostedTransaction) -> dict[str, Any]:
    """``{txId, postings, balancesAfterDigest, ts}``; the digest is sha256 of the RFC 8785
    object ``{account: balance after}`` of the touched accounts."""
    return {
        "txId": posted.tx.tx_id,
        "postings": [p.to_json_dict() for p in posted.tx.postings],
        "balancesAfterDigest": digest_of(posted.balances_after),
        "ts": to_rfc3339(posted.posted_at, "auto"),
    }


def sign_ledger_proof(posted: PostedTransaction, signer: Signer) -> SignedProof:
    """Sign :func:`ledger_proof` with the proof key; ``proof_id`` is ``ledger-<sha256>``."""
    return sign_proof("ledger", ledger_proof(posted), signer)


# --------------------------------------------------------------------------- checkout


@dataclass(frozen=True)
class CheckoutPlan:
    """``capture``: buyer -> escrow at payment; ``release``: escrow -> seller + platform fee."""

    capture: Transaction
    release: Transaction
    fee_minor: int
    seller_minor: int


def split_fee(price_minor: int, fee_bps: int) -> tuple[int, int]:
    """``(fee, seller)`` with ``fee = price * bps // 10_000`` (round down) and an exact sum."""
    if isinstance(price_minor, bool) or not isinstance(price_minor, int) or not 0 < price_minor <= MAX_MINOR:
        raise DomainError("invalid_amount", "price must be a positive integer in minor units",
                          details={"priceMinor": price_minor})
    if isinstance(fee_bps, bool) or not isinstance(fee_bps, int) or not 0 <= fee_bps <= BPS_DENOMINATOR:
        raise InvalidInput("fee must be 0..10000 basis points", {"feeBps": fee_bps})
    fee = price_minor * fee_bps // BPS_DENOMINATOR
    return fee, price_minor - fee


def checkout_plan(
    *,
    order_id: str,
    buyer_account: str,
    escrow_account: str,
    seller_account: str,
    platform_account: str,
    price_minor: int,
    currency: str,
    fee_bps: int,
) -> CheckoutPlan:
    fee, seller = split_fee(price_minor, fee_bps)
    meta = {"orderId": order_id}
    capture = Transaction(tx_id=f"{order_id}:capture", memo="checkout: buyer to escrow", metadata=meta, postings=(
        Posting(account=buyer_account, amount_minor=-price_minor, currency=currency),
        Posting(account=escrow_account, amount_minor=price_minor, currency=currency),
    ))
    release_postings = [
        Posting(account=escrow_account, amount_minor=-price_minor, currency=currency),
        Posting(account=seller_account, amount_minor=seller, currency=currency),
    ]
    if fee:
        release_postings.append(Posting(account=platform_account, amount_minor=fee, currency=currency))
    release = Transaction(tx_id=f"{order_id}:release", memo="delivery: escrow to seller and platform fee",
                          metadata=meta, postings=tuple(release_postings))
    return CheckoutPlan(capture, release, fee, seller)
