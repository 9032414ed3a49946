"""The ceremony and purchase parts of a release bundle (``hallmark.bundle``): how they are
collected and how ``hallmark bundle verify`` checks them offline (``docs/wire-format.md`` 9.3, 9.4).

Both parts lean on the bundle's proved audit events: each fact that a signature alone cannot
give (a witness's key was registered before they signed, the deadline witnesses signed, the
tier was awarded to this package, the payment and the release of escrow were posted, the
delivery was issued) must be an audit event included in a signed checkpoint.

* ``ceremony``: ``{"artifactId", "tier", "ceremonies": [{"ceremonyId", "attestation"}],
  "witnesses": {<witnessId>: {"keyFingerprint", "publicKeyPem"}}}``; one ceremony per tier the
  package climbed (bronze, silver, gold), each with its signed provenance record (which carries
  every witness signature) and the witness registry entries whose keys signed.
* ``purchase``: ``{"orderId", "order", "ledgerProof", "deliveryProof"}``: the order as placed,
  the signed ledger proof of the payment (buyer -> escrow) and the signed delivery proof
  (ciphertext digest bound to the order, the manifest signature and the ledger proof).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from pydantic import ValidationError

from hallmark.canonical import canonical_bytes
from hallmark.ceremony.models import TIER_RULES, TIERS, Ceremony, ProvenanceAttestation, Witness
from hallmark.ceremony.provenance import WITNESS_PURPOSE, attestation_failure
from hallmark.dsse import DsseError, manifest_signature_id
from hallmark.market.ledger import BPS_DENOMINATOR
from hallmark.market.orders import Order
from hallmark.market.proofs import SignedProof, verify_proof
from hallmark.signing import b64decode, public_key_fingerprint, verify_signature

__all__ = ["Check", "collect_ceremony", "collect_purchase", "registered_before", "registry_key", "verify_ceremony",
           "verify_purchase", "witness_statement"]

Event = Mapping[str, Any]
WITNESS_REGISTRY_EVENTS: Final = frozenset({"WitnessRegistered", "WitnessRemoved"})
ORDER_EVENTS: Final = frozenset({"OrderPlaced", "LedgerPosted", "DeliveryIssued"})
ORDER_FIELDS: Final = ("listingId", "buyer", "seller", "priceMinor", "currency", "feeBps", "manifestSignatureId")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


class CeremonySource(Protocol):
    def get(self, ceremony_id: str) -> Ceremony | None: ...


class WitnessSource(Protocol):
    def get(self, witness_id: str) -> Witness | None: ...


#: ``(chain, keep) -> (items, uncovered)``: the chain's events that ``keep`` selects, each with
#: an inclusion proof against the chain's latest checkpoint (``hallmark.bundle.prove_events``).
Prover = Callable[[str, Callable[[Any], bool]], tuple[list[dict[str, Any]], int]]


# ----------------------------------------------------------------------------- shared


def _data(event: Event) -> Mapping[str, Any]:
    data = event.get("data")
    return data if isinstance(data, Mapping) else {}


def _seq(event: Event) -> int:
    seq = event.get("seq")
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else 0


def _proved(logged: Iterable[Event], chain: str, kind: str, subject: str | None = None,
            **data: Any) -> list[Event]:
    """The proved events of ``chain`` of type ``kind`` (about ``subject``) whose data has ``data``."""
    return sorted((e for e in logged if e.get("chain") == chain and e.get("type") == kind
                   and (subject is None or e.get("subject") == subject)
                   and all(_data(e).get(k) == v for k, v in data.items())), key=_seq)


def registered_before(logged: Iterable[Event], chain: str, who: str, fingerprint: object, before: int,
                      added: frozenset[str], removed: frozenset[str]) -> str | None:
    """Why key ``fingerprint`` of ``who`` was not registered (an ``added`` event about ``who``
    naming that key, not followed by a ``removed`` one) on the proved ``chain`` before seq
    ``before``; ``None`` when it was."""
    state: str | None = None
    for e in sorted((e for e in logged if e.get("chain") == chain and e.get("subject") == who), key=_seq):
        if _seq(e) >= before:
            break
        if _data(e).get("keyFingerprint") == fingerprint:
            state = "registered" if e.get("type") in added else "removed" if e.get("type") in removed else state
    if state is None:
        return f"no proved audit event registers key {fingerprint} for {who!r} before it signed"
    if state == "removed":
        return f"{who!r} was removed before it signed"
    return None


def registry_key(entries: object, fingerprint: object, who: str, what: str) -> tuple[bytes | None, str | None]:
    """The PEM of the registry entry (one ``{keyFingerprint, publicKeyPem}``, or a list of them)
    that holds key ``fingerprint``, or why there is none."""
    options = entries if isinstance(entries, list) else [entries]
    entry = next((e for e in options if isinstance(e, Mapping) and e.get("keyFingerprint") == fingerprint), None)
    if entry is None:
        return None, f"no registry entry for {what} {who!r} with key {fingerprint}"
    pem = str(entry.get("publicKeyPem", "")).encode()
    try:
        if public_key_fingerprint(pem) != fingerprint:
            return None, "the registry entry's key does not have the stated fingerprint"
    except (ValueError, TypeError) as exc:
        return None, f"unusable registry key: {exc}"
    return pem, None


# ----------------------------------------------------------------------------- ceremony


def witness_statement(record: Mapping[str, Any], deadline: object) -> bytes:
    """The bytes every witness of the ceremony signed (``hallmark.ceremony.ceremony_payload``),
    rebuilt from the provenance record and the deadline of its ``CeremonyInitiated`` event."""
    return canonical_bytes({
        "purpose": WITNESS_PURPOSE, "ceremonyId": record.get("ceremonyId"), "initiator": record.get("initiator"),
        "tier": record.get("tier"), "type": record.get("type"), "artifacts": sorted(record.get("artifacts") or []),
        "blessing": record.get("blessing"), "createdAt": record.get("timestamp"), "deadline": deadline,
    })


def collect_ceremony(package_id: str, ceremony_events: Iterable[Any], ceremonies: CeremonySource,
                     witnesses: WitnessSource, prove: Prover, pseudonym: Callable[[str], str] = str,
                     ) -> tuple[dict[str, Any] | None, list[dict[str, Any]], int]:
    """The ceremony part of ``package_id`` (None when it holds no tier), with the ceremony
    chain's events it rests on (proved) and how many of those no checkpoint covers yet."""
    awards = [e for e in ceremony_events if e.type == "TierAwarded" and e.subject == package_id]
    ids = sorted({str(e.data.get("ceremonyId")) for e in awards})
    found = [c for c in (ceremonies.get(i) for i in ids) if c is not None and c.provenance is not None]
    if not found:
        return None, [], 0
    found.sort(key=lambda c: TIERS.index(c.tier))
    registry: dict[str, dict[str, str]] = {}
    for c in found:
        for sig in c.witnesses:
            w = witnesses.get(sig.witness_id)
            if w is not None and w.key_fingerprint == sig.key_fingerprint:
                registry[sig.witness_id] = {"keyFingerprint": w.key_fingerprint, "publicKeyPem": w.public_key_pem}
    cids = {c.ceremony_id for c in found}
    wids = {s.witness_id for c in found for s in c.witnesses}
    wids |= {pseudonym(w) for w in wids}  # the chain names witnesses by pseudonym (docs/privacy.md)

    def keep(e: Any) -> bool:
        return bool(e.subject in cids or (e.subject == package_id and e.type == "TierAwarded")
                    or (e.subject in wids and e.type in WITNESS_REGISTRY_EVENTS))

    items, uncovered = prove("ceremony", keep)
    part = {"artifactId": package_id, "tier": found[-1].tier,
            "ceremonies": [{"ceremonyId": c.ceremony_id, "attestation": c.provenance.to_json_dict()}
                           for c in found if c.provenance is not None],
            "witnesses": dict(sorted(registry.items()))}
    return part, items, uncovered


