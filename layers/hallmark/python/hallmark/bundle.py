"""The release bundle: one JSON document to verify a release offline (``hallmark bundle verify``).

Format ``hallmark.bundle/v1`` (``docs/wire-format.md`` section 9)::

    {"bundleVersion": "hallmark.bundle/v1", "packageId", "name", "version", "impact",
     "manifest": {"envelope": <DSSE envelope>, "digest": <sha256 hex of the payload>},
     "approvals": null | {"upgradeId", "manifestDigest", "threshold",
                          "records": [{"approverId", "decision", "expiresAt", "nonce", "signature",
                                       "keyFingerprint", "recordedAt"}],
                          "registry": {<approverId>: [{"keyFingerprint", "publicKeyPem"}, ...]}},
     "ceremony": null | {"artifactId", "tier", "ceremonies": [{"ceremonyId", "attestation"}], "witnesses"},
     "purchase": null | {"orderId", "order", "ledgerProof", "deliveryProof"},
     "audit": {"events": [{"event": <wire event>, "proof": <inclusion proof document>}]},
     "keys": {<purpose>: <fingerprint>},
     "pseudonyms": {<psn>: <person id>}}

It holds the manifest, the governance approvals with the registry keys that signed them, the
release's audit events with inclusion proofs, the ceremony provenance and tier when the package
holds one (``ceremony``), and for a purchase the ledger and delivery proofs (``purchase``; see
:mod:`hallmark.bundle_parts`); the events those parts rest on are in ``audit.events`` with the
release's. ``sigstore`` is the manifest again as a Sigstore bundle v0.3 (:func:`sigstore_bundle`).
Audit events name people by pseudonym; ``pseudonyms`` pairs them with the ids the signed records
use, for the subjects not erased (:mod:`hallmark.privacy.names`, docs/privacy.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any, Final

from hallmark.audit.events import event_hash_bytes
from hallmark.audit.proofs import check_inclusion_document
from hallmark.bundle_parts import (
    CeremonySource,
    Check,
    WitnessSource,
    collect_ceremony,
    collect_purchase,
    registered_before,
    registry_key,
    verify_ceremony,
    verify_purchase,
)
from hallmark.canonical import sha256_hex
from hallmark.dsse import DsseError, verify_envelope
from hallmark.governance.messages import approval_message
from hallmark.market.orders import Order
from hallmark.market.proofs import SignedProof
from hallmark.privacy.names import lookup, named, names_of, valid_names
from hallmark.privacy.vault import SubjectStore
from hallmark.signing import public_key_fingerprint, verify_signature

__all__ = ["BUNDLE_VERSION", "KEY_PURPOSES", "SIGSTORE_MEDIA_TYPE", "Check", "collect_bundle", "prove_events",
           "sigstore_bundle", "verify_bundle"]

BUNDLE_VERSION: Final = "hallmark.bundle/v1"
GOVERNED: Final = frozenset({"HIGH", "CRITICAL"})
SIGSTORE_MEDIA_TYPE: Final = "application/vnd.dev.sigstore.bundle.v0.3+json"
REGISTRY_EVENTS: Final = frozenset({"ApproverAdded", "ApproverKeyRotated", "ApproverRemoved"})

KEY_PURPOSES: Final = ("manifest", "audit", "proof")


def _manifest(bundle: Mapping[str, Any], pem: bytes | None) -> tuple[list[Check], dict[str, Any] | None, str | None]:
    m = bundle.get("manifest")
    if not isinstance(m, Mapping) or not isinstance(m.get("envelope"), Mapping):
        return [Check("manifest signature", False, "the bundle has no manifest envelope")], None, None
    if pem is None:
        return [Check("manifest signature", False, "no manifest.pem among the keys")], None, None
    try:
        payload = verify_envelope(dict(m["envelope"]), pem)
    except (DsseError, ValueError, TypeError) as exc:
        return [Check("manifest signature", False, f"the DSSE envelope does not verify: {exc}")], None, None
    checks = [Check("manifest signature", True, "DSSE envelope verifies with manifest.pem")]
    digest = hashlib.sha256(payload).hexdigest()
    if m.get("digest") != digest:
        checks.append(Check("manifest digest", False, f"recorded digest {m.get('digest')} is not sha256(payload) {digest}"))
    try:
        statement = json.loads(payload)
    except ValueError:
        return [*checks, Check("manifest statement", False, "the payload is not JSON")], None, digest
    predicate = statement.get("predicate") if isinstance(statement, dict) else None
    fp = predicate.get("signerKeyFingerprint") if isinstance(predicate, dict) else None
    if fp is not None and fp != public_key_fingerprint(pem):
        checks.append(Check("manifest key", False, f"the predicate names key {fp}, not manifest.pem"))
    return checks, statement, digest


def _subject_digest(statement: Mapping[str, Any]) -> str | None:
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or len(subjects) != 1 or not isinstance(subjects[0], Mapping):
        return None
    digest = subjects[0].get("digest")
    return digest.get("sha256") if isinstance(digest, Mapping) else None


def _approvals(bundle: Mapping[str, Any], statement: Mapping[str, Any], digest: str, min_threshold: int,
               logged: list[Mapping[str, Any]]) -> list[Check]:
    predicate = statement.get("predicate") or {}
    impact = predicate.get("impact") if isinstance(predicate, Mapping) else None
    ap = bundle.get("approvals")
    if impact not in GOVERNED:
        return [Check("approvals", True, f"impact {impact}: no multisig threshold applies")]
    if not isinstance(ap, Mapping):
        return [Check("approvals", False, f"impact {impact} needs approvals and the bundle has none")]
    checks: list[Check] = []
    if ap.get("manifestDigest") != digest:
        checks.append(Check("approvals subject", False, "the approvals are for another manifest digest"))
    reg = ap.get("registry")
    registry: Mapping[str, Any] = reg if isinstance(reg, Mapping) else {}
    threshold = ap.get("threshold")
    if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 1:
        return [*checks, Check("approvals threshold", False, f"threshold {threshold!r} is not a positive integer")]
    threshold = max(threshold, min_threshold)  # the bundle cannot lower the verifier's floor
    good: set[str] = set()
    recs = ap.get("records")
    records: list[Any] = recs if isinstance(recs, list) else []
    for r in records:
        who = r.get("approverId") if isinstance(r, Mapping) else None
        reason = _approval_reason(r, ap, registry) if isinstance(r, Mapping) else "not an object"
        if not reason and isinstance(r, Mapping):
            reason = _registered_in_log(r, logged)
        if reason:
            checks.append(Check(f"approval by {who}", False, reason))
        elif r.get("decision") == "approve":
            checks.append(Check(f"approval by {who}", True, "signature verifies with the registered key"))
            good.add(str(who))
    met = len(good) >= threshold
    checks.append(Check("approvals threshold", met, f"{len(good)} distinct registered approvers approved, "
                        f"{threshold} needed" + ("" if met else " (not met)")))
    return checks


def _approval_reason(r: Mapping[str, Any], ap: Mapping[str, Any], registry: Mapping[str, Any]) -> str | None:
    who, fp = r.get("approverId"), r.get("keyFingerprint")
    pem, reason = registry_key(registry.get(who) if isinstance(who, str) else None, fp, str(who), "approver")
    if pem is None:
        return reason
    try:
        der = base64.b64decode(str(r.get("signature")), validate=True)
        message = approval_message(str(ap.get("upgradeId")), str(ap.get("manifestDigest")), str(r.get("decision")),
                                   str(r.get("expiresAt")), str(r.get("nonce")))
        if not verify_signature(pem, message, der):
            return "the signature does not verify for this upgrade, digest and approver"
    except (binascii.Error, ValueError, TypeError) as exc:
        return f"unusable approval: {exc}"
    return None


def _registered_in_log(r: Mapping[str, Any], logged: list[Mapping[str, Any]]) -> str | None:
    """The approver's key was registered on the (proved) governance chain before the approval,
    and not removed in between; the approval itself is on the chain."""
    who, fp = r.get("approverId"), r.get("keyFingerprint")
    gov = sorted((e for e in logged if e.get("chain") == "governance"), key=lambda e: int(e.get("seq", 0)))
    recorded = next((e for e in gov if e.get("type") == "ApprovalRecorded" and (e.get("data") or {}).get("approverId") == who
                     and (e.get("data") or {}).get("nonce") == r.get("nonce")), None)
    if recorded is None:
        return f"the approval by {who!r} is not among the proved audit events"
    return registered_before(gov, "governance", str(who), fp, int(recorded["seq"]),
                             frozenset({"ApproverAdded", "ApproverKeyRotated"}), frozenset({"ApproverRemoved"}))


def _audit(bundle: Mapping[str, Any], pem: bytes | None, package_id: str,
           logged: list[tuple[Mapping[str, Any], bytes]]) -> list[Check]:
    """The audit part's checks; ``logged`` receives each proved event with its canonical text."""
    audit = bundle.get("audit")
    items = audit.get("events") if isinstance(audit, Mapping) else None
    if pem is None:
        return [Check("audit", False, "no audit.pem among the keys")]
    if not isinstance(items, list) or not items:
        return [Check("audit", False, "the bundle has no audit events")]
    checks = []
    seen: dict[Any, str] = {}  # checkpoints whose signature verified (many events share one)
    for item in items:
        ev = item.get("event") if isinstance(item, Mapping) else None
        proof = item.get("proof") if isinstance(item, Mapping) else None
        if not isinstance(ev, Mapping) or not isinstance(proof, Mapping):
            checks.append(Check("audit event", False, "an item without event and proof"))
            continue
        label = f"audit {ev.get('chain')}#{ev.get('seq')} {ev.get('type')}"
        try:
            canon = event_hash_bytes(ev)
        except (TypeError, ValueError) as exc:
            checks.append(Check(label, False, f"event cannot be hashed: {exc}"))
            continue
        recomputed = sha256_hex(canon)
        if recomputed != ev.get("hash") or proof.get("eventHash") != recomputed or proof.get("seq") != ev.get("seq"):
            checks.append(Check(label, False, "the event's hash is not the one its proof includes (event altered)"))
            continue
        res = check_inclusion_document(proof, {"audit.pem": pem}, seen=seen)
        if res.ok:
            logged.append((ev, canon))
        checks.append(Check(label, res.ok, "included in signed checkpoint "
                            f"{proof.get('treeSize')}" if res.ok else str(res.reason)))
    types = {i["event"].get("type") for i in items if isinstance(i, Mapping) and isinstance(i.get("event"), Mapping)}
    if "ManifestSigned" not in types:
        checks.append(Check("audit coverage", False, f"no ManifestSigned event of {package_id} in the bundle"))
    return checks


