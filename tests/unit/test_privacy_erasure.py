"""PROTOTYPE (issue 22, item 3): pseudonymized events stay verifiable after a subject's key
material is destroyed, and the subject's data is gone from the export and the subject store."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from hallmark._domain import EventDraft
from hallmark.audit.checkpoints import CheckpointPolicy
from hallmark.audit.log import AuditLog
from hallmark.audit.replay import verify_export
from hallmark.audit.store import InMemoryAuditStore
from hallmark.privacy.pseudonymize import pseudonymize
from hallmark.privacy.vault import InMemorySubjectStore, LocalDataKeys, Vault
from hallmark.signing import LocalSigner

T0 = datetime(2026, 12, 3, 7, 0, tzinfo=UTC)
BUYER, WITNESS, OTHER = "alice@example.org", "wit-bob", "carol"


def test_erasure_keeps_every_chain_verifiable_and_the_data_unrecoverable() -> None:
    signer = LocalSigner.generate(key_id="audit")
    log = AuditLog(InMemoryAuditStore(), signer, CheckpointPolicy(1000, math.inf), lambda: T0)
    store = InMemorySubjectStore()
    vault = Vault(store, LocalDataKeys())
    drafts = {
        "market": [EventDraft("OrderPlaced", "ord-1", {"buyer": BUYER, "seller": OTHER, "priceMinor": 1900}, BUYER),
                   EventDraft("OrderPlaced", "ord-2", {"buyer": BUYER, "seller": OTHER, "priceMinor": 900}, BUYER),
                   EventDraft("OrderPlaced", "ord-3", {"buyer": OTHER, "seller": BUYER, "priceMinor": 5}, OTHER)],
        "ceremony": [EventDraft("WitnessRegistered", WITNESS, {"keyFingerprint": "f" * 64}, "root"),
                     EventDraft("CeremonyInitiated", "cer-1", {"initiator": WITNESS, "blessing": "for Bob's mum"},
                                WITNESS),
                     EventDraft("WitnessAdded", "cer-1", {"witnessId": WITNESS}, WITNESS)],
    }
    sealed_blessing = None
    for chain, events in drafts.items():
        for d in events:
            p = pseudonymize(d, vault)
            ev = log.append(chain, d.event_id, T0, p.type, p.actor, p.subject, p.data)
            sealed_blessing = ev.data.get("blessing", sealed_blessing)
        log.checkpoint_now(chain)
    before = {c: log.export(c) for c in drafts}
    text = "\n".join(line for ev, ck in before.values() for line in ev + ck)
    assert BUYER not in text and WITNESS not in text and "Bob's mum" not in text  # never in the clear
    assert vault.open(sealed_blessing) == "for Bob's mum"
    proof_before = log.inclusion_proof("market", 2, 3).to_dict()

    for who in (BUYER, WITNESS):
        erased = vault.erase(who, actor="superadmin-1", request_id="era-1")
        assert who not in repr(erased.as_dict())
        log.append("governance", erased.event_id, T0, "SubjectErased", erased.actor, erased.subject, erased.data)
    log.checkpoint_now("governance")

    for chain in (*drafts, "governance"):
        events, ckpts = log.export(chain)
        assert verify_export(events, ckpts, signer.public_key_pem()).ok, chain
        assert BUYER not in "\n".join(events) and WITNESS not in "\n".join(events)
    assert {c: log.export(c) for c in drafts} == before  # the chains did not change, byte for byte
    assert log.inclusion_proof("market", 2, 3).to_dict() == proof_before
    assert vault.open(sealed_blessing) is None  # the key is gone: the ciphertext stays, unreadable
    assert BUYER not in store.dump() and WITNESS not in store.dump() and OTHER in store.dump()
    # the others are untouched: the same pseudonym still names carol
    assert vault.pseudonym(OTHER) == list(log.store.events("market"))[2].actor