def verify_ceremony(bundle: Mapping[str, Any], pem: bytes | None, package_id: str,
                    logged: list[Event]) -> list[Check]:
    """The ceremony checks (none when the bundle claims no tier)."""
    part = bundle.get("ceremony")
    if part is None:
        return []
    if not isinstance(part, Mapping) or not isinstance(part.get("ceremonies"), list) or not part["ceremonies"]:
        return [Check("ceremony", False, "the ceremony part is malformed or lists no ceremony")]
    if pem is None:
        return [Check("ceremony", False, "no proof.pem among the keys (the provenance signing key)")]
    if part.get("artifactId") != package_id:
        return [Check("ceremony", False, f"the ceremony part is about {part.get('artifactId')!r}, not {package_id!r}")]
    reg = part.get("witnesses")
    registry: Mapping[str, Any] = reg if isinstance(reg, Mapping) else {}
    checks: list[Check] = []
    verified: set[str] = set()
    for c in part["ceremonies"]:
        one, tier = _ceremony(c, registry, pem, package_id, logged)
        checks += one
        if tier is not None and all(x.ok for x in one):
            verified.add(tier)
    claimed = part.get("tier")
    if claimed not in TIERS:
        checks.append(Check("ceremony tier", False, f"{claimed!r} is not a tier"))
        return checks
    climb = TIERS[:TIERS.index(claimed) + 1]
    missing = [t for t in climb if t not in verified]
    highest = max(verified, key=TIERS.index) if verified else None
    if missing:
        detail = f"the bundle claims {claimed}; no verified ceremony awards {', '.join(missing)}"
    elif highest != claimed:
        detail = f"the bundle claims {claimed}, the verified ceremonies award {highest}"
    else:
        detail = f"{claimed}: each tier from bronze up awarded by a verified ceremony"
    checks.append(Check("ceremony tier", not missing and highest == claimed, detail))
    return checks