def sigstore_bundle(envelope: Mapping[str, Any], key_hint: str) -> dict[str, Any]:
    """The manifest as a Sigstore bundle v0.3: DSSE content, ``publicKey`` verification material
    (``hint`` = the manifest key's fingerprint), no transparency-log entry or timestamp (a
    verifier is configured with the key and thresholds of 0 for those)."""
    sigs = [{"sig": sg["sig"], "keyid": sg.get("keyid", "")} for sg in envelope.get("signatures", [])]
    return {
        "mediaType": SIGSTORE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": key_hint}, "tlogEntries": [],
                                 "timestampVerificationData": {"rfc3161Timestamps": []}},
        "dsseEnvelope": {"payload": envelope.get("payload"), "payloadType": envelope.get("payloadType"),
                         "signatures": sigs},
    }


def _sigstore(bundle: Mapping[str, Any]) -> list[Check]:
    sig = bundle.get("sigstore")
    env = (bundle.get("manifest") or {}).get("envelope") if isinstance(bundle.get("manifest"), Mapping) else None
    if sig is None:
        return []
    if not isinstance(sig, Mapping) or not isinstance(env, Mapping):
        return [Check("sigstore bundle", False, "malformed")]
    fp = (bundle.get("keys") or {}).get("manifest") if isinstance(bundle.get("keys"), Mapping) else None
    expected = sigstore_bundle(env, str(fp))
    same = sig == expected
    return [Check("sigstore bundle", same, "the same DSSE envelope as the manifest, key hint = manifest fingerprint"
                  if same else "differs from the manifest envelope (or names another key)")]


