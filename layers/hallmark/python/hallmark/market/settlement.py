"""Settlement plans: multi-party revenue splits in basis points, approved by multisig
(``GovernanceService.open_settlement`` with :func:`plan_digest`) before any payout.

Split rounding (largest remainder): each party first gets ``amount * bps // 10_000``; the
few minor units left over go one each to the parties with the largest remainders (ties in
plan order). The payouts always sum exactly to the amount.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import StrictInt, ValidationError, field_validator

from hallmark._domain import DomainModel, EventDraft
from hallmark.canonical import digest_of
from hallmark.errors import DomainError
from hallmark.governance.models import SettlementApproval, check_id
from hallmark.market.ledger import (
    BPS_DENOMINATOR,
    MAX_MINOR,
    LedgerService,
    Posting,
    PostingResult,
    Transaction,
    check_currency,
)


class Share(DomainModel):
    party: str
    account: str
    bps: StrictInt


class SettlementPlan(DomainModel):
    settlement_id: str
    currency: str
    source_account: str
    shares: tuple[Share, ...]
    memo: str = ""

    @field_validator("currency")
    @classmethod
    def _check_currency(cls, value: str) -> str:
        return check_currency(value)


def parse_settlement_plan(data: dict[str, Any]) -> SettlementPlan:
    try:
        plan = SettlementPlan.model_validate(data)
    except ValidationError as exc:
        errors = [{"loc": [str(p) for p in e["loc"]], "msg": e["msg"]} for e in exc.errors()]
        raise DomainError("invalid_plan", "malformed settlement plan", details={"errors": errors}) from None
    validate_settlement_plan(plan)
    return plan


def validate_settlement_plan(plan: SettlementPlan) -> None:
    """Shares are positive integers summing to 10,000 bps; parties and accounts distinct;
    the source account is not one of the payees."""
    problems: list[str] = []
    try:
        check_id(plan.settlement_id, "settlementId")
        for share in plan.shares:
            check_id(share.party, "party")
            check_id(share.account, "account")
    except ValueError as exc:
        problems.append(str(exc))
    if not plan.shares:
        problems.append("a plan needs at least one share")
    if any(s.bps <= 0 for s in plan.shares):
        problems.append("every share must be a positive number of basis points")
    total = sum(s.bps for s in plan.shares)
    if total != BPS_DENOMINATOR:
        problems.append(f"shares sum to {total} basis points, not {BPS_DENOMINATOR}")
    parties = [s.party for s in plan.shares]
    if len(set(parties)) != len(parties):
        problems.append("parties must be distinct")
    accounts = [s.account for s in plan.shares]
    if len(set(accounts)) != len(accounts):
        problems.append("payout accounts must be distinct")
    if plan.source_account in accounts:
        problems.append("the source account cannot be a payee")
    if problems:
        raise DomainError("invalid_plan", "; ".join(problems), details={"problems": problems, "sumBps": total})


def plan_digest(plan: SettlementPlan) -> str:
    """sha256 of the canonical plan: what approvers sign (``planDigest``)."""
    return digest_of(plan.to_json_dict())


def split_amount(amount_minor: int, shares: tuple[Share, ...]) -> list[tuple[Share, int]]:
    """Largest-remainder split of ``amount_minor`` by basis points (exact sum)."""
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or not 0 < amount_minor <= MAX_MINOR:
        raise DomainError("invalid_amount", "amount must be a positive integer in minor units",
                          details={"amountMinor": amount_minor})
    base = [amount_minor * s.bps // BPS_DENOMINATOR for s in shares]
    remainders = [amount_minor * s.bps % BPS_DENOMINATOR for s in shares]
    left = amount_minor - sum(base)
    order = sorted(range(len(shares)), key=lambda i: (-remainders[i], i))
    for i in order[:left]:
        base[i] += 1
    return list(zip(shares, base, strict=True))


def payout_transaction(
    plan: SettlementPlan, amount_minor: int, approval: SettlementApproval, payout_id: str
) -> Transaction:
    """The payout postings (source -> each party), only for a plan approved by multisig."""
    validate_settlement_plan(plan)
    if (approval.settlement_id != plan.settlement_id or approval.plan_digest != plan_digest(plan)
            or approval.status != "Applied"):
        raise DomainError("not_approved", "the settlement plan has no multisig approval for this content",
                          details={"settlementId": plan.settlement_id, "status": approval.status})
    postings = [Posting(account=plan.source_account, amount_minor=-amount_minor, currency=plan.currency)]
    postings += [Posting(account=share.account, amount_minor=amount, currency=plan.currency)
                 for share, amount in split_amount(amount_minor, plan.shares) if amount]
    return Transaction(tx_id=payout_id, postings=tuple(postings), memo=plan.memo or "settlement payout",
                       metadata={"settlementId": plan.settlement_id, "planDigest": approval.plan_digest})


@dataclass(frozen=True)
class PayoutResult:
    posting: PostingResult
    events: list[EventDraft] = field(default_factory=list)


def post_payout(
    ledger: LedgerService,
    plan: SettlementPlan,
    amount_minor: int,
    approval: SettlementApproval,
    payout_id: str,
    now: datetime,
    *,
    actor: str = "system",
) -> PayoutResult:
    """Post the payout through the ledger; events: ``LedgerPosted`` then ``PayoutPosted``."""
    tx = payout_transaction(plan, amount_minor, approval, payout_id)
    result = ledger.post(tx, now, actor=actor)
    payout = EventDraft("PayoutPosted", plan.settlement_id, {
        "txId": tx.tx_id, "amountMinor": amount_minor, "currency": plan.currency,
        "payouts": [{"party": s.party, "account": s.account, "amountMinor": a}
                    for s, a in split_amount(amount_minor, plan.shares)],
        "planDigest": approval.plan_digest,
    }, actor=actor)
    return PayoutResult(result, [*result.events, payout])