def _ceremony(c: object, registry: Mapping[str, Any], pem: bytes, package_id: str,
              logged: list[Event]) -> tuple[list[Check], str | None]:
    cid = c.get("ceremonyId") if isinstance(c, Mapping) else None
    label = f"ceremony {cid}"
    try:
        att = ProvenanceAttestation.model_validate(c.get("attestation") if isinstance(c, Mapping) else None)
    except ValidationError:
        return [Check(f"{label} provenance", False, "no readable signed provenance record")], None
    try:
        failure = attestation_failure(att, pem)
    except (DsseError, ValueError, TypeError) as exc:
        failure = str(exc)
    record = att.record
    tier = record.get("tier")
    if record.get("ceremonyId") != cid or tier not in TIER_RULES:
        return [Check(f"{label} provenance", False, "the record is of another ceremony, or of no tier")], None
    rule = TIER_RULES[tier]
    # a record that does not verify is still checked on (each altered field names its own failure),
    # but its tier is not counted: the caller counts a ceremony only when every check holds
    checks = [Check(f"{label} provenance", failure is None,
                    f"the provenance record does not verify with proof.pem ({failure})" if failure
                    else f"signed record {att.signature_id} verifies with proof.pem")]
    initiated = _proved(logged, "ceremony", "CeremonyInitiated", cid)
    if not initiated:
        return [*checks, Check(f"{label} witness statement", False,
                               "no proved CeremonyInitiated event (its deadline is part of what witnesses sign)")], tier
    statement = witness_statement(record, _data(initiated[0]).get("deadline"))
    if hashlib.sha256(statement).hexdigest() != record.get("witnessStatementDigest"):
        checks.append(Check(f"{label} witness statement", False,
                            "the record's witnessStatementDigest is not that of the ceremony's statement"))
    good: set[str] = set()
    sigs = record.get("witnessSignatures")
    for s in sigs if isinstance(sigs, list) else []:
        who = str(s.get("witnessId")) if isinstance(s, Mapping) else "?"
        reason = _witness_reason(s, statement, registry, str(cid), logged)
        checks.append(Check(f"{label} witness {who}", reason is None,
                            reason or "signs the ceremony statement with the key registered before it signed"))
        if reason is None:
            good.add(who)
    named = set(record.get("witnesses") or [])
    ok = len(good) >= rule.min_witnesses and good <= named
    checks.append(Check(f"{label} witnesses", ok, f"{len(good)} distinct registered witnesses signed, "
                        f"{rule.min_witnesses} needed for {tier}" + ("" if ok else " (not met)")))
    if len(record.get("artifacts") or []) < rule.min_artifacts:
        checks.append(Check(f"{label} artifacts", False, f"{tier} needs {rule.min_artifacts} artifacts"))
    if rule.requires_blessing:
        by = record.get("blessedBy")
        blessed = bool(by) and by != record.get("initiator") and bool(
            [e for e in _proved(logged, "ceremony", "BlessingGiven", cid) if e.get("actor") == by])
        checks.append(Check(f"{label} blessing", blessed, f"blessed by {by}, a proved BlessingGiven event" if blessed
                            else f"{tier} needs a superadmin's blessing (not the initiator's), proved on the log"))
    completed = _proved(logged, "ceremony", "CeremonyCompleted", cid, signatureId=att.signature_id, tier=tier)
    awarded = _proved(logged, "ceremony", "TierAwarded", package_id, ceremonyId=cid, signatureId=att.signature_id,
                      tier=tier)
    ok = package_id in (record.get("artifacts") or []) and bool(completed) and bool(awarded)
    checks.append(Check(f"{label} award", ok, f"{tier} awarded to {package_id} (proved CeremonyCompleted and "
                        "TierAwarded)" if ok else f"no proved CeremonyCompleted and TierAwarded of {tier} to "
                        f"{package_id} with signature {att.signature_id}"))
    return checks, tier