def verify_bundle(bundle: Any, keys: Mapping[str, bytes], artifact: bytes | None = None, *,
                  min_threshold: int = 3, ciphertext: bytes | None = None) -> list[Check]:
    """Every check of a bundle; the release verifies when each one is ``ok``.

    ``keys`` maps purpose (``manifest``, ``audit``, ``proof``) to PEM; ``artifact`` the released
    file, whose sha256 must be the manifest subject's digest; ``min_threshold`` the fewest
    distinct approvers a HIGH/CRITICAL release needs whatever the bundle says (the deployment's
    multisig threshold); ``ciphertext`` the delivered file of a purchase (its sha256 must be the
    delivery proof's). An approval (a witness signature) counts only if its signature verifies
    with the registry key it names and that key's registration (and the approval, the witnessing)
    are audit events proved against a signed checkpoint.
    """
    if not isinstance(bundle, Mapping) or bundle.get("bundleVersion") != BUNDLE_VERSION:
        return [Check("bundle", False, f"not a {BUNDLE_VERSION} document")]
    checks: list[Check] = []
    for purpose in KEY_PURPOSES:
        listed = (bundle.get("keys") or {}).get(purpose) if isinstance(bundle.get("keys"), Mapping) else None
        if purpose in keys and listed is not None and listed != public_key_fingerprint(keys[purpose]):
            checks.append(Check(f"{purpose} key", False, f"the bundle names key {listed}, not the given {purpose}.pem"))
    mchecks, statement, digest = _manifest(bundle, keys.get("manifest"))
    checks += mchecks
    proved: list[tuple[Mapping[str, Any], bytes]] = []
    pid = str(bundle.get("packageId"))
    audit_checks = _audit(bundle, keys.get("audit"), pid, proved)
    names = valid_names(bundle.get("pseudonyms"))
    if names is None:
        audit_checks.append(Check("pseudonyms", False, "the pseudonym table is malformed or not one to one"))
    # paired with the signed records by person id; an event whose canonical text (already made
    # for its hash) names no pseudonym of the table is the same once named
    psns = [p.encode() for p in names or {}]
    logged = [named(ev, names or {}) if any(p in canon for p in psns) else ev for ev, canon in proved]
    if statement is not None and digest is not None:
        subject = _subject_digest(statement)
        if artifact is not None:
            actual = hashlib.sha256(artifact).hexdigest()
            checks.append(Check("artifact digest", subject == actual,
                                f"sha256 {actual} " + ("matches the manifest subject" if subject == actual
                                                       else f"is not the manifest subject {subject}")))
        checks += _approvals(bundle, statement, digest, min_threshold, logged)
    checks += verify_ceremony(bundle, keys.get("proof"), pid, logged)
    envelope = bundle["manifest"].get("envelope") if isinstance(bundle.get("manifest"), Mapping) else None
    checks += verify_purchase(bundle, keys.get("proof"), envelope if isinstance(envelope, Mapping) else None,
                              digest, logged, ciphertext)
    return checks + _sigstore(bundle) + audit_checks


