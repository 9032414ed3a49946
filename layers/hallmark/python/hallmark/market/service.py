"""The marketplace application service (DESIGN.md flow 4): listings, wallets, checkout, the
ArtifactPublisher, the buyer's view of an order, and settlement plans with multisig payouts.

Every step is resumable and records its audit events with deterministic ids:

* An order id derives from the buyer and the checkout's idempotency key, and ledger
  transaction ids derive from the order id, so a retried checkout resumes the same order and
  posts nothing twice (on top of the Powertools idempotency record at the HTTP edge).
* Proofs are stored before the order that cites them is saved.
* After any step the events of the order's whole history are (re-)emitted; the audit log drops
  the duplicates by id, so a crash between a state change and its audit record loses nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from hallmark._domain import EventDraft, Principal, emit_by_flow
from hallmark.access import ORDER_READERS, may_read, require_order_reader, require_settlement_reader
from hallmark.canonical import as_utc, parse_rfc3339, sha256_hex, to_rfc3339
from hallmark.docstore import DocStore
from hallmark.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from hallmark.governance.models import ApprovalForm, SettlementApproval, check_id
from hallmark.market.delivery import DEFAULT_DELIVERY_TTL, delivery_issued_event, encryption_context
from hallmark.market.ledger import (
    Account,
    LedgerRepository,
    LedgerService,
    PostedTransaction,
    Posting,
    Transaction,
    ledger_posted_event,
    sign_ledger_proof,
)
from hallmark.market.orders import AccountNames, Order, OrderService
from hallmark.market.ports import (
    ArtifactSource,
    DeliveryQueue,
    DeliveryStore,
    Encryptor,
    SettlementGovernance,
)
from hallmark.market.proofs import SignedProof
from hallmark.market.settlement import (
    SettlementPlan,
    Share,
    parse_settlement_plan,
    plan_digest,
    post_payout,
)
from hallmark.market.store import ORDER, DocOrderRepository, ProofStore
from hallmark.pagination import paginate, scan_kind
from hallmark.ports import AuditEmitter, Signer

LISTING = "listing"  # documents written by the release pipeline (hallmark.release.publish)
PACKAGE = "package"
PLAN = "settlement_plan"
NAMESPACE = uuid.UUID("0c3f7d1e-5b9a-4f62-8e21-7a4d9c1b2e55")
DEFAULT_URL_TTL = timedelta(minutes=5)


def order_id_for(buyer: str, idempotency_key: str) -> str:
    """The order a checkout makes: one per buyer and idempotency key."""
    name = "\n".join((buyer, idempotency_key))
    return f"ord-{uuid.uuid5(NAMESPACE, name)}"


def delivery_key(order_id: str, ciphertext_digest: str) -> str:
    """Object key of an encrypted delivery: named by its digest, so a retried publish never
    overwrites the ciphertext that a saved delivery proof cites."""
    return f"orders/{order_id}/{ciphertext_digest}.esdk"


def funding_account(currency: str) -> str:
    """External funding (top-ups come from here; it may go negative)."""
    return f"funding:{currency}"


class Catalogue:
    """The listings the release pipeline published, with their artifact's digest."""

    def __init__(self, docs: DocStore) -> None:
        self._docs = docs

    def listing(self, listing_id: str) -> dict[str, Any]:
        return self._view(self.doc(listing_id))

    def listings(self, limit: int = 100, next_token: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        """Oldest first, a page at a time (``GET /listings``, :mod:`hallmark.pagination`)."""
        docs, token = paginate(scan_kind(self._docs, LISTING), key=lambda d: (d.get("createdAt") or "", d["listingId"]),
                               limit=limit, next_token=next_token, route="GET /listings")
        return [self._view(d) for d in docs], token

    def doc(self, listing_id: str) -> dict[str, Any]:
        doc = self._docs.get(LISTING, listing_id)
        if doc is None:
            raise NotFound("listing", listing_id)
        return doc

    def artifact_of(self, listing: dict[str, Any]) -> dict[str, Any]:
        """``{sha256, name, version}`` of the package a listing sells (its manifest names that sha256)."""
        package = self._docs.get(PACKAGE, listing["packageId"]) or {}
        meta = package.get("meta") or {}
        return {"sha256": meta.get("sha256"), "name": package.get("filename"), "version": meta.get("version")}

    def _view(self, doc: dict[str, Any]) -> dict[str, Any]:
        artifact = self.artifact_of(doc)
        # The DocStore reports its own record version as "version"; the package version
        # comes from the package itself.
        return {
            "listingId": doc["listingId"], "packageId": doc["packageId"], "name": doc["name"],
            "version": artifact["version"], "seller": doc["seller"], "price": doc["price"], "currency": doc["currency"],
            "tier": doc.get("tier"), "status": doc.get("status", "Active"), "createdAt": doc.get("createdAt"),
            "manifestSignatureId": doc["manifestSignatureId"], "manifestDigest": doc["manifestDigest"],
            "manifestRef": doc.get("manifestRef"), "artifactSha256": artifact["sha256"],
            "artifactName": artifact["name"],
        }


class MarketService:
    def __init__(
        self,
        docs: DocStore,
        ledger: LedgerRepository,
        signer: Signer,
        audit: AuditEmitter,
        *,
        fee_bps: int = 500,
        delivery_ttl: timedelta = DEFAULT_DELIVERY_TTL,
        url_ttl: timedelta = DEFAULT_URL_TTL,
        accounts: AccountNames | None = None,
    ) -> None:
        self._docs = docs
        self._catalogue = Catalogue(docs)
        self._signer = signer
        self._audit = audit
        self._names = accounts or AccountNames()
        self._ledger = LedgerService(ledger)
        self._proofs = ProofStore(docs)
        self._order_repo = DocOrderRepository(docs)
        self._orders = OrderService(self._order_repo, self._ledger, signer, fee_bps=fee_bps, accounts=self._names,
                                    proof_sink=self._proofs.put)
        self._delivery_ttl = delivery_ttl
        self._url_ttl = url_ttl

    @property
    def ledger(self) -> LedgerService:
        return self._ledger

    @property
    def accounts(self) -> AccountNames:
        return self._names

    # ------------------------------------------------------------------ listings
    @property
    def catalogue(self) -> Catalogue:
        return self._catalogue

    def _listing_doc(self, listing_id: str) -> dict[str, Any]:
        return self._catalogue.doc(listing_id)

    # ------------------------------------------------------------------ wallets
    def deposit(self, *, party: str, amount_minor: int, currency: str, deposit_id: str, actor: str,
                now: datetime) -> dict[str, Any]:
        """Top up ``party``'s wallet from the external funding account: one balanced
        transaction, idempotent on ``deposit_id``."""
        if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
            raise DomainError("invalid_amount", "a deposit is a positive integer in minor units",
                              details={"amountMinor": amount_minor})
        for name, value in (("party", party), ("depositId", deposit_id)):
            try:
                check_id(value, name)
            except ValueError as exc:
                raise InvalidInput(str(exc), {"field": name}) from None
        wallet = self._names.wallet(party, currency)
        self._open(Account(account_id=funding_account(currency), currency=currency, allow_negative=True))
        self._open(Account(account_id=wallet, currency=currency))
        tx = Transaction(tx_id=f"deposit:{deposit_id}", memo="wallet top-up", metadata={"party": party}, postings=(
            Posting(account=funding_account(currency), amount_minor=-amount_minor, currency=currency),
            Posting(account=wallet, amount_minor=amount_minor, currency=currency),
        ))
        result = self._ledger.post(tx, now, actor=actor)
        proof = sign_ledger_proof(result.posted, self._signer)
        self._proofs.put(proof)
        self._emit([_with_proof(e, proof) for e in result.events])
        return {"txId": tx.tx_id, "replayed": result.replayed, "account": wallet,
                "balanceMinor": self._ledger.balance(wallet), "ledgerProof": proof.to_json_dict()}

    def wallet(self, party: str, currency: str) -> dict[str, Any]:
        account = self._names.wallet(party, currency)
        known = self._ledger.repository.get_account(account) is not None
        return {"party": party, "currency": currency, "account": account,
                "balanceMinor": self._ledger.balance(account) if known else 0}

    def _open(self, account: Account) -> None:
        self._ledger.open_account(account)

    # ------------------------------------------------------------------ checkout
    def checkout(self, *, listing_id: str, buyer: str, idempotency_key: str, now: datetime,
                 queue: DeliveryQueue) -> dict[str, Any]:
        """Place (or resume) the buyer's order and pay it (buyer -> escrow); hand it to the
        ArtifactPublisher. Returns the order view with its signed ledger proof."""
        listing = self._listing_doc(listing_id)
        if listing.get("status", "Active") != "Active":
            raise Conflict("the listing is not for sale", {"listingId": listing_id, "status": listing.get("status")},
                           code="listing_inactive")
        order_id = order_id_for(buyer, idempotency_key)
        order = self._order_repo.get(order_id)
        if order is None:
            order = self._place(order_id, listing, buyer, now)
        elif order.listing_id != listing_id or order.buyer != buyer:
            raise DomainError("idempotency_key_reused", "this Idempotency-Key was used for another checkout",
                              422, {"orderId": order_id})
        if order.status == "Placed":
            # Nothing is audited before the payment succeeds: a refused (402) checkout leaves an
            # unpaid order record and no OrderPlaced; a retry after a top-up pays and audits it.
            try:
                change = self._orders.pay(order, now)
            except DomainError as err:
                wallet = self._names.wallet(buyer, order.currency)
                if err.code == "negative_balance" and err.details.get("account") == wallet:
                    raise DomainError("insufficient_funds", "the buyer's wallet cannot pay this order", 402,
                                      {"orderId": order_id, "account": wallet, "priceMinor": order.price_minor,
                                       "balanceMinor": err.details.get("balance")}) from None
                raise
            order = change.order
        self._emit(self.history(order))  # OrderPlaced, then the capture (ids are deterministic: no repeats)
        if order.status == "Paid":
            queue.enqueue(order.order_id)
        return self.order_view(order.order_id, _System(buyer), None, None, now)

    def _place(self, order_id: str, listing: dict[str, Any], buyer: str, now: datetime) -> Order:
        currency = listing["currency"]
        self._open(Account(account_id=self._names.wallet(buyer, currency), currency=currency))
        try:
            return self._orders.place(
                order_id=order_id, listing_id=listing["listingId"], buyer=buyer, seller=listing["seller"],
                price_minor=listing["price"], currency=currency,
                manifest_signature_id=listing["manifestSignatureId"], manifest_digest=listing["manifestDigest"],
                now=now,
            ).order
        except Conflict:
            twin = self._order_repo.get(order_id)  # a concurrent request with the same key placed it
            if twin is None:
                raise
            return twin

    # ------------------------------------------------------------------ ArtifactPublisher
    def publish(self, order_id: str, *, source: ArtifactSource, store: DeliveryStore, encryptor: Encryptor,
                now: datetime) -> dict[str, Any]:
        """Encrypt the artifact for the order (context: orderId, buyer, manifestDigest), store
        it, release escrow to the seller and the fee, and sign the delivery proof."""
        order = self._orders.load(order_id)
        if order.status == "Placed":
            raise Conflict("the order is not paid", {"orderId": order_id}, code="not_paid")
        if order.status == "Paid":
            listing = self._listing_doc(order.listing_id)
            expected = self._catalogue.artifact_of(listing)["sha256"]
            artifact = listing["artifact"]
            plaintext = source.read(artifact["bucket"], artifact["key"], artifact.get("versionId"))
            if sha256_hex(plaintext) != expected:
                raise DomainError("artifact_mismatch", "the stored artifact is not the one the manifest signed", 409,
                                  {"listingId": listing["listingId"], "expected": expected})
            context = encryption_context(order.order_id, order.buyer, order.manifest_digest)
            ciphertext = encryptor.encrypt(plaintext, context)
            digest = sha256_hex(ciphertext)
            store.put(delivery_key(order.order_id, digest), ciphertext, context)
            order = self._orders.deliver(order, digest, now, ttl=self._delivery_ttl).order
        self._emit(self.history(order))
        return {"orderId": order.order_id, "status": order.status, "deliveryProofId": order.delivery_proof_id}

    # ------------------------------------------------------------------ views
    def list_orders(self, caller: Principal, *, status: str | None = None, limit: int = 50,
                    next_token: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        """``GET /orders``: the caller's own orders (auditors and superadmins: every order),
        newest first, a page at a time."""
        orders = [o for o in (Order.model_validate(d) for d in scan_kind(self._docs, ORDER))
                  if may_read(caller, [o.buyer], ORDER_READERS) and (status is None or o.status == status)]
        page, token = paginate(orders, key=lambda o: (o.placed_at.isoformat(), o.order_id), limit=limit,
                               next_token=next_token, route="GET /orders", newest_first=True,
                               filters={"status": status})
        return [o.to_json_dict() for o in page], token

    def order_view(self, order_id: str, caller: Principal, store: DeliveryStore | None, key_arn: str | None,
                   now: datetime) -> dict[str, Any]:
        """The order, its proofs and its delivery. Only the buyer (or an auditor/superadmin)
        sees it; only the buyer gets a download URL (valid for minutes, never past the proof)."""
        order = self._order_repo.get(order_id)
        if order is None:
            raise NotFound("order", order_id)
        require_order_reader(caller, order.buyer, order_id)
        ledger = self._proofs.get(order.ledger_proof_id)
        delivery = self._proofs.get(order.delivery_proof_id)
        view: dict[str, Any] = {
            "orderId": order.order_id, "status": order.status, "order": order.to_json_dict(),
            "proofs": {"ledger": ledger.to_json_dict() if ledger else None,
                       "delivery": delivery.to_json_dict() if delivery else None},
            "delivery": None,
        }
        if delivery is None:
            view["delivery"] = {"status": "Pending" if order.status == "Paid" else "NotPaid"}
            return view
        expires = parse_rfc3339(delivery.proof["expiresAt"])
        digest = delivery.proof["ciphertextDigest"]
        info: dict[str, Any] = {
            "status": "Issued" if as_utc(now) < expires else "Expired",
            "key": delivery_key(order.order_id, digest), "ciphertextDigest": digest, "keyArn": key_arn,
            "encryptionContext": encryption_context(order.order_id, order.buyer, order.manifest_digest),
            "expiresAt": delivery.proof["expiresAt"], "url": None, "urlExpiresAt": None,
        }
        if store is not None:
            info["bucket"] = store.bucket
            remaining = int((expires - as_utc(now)).total_seconds())
            if caller.sub == order.buyer and remaining > 0:
                ttl = min(remaining, int(self._url_ttl.total_seconds()))
                info["url"] = store.presign(info["key"], ttl)
                info["urlExpiresAt"] = to_rfc3339(as_utc(now) + timedelta(seconds=ttl), "auto")
        view["delivery"] = info
        return view

    def history(self, order: Order) -> list[EventDraft]:
        """Every audit event of the order so far, exactly as the steps first drafted them."""
        events = [EventDraft("OrderPlaced", order.order_id, {
            "listingId": order.listing_id, "buyer": order.buyer, "seller": order.seller,
            "priceMinor": order.price_minor, "currency": order.currency, "feeBps": order.fee_bps,
            "manifestSignatureId": order.manifest_signature_id,
        }, actor=order.buyer)]
        plan = self._orders.plan(order)
        if order.status in ("Paid", "Delivered") and order.ledger_proof_id:
            capture = self._posted(plan.capture.tx_id)
            event = ledger_posted_event(capture, actor=order.buyer)
            events.append(EventDraft(event.type, event.subject, {**event.data, "ledgerProofId": order.ledger_proof_id},
                                     event.actor))
        if order.status == "Delivered":
            events.append(ledger_posted_event(self._posted(plan.release.tx_id)))
            signed = self._proofs.get(order.delivery_proof_id)
            if signed is not None:
                events.append(delivery_issued_event(signed))
        return events

    def _posted(self, tx_id: str) -> PostedTransaction:
        posted = self._ledger.repository.get_transaction(tx_id)
        if posted is None:
            raise Conflict("the ledger has no such transaction", {"txId": tx_id})
        return posted

    # ------------------------------------------------------------------ settlements
    def plan_settlement(self, request: Mapping[str, Any], caller: Principal, governance: SettlementGovernance,
                        now: datetime) -> dict[str, Any]:
        """Store a multi-party split of a seller's revenue (basis points summing to 10,000) and
        open its multisig approval (``SettlementPlanned``, ``ApprovalRequested``)."""
        listing_id = request.get("listingId")
        if listing_id:
            listing = self._listing_doc(str(listing_id))
            currency = str(listing["currency"])
            seller: str | None = str(listing["seller"])
            source = self._names.wallet(str(listing["seller"]), currency)
        elif request.get("sellerAccount"):
            source = str(request["sellerAccount"])
            account = self._ledger.repository.get_account(source)
            if account is None:
                raise NotFound("account", source, code="unknown_account")
            currency = account.currency
            seller = None  # an account is the caller's only if it is exactly the caller's wallet
        else:
            raise InvalidInput("a settlement names a listingId or a sellerAccount", {"field": "listingId"})
        owns = source == self._names.wallet(caller.sub, currency) and (seller is None or seller == caller.sub)
        if not owns and "superadmin" not in caller.roles:
            raise Forbidden("only the seller or a superadmin may plan this settlement",
                            {"sourceAccount": source, "caller": caller.sub})
        parties = request.get("parties") or []
        shares = []
        for p in parties if isinstance(parties, list) else []:
            if not isinstance(p, Mapping):
                raise DomainError("invalid_plan", "each party is an object {party, account?, bps}")
            party = str(p.get("party") or "")
            shares.append({"party": party, "account": p.get("account") or self._names.payout(party, currency),
                           "bps": p.get("bps")})
        settlement_id = str(request.get("settlementId") or f"stl-{uuid.uuid4()}")
        plan = parse_settlement_plan({"settlementId": settlement_id, "currency": currency, "sourceAccount": source,
                                      "shares": shares, "memo": str(request.get("memo") or "")})
        digest = plan_digest(plan)
        for share in plan.shares:
            self._open(Account(account_id=share.account, currency=currency))
        doc = {**plan.to_json_dict(), "planDigest": digest, "listingId": listing_id, "proposedBy": caller.sub,
               "createdAt": to_rfc3339(now, "auto")}
        try:
            self._docs.create(PLAN, settlement_id, doc)
        except Conflict:
            stored = self._docs.get(PLAN, settlement_id) or {}
            if stored.get("planDigest") != digest:
                raise Conflict("a settlement with this id exists with another plan",
                               {"settlementId": settlement_id}) from None
        summary = {"sourceAccount": source, "currency": currency, "listingId": listing_id,
                   "shares": [{"party": s.party, "account": s.account, "bps": s.bps} for s in plan.shares]}
        try:
            opened = governance.open_settlement(settlement_id=settlement_id, plan_digest=digest,
                                                proposed_by=caller.sub, now=now, plan_summary=summary)
            self._emit(opened.events)
        except Conflict:
            pass  # opened by an earlier attempt
        return self.settlement_view(settlement_id, governance)

    def approve_settlement(self, settlement_id: str, form: ApprovalForm | Mapping[str, Any], caller: Principal,
                           governance: SettlementGovernance, now: datetime) -> dict[str, Any]:
        """Record one approver's signed decision on the plan (``approve``/``reject``)."""
        self._plan(settlement_id)
        result = governance.record_approval(governance.load("settlement", settlement_id), form, caller.sub, now)
        self._emit(result.events)
        return {"outcome": result.outcome, **self.settlement_view(settlement_id, governance)}

    def payout(self, settlement_id: str, *, amount_minor: int, payout_id: str, caller: Principal,
               governance: SettlementGovernance, now: datetime) -> dict[str, Any]:
        """Pay ``amount_minor`` out of the source account by the approved split: one balanced
        transaction, idempotent on ``payout_id``; refused (``not_approved``) before multisig."""
        plan = self._plan(settlement_id)
        approval = governance.load("settlement", settlement_id)
        if not isinstance(approval, SettlementApproval):
            raise NotFound("settlement", settlement_id)
        try:
            check_id(payout_id, "payoutId")
        except ValueError as exc:
            raise InvalidInput(str(exc), {"field": "payoutId"}) from None
        result = post_payout(self._ledger, plan, amount_minor, approval, f"payout:{settlement_id}:{payout_id}", now,
                             actor=caller.sub)
        proof = sign_ledger_proof(result.posting.posted, self._signer)
        self._proofs.put(proof)
        self._emit([_with_proof(e, proof) if e.type == "LedgerPosted" else e for e in result.events])
        posted = result.posting.posted
        return {"settlementId": settlement_id, "txId": posted.tx.tx_id, "replayed": result.posting.replayed,
                "postings": [p.to_json_dict() for p in posted.tx.postings], "ledgerProof": proof.to_json_dict()}

    def settlement_view(self, settlement_id: str, governance: SettlementGovernance,
                        caller: Principal | None = None) -> dict[str, Any]:
        """The plan and its approval state; with ``caller``, only for those who may read it
        (hallmark.access: proposer, source-wallet owner, parties, approvers, auditors, superadmins)."""
        plan = self._plan(settlement_id)
        if caller is not None:
            doc = self._docs.get(PLAN, settlement_id) or {}
            listing_id = doc.get("listingId")
            owner = (self._listing_doc(str(listing_id)).get("seller") if listing_id
                     else self._names.wallet_owner(plan.source_account, plan.currency))
            require_settlement_reader(caller, settlement_id, proposed_by=doc.get("proposedBy"), source_owner=owner,
                                      parties=[s.party for s in plan.shares])
        approval = governance.load("settlement", settlement_id)
        return {"settlementId": settlement_id, "plan": plan.to_json_dict(), "planDigest": plan_digest(plan),
                "approval": {"status": approval.status, "threshold": approval.threshold,
                             "approvals": approval.count("approvals", "approve"),
                             "rejections": approval.count("approvals", "reject"),
                             "approvers": sorted(r.approver_id for r in approval.approvals)}}

    def _plan(self, settlement_id: str) -> SettlementPlan:
        doc = self._docs.get(PLAN, settlement_id)
        if doc is None:
            raise NotFound("settlement", settlement_id)
        return SettlementPlan(settlement_id=doc["settlementId"], currency=doc["currency"],
                              source_account=doc["sourceAccount"], memo=doc.get("memo", ""),
                              shares=tuple(Share.model_validate(s) for s in doc["shares"]))

    # ------------------------------------------------------------------ audit
    def _emit(self, events: list[EventDraft]) -> None:
        emit_by_flow(self._audit, events)


class _System:
    """A principal that sees the order as its buyer (the checkout answers the buyer)."""

    def __init__(self, sub: str) -> None:
        self.sub = sub
        self.roles: frozenset[str] = frozenset()


def _with_proof(event: EventDraft, proof: SignedProof) -> EventDraft:
    return EventDraft(event.type, event.subject, {**event.data, "ledgerProofId": proof.proof_id}, event.actor)