def _witness_reason(s: object, statement: bytes, registry: Mapping[str, Any], cid: str,
                    logged: list[Event]) -> str | None:
    if not isinstance(s, Mapping):
        return "not an object"
    who, fp = str(s.get("witnessId")), s.get("keyFingerprint")
    pem, reason = registry_key(registry.get(who), fp, who, "witness")
    if pem is None:
        return reason
    try:
        if not verify_signature(pem, statement, b64decode(str(s.get("signature")))):
            return "the witness signature does not verify over this ceremony's statement"
    except ValueError as exc:
        return f"unusable witness signature: {exc}"
    added = _proved(logged, "ceremony", "WitnessAdded", cid, witnessId=who, keyFingerprint=fp)
    if not added:
        return f"the WitnessAdded event of {who!r} is not among the proved audit events"
    return registered_before(logged, "ceremony", who, fp, _seq(added[0]), frozenset({"WitnessRegistered"}),
                             frozenset({"WitnessRemoved"}))


# ----------------------------------------------------------------------------- purchase


def capture_tx(order_id: str) -> str:
    return f"{order_id}:capture"


def release_tx(order_id: str) -> str:
    return f"{order_id}:release"


def collect_purchase(order: Order, ledger: SignedProof | None, delivery: SignedProof | None,
                     prove: Prover) -> tuple[dict[str, Any], list[dict[str, Any]], int]:
    """The purchase part of one order, with its market chain events (proved)."""
    oid = order.order_id
    subjects = {oid, capture_tx(oid), release_tx(oid)}
    items, uncovered = prove("market", lambda e: bool(e.subject in subjects and e.type in ORDER_EVENTS))
    view = order.to_json_dict()
    part = {"orderId": oid,
            "order": {k: view.get(k) for k in ("orderId", *ORDER_FIELDS, "manifestDigest", "status")},
            "ledgerProof": ledger.to_json_dict() if ledger else None,
            "deliveryProof": delivery.to_json_dict() if delivery else None}
    return part, items, uncovered


def verify_purchase(bundle: Mapping[str, Any], pem: bytes | None, envelope: Mapping[str, Any] | None,
                    digest: str | None, logged: list[Event], ciphertext: bytes | None = None) -> list[Check]:
    """The purchase checks (none when the bundle holds no purchase)."""
    part = bundle.get("purchase")
    if part is None:
        return []
    if not isinstance(part, Mapping) or not isinstance(part.get("order"), Mapping):
        return [Check("purchase", False, "the purchase part is malformed")]
    if pem is None:
        return [Check("purchase", False, "no proof.pem among the keys (the ledger and delivery proof key)")]
    order = part["order"]
    oid = str(order.get("orderId"))
    checks = [Check("purchase order", *_order_result(order, oid, envelope, digest, logged))]
    ledger, reason = _signed(part.get("ledgerProof"), "ledger", pem)
    if ledger is not None:
        reason = _ledger_reason(ledger, oid, logged)
    checks.append(Check("purchase ledger proof", reason is None, reason or
                        f"{ledger.proof_id if ledger else ''} verifies with proof.pem; its LedgerPosted event is proved"))
    checks.append(Check("purchase ledger balance", *_balance_result(order, ledger, oid, logged)))
    delivery, reason = _signed(part.get("deliveryProof"), "delivery", pem)
    if delivery is not None:
        reason = _delivery_reason(delivery, order, oid, ledger, logged, ciphertext)
    checks.append(Check("purchase delivery proof", reason is None, reason or
                        f"ciphertext sha256 {delivery.proof.get('ciphertextDigest') if delivery else ''} bound to "
                        f"{oid}, its ledger proof and the manifest signature; DeliveryIssued is proved"))
    return checks


def _signed(doc: object, kind: str, pem: bytes) -> tuple[SignedProof | None, str | None]:
    try:
        proof = SignedProof.model_validate(doc)
    except ValidationError:
        return None, f"no readable signed {kind} proof"
    if proof.kind != kind:
        return None, f"a {proof.kind} proof where a {kind} proof belongs"
    try:
        good = verify_proof(proof, pem)
    except ValueError:
        good = False
    return (proof, None) if good else (None, f"the {kind} proof's signature (or its id) does not verify with proof.pem")