def prove_events(audit_log: Any, chain: str, keep: Callable[[Any], bool]) -> tuple[list[dict[str, Any]], int]:
    """The events of ``chain`` that ``keep`` selects, each with an inclusion proof against the
    chain's latest checkpoint, and how many selected events no checkpoint covers yet (left out)."""
    latest = audit_log.store.latest_checkpoint(chain)
    items: list[dict[str, Any]] = []
    uncovered = 0
    for ev in audit_log.store.events(chain):
        if not keep(ev):
            continue
        if latest is None or ev.seq > latest.seq:
            uncovered += 1
            continue
        items.append({"event": ev.to_wire(), "proof": audit_log.inclusion_proof(chain, ev.seq, latest.seq).to_dict()})
    return items, uncovered


def collect_bundle(
    package: Mapping[str, Any],
    envelope: Mapping[str, Any],
    *,
    upgrade: Any | None,
    approver_keys: Mapping[str, list[dict[str, str]]],
    threshold: int,
    audit_log: Any,
    key_fingerprints: Mapping[str, str],
    ceremonies: CeremonySource | None = None,
    witnesses: WitnessSource | None = None,
    order: Order | None = None,
    order_proofs: tuple[SignedProof | None, SignedProof | None] = (None, None),
    subjects: SubjectStore | None = None,
) -> dict[str, Any]:
    """Assemble the bundle of one package.

    ``upgrade`` is the governance :class:`~hallmark.governance.models.Upgrade` (or None);
    ``approver_keys`` each approver's current and retired keys (``keyFingerprint``,
    ``publicKeyPem``); ``audit_log`` the :class:`~hallmark.audit.log.AuditLog` whose chains hold
    the package's events (those covered by a checkpoint get a proof against the latest
    checkpoint; uncovered ones are left out and counted). With ``ceremonies`` and ``witnesses``
    (repositories) the ceremonies that awarded the package its tier are included; with ``order``
    (an order of this package) and its ``(ledger, delivery)`` proofs, the purchase. ``subjects``
    (the privacy vault's records) maps the people named to the pseudonyms the chains use.
    """
    pid = str(package["packageId"])
    ids = {pid} | ({str(upgrade.upgrade_id)} if upgrade is not None else set())
    if upgrade is not None:  # the approvers' registry events (ApproverAdded, ...) bind their keys to the log
        ids |= {lookup(subjects, str(r.approver_id)) for r in upgrade.approvals}

    def prove(chain: str, keep: Callable[[Any], bool]) -> tuple[list[dict[str, Any]], int]:
        return prove_events(audit_log, chain, keep)

    def ours(ev: Any) -> bool:
        return bool(ev.subject in ids and (ev.subject in (pid, getattr(upgrade, "upgrade_id", None))
                                                or ev.type in REGISTRY_EVENTS))

    items: list[dict[str, Any]] = []
    uncovered = 0
    for chain in ("release", "governance"):
        more, left = prove(chain, ours)
        items, uncovered = items + more, uncovered + left
    ceremony = purchase = None
    if ceremonies is not None and witnesses is not None:
        ceremony, more, left = collect_ceremony(pid, audit_log.store.events("ceremony"), ceremonies, witnesses, prove,
                                                  lambda w: lookup(subjects, w))
        items, uncovered = items + more, uncovered + left
    if order is not None:
        purchase, more, left = collect_purchase(order, *order_proofs, prove)
        items, uncovered = items + more, uncovered + left
    approvals = None
    if upgrade is not None:
        approvals = {
            "upgradeId": upgrade.upgrade_id, "manifestDigest": upgrade.manifest_digest, "threshold": threshold,
            "records": [{"approverId": r.approver_id, "decision": r.decision, "expiresAt": r.expires_at,
                         "nonce": r.nonce, "signature": r.signature, "keyFingerprint": r.key_fingerprint,
                         "recordedAt": r.recorded_at.isoformat().replace("+00:00", "Z")} for r in upgrade.approvals],
            "registry": {a: approver_keys[a] for a in sorted({r.approver_id for r in upgrade.approvals})
                         if a in approver_keys},
        }
    meta = package.get("meta") or {}
    absent = ([] if ceremony else ["ceremony provenance (the package holds no tier)"]) + (
        [] if purchase else ["purchase ledger and delivery proofs (no order asked for)"])
    return {
        "bundleVersion": BUNDLE_VERSION, "packageId": pid, "name": meta.get("name"), "version": meta.get("version"),
        "impact": package.get("impact", meta.get("impact")), "status": package.get("status"),
        "manifest": {"envelope": dict(envelope), "digest": (package.get("manifest") or {}).get("digest")},
        "approvals": approvals,
        "ceremony": ceremony,
        "purchase": purchase,
        "audit": {"events": items, "uncoveredEvents": uncovered},
        "keys": dict(key_fingerprints),
        "sigstore": sigstore_bundle(envelope, str(key_fingerprints.get("manifest", ""))),
        "notIncluded": absent,
        "pseudonyms": names_of(subjects, [i["event"] for i in items]),
    }