def _order_result(order: Mapping[str, Any], oid: str, envelope: Mapping[str, Any] | None, digest: str | None,
                  logged: list[Event]) -> tuple[bool, str]:
    placed = _proved(logged, "market", "OrderPlaced", oid)
    if not placed:
        return False, f"no proved OrderPlaced event of {oid}"
    differ = [k for k in ORDER_FIELDS if order.get(k) != _data(placed[0]).get(k)]
    if differ:
        return False, f"the order's {', '.join(differ)} differ from its proved OrderPlaced event"
    if digest is None or order.get("manifestDigest") != digest:
        return False, f"the order is for manifest digest {order.get('manifestDigest')}, not this release's {digest}"
    try:
        sid = manifest_signature_id(envelope) if envelope is not None else None
    except DsseError:
        sid = None
    if order.get("manifestSignatureId") != sid:
        return False, "the order cites another manifest signature than this release's envelope"
    return True, f"{oid}: {order.get('priceMinor')} {order.get('currency')} for this release's manifest (proved)"


def _ledger_reason(ledger: SignedProof, oid: str, logged: list[Event]) -> str | None:
    if ledger.proof.get("txId") != capture_tx(oid):
        return f"the ledger proof is of transaction {ledger.proof.get('txId')}, not {capture_tx(oid)}"
    posted = _proved(logged, "market", "LedgerPosted", capture_tx(oid), ledgerProofId=ledger.proof_id)
    if not posted or _data(posted[0]).get("postings") != ledger.proof.get("postings"):
        return "no proved LedgerPosted event of the payment citing this ledger proof with its postings"
    return None


def _amounts(postings: object, currency: object) -> list[tuple[str, int]] | None:
    if not isinstance(postings, list):
        return None
    out = []
    for p in postings:
        amount = p.get("amountMinor") if isinstance(p, Mapping) else None
        if not isinstance(amount, int) or isinstance(amount, bool) or p.get("currency") != currency:
            return None
        out.append((str(p.get("account")), amount))
    return out


def _balance_result(order: Mapping[str, Any], ledger: SignedProof | None, oid: str,
                    logged: list[Event]) -> tuple[bool, str]:
    """The payment moves the price from the buyer into escrow; the release moves exactly it
    out of escrow to the seller and the platform fee (``price * feeBps // 10000``)."""
    price, bps, cur = order.get("priceMinor"), order.get("feeBps"), order.get("currency")
    if not isinstance(price, int) or not isinstance(bps, int):
        return False, "the order has no integer price and fee"
    released = _proved(logged, "market", "LedgerPosted", release_tx(oid))
    capture = _amounts(ledger.proof.get("postings") if ledger else None, cur)
    release = _amounts(_data(released[0]).get("postings") if released else None, cur)
    if capture is None or release is None:
        return False, f"no verified payment and proved release postings in {cur}"
    for name, postings in (("payment", capture), ("release", release)):
        total = sum(a for _, a in postings)
        if total != 0:
            return False, f"the {name} postings sum to {total}, not 0"
    debits = [a for _, a in capture if a < 0]
    credits = [(acct, a) for acct, a in capture if a > 0]
    if debits != [-price] or len(credits) != 1:
        return False, f"the payment does not move exactly {price} from one account into escrow"
    escrow = credits[0][0]
    fee = price * bps // BPS_DENOMINATOR
    paid_out = sorted(a for acct, a in release if a > 0)
    if [(acct, a) for acct, a in release if a < 0] != [(escrow, -price)] or paid_out != sorted(
            x for x in (price - fee, fee) if x):
        return False, f"the release does not pay {price - fee} to the seller and {fee} fee out of escrow"
    return True, f"payment and release each sum to 0: {price} {cur} in, {price - fee} to the seller, {fee} fee"


def _delivery_reason(delivery: SignedProof, order: Mapping[str, Any], oid: str, ledger: SignedProof | None,
                     logged: list[Event], ciphertext: bytes | None) -> str | None:
    p = delivery.proof
    if p.get("orderId") != oid:
        return f"the delivery proof is of order {p.get('orderId')}"
    if ledger is None or p.get("ledgerProofId") != ledger.proof_id:
        return "the delivery proof cites another ledger proof than the verified one"
    if p.get("manifestSignatureId") != order.get("manifestSignatureId"):
        return "the delivery proof cites another manifest signature than the order"
    issued = _proved(logged, "market", "DeliveryIssued", oid, deliveryProofId=delivery.proof_id,
                     ciphertextDigest=p.get("ciphertextDigest"))
    if not issued:
        return "no proved DeliveryIssued event of this delivery proof and ciphertext digest"
    if ciphertext is not None and hashlib.sha256(ciphertext).hexdigest() != p.get("ciphertextDigest"):
        return f"the given ciphertext's sha256 is not the delivered {p.get('ciphertextDigest')}"
    return None
