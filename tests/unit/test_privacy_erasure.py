"""Issue 22 item 3: people never go on a chain in the clear (the audit intake pseudonymizes them
and seals their free text), and erasing a person's key material leaves every chain, checkpoint
and inclusion proof verifying byte for byte while nothing opens or links their data any more."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest

from hallmark._domain import EventDraft
from hallmark.audit.checkpoints import CheckpointPolicy
from hallmark.audit.intake import AuditIntake
from hallmark.audit.log import AuditLog
from hallmark.audit.replay import verify_export
from hallmark.privacy.names import named, names_of, valid_names
from hallmark.privacy.personal import persons_named, pseudonymize, reveal
from hallmark.privacy.vault import PSEUDONYM_RE, Erased, Vault
from tests.fakes.audit import InMemoryAuditStore
from tests.fakes.privacy import InMemorySubjectStore, LocalDataKeys
from tests.fakes.signing import LocalSigner

T0 = datetime(2026, 12, 3, 7, 0, tzinfo=UTC)
TS = "2026-12-03T07:00:00Z"
BUYER, WITNESS, SELLER = "alice.buyer@example.org", "wit-bob", "carol-seller"


class Aside:
    def put(self, body: str, *, reason: str, message_id: str, group: str) -> None:
        raise AssertionError(f"quarantined: {reason}")


def _msg(chain: str, d: EventDraft) -> str:
    return json.dumps({"id": d.event_id, "chain": chain, "ts": TS, "type": d.type, "actor": d.actor,
                       "subject": d.subject, "data": d.data})


DRAFTS = {
    "market": [
        EventDraft("OrderPlaced", "ord-1", {"buyer": BUYER, "seller": SELLER, "priceMinor": 1900}, BUYER),
        EventDraft("LedgerPosted", "ord-1:capture", {"postings": [
            {"account": f"wallet:{BUYER}:EUR", "amountMinor": -1900}, {"account": "escrow:ord-1:EUR",
                                                                       "amountMinor": 1900}],
            "memo": "checkout: buyer to escrow"}, BUYER),
        EventDraft("OrderPlaced", "ord-2", {"buyer": SELLER, "seller": "dan", "priceMinor": 5}, SELLER),
        EventDraft("SettlementPlanned", "set-1", {"memo": f"pay {BUYER} back", "parties": [{"party": SELLER}]},
                   SELLER),
    ],
    "ceremony": [
        EventDraft("WitnessRegistered", WITNESS, {"keyFingerprint": "f" * 64}, "root-admin"),
        EventDraft("WitnessAdded", "cer-1", {"witnessId": WITNESS, "witnesses": 1}, WITNESS),
        EventDraft("TierAwarded", "pkg-1", {"tier": "bronze"}),
    ],
}


@pytest.fixture
def world() -> tuple[AuditLog, Vault, InMemorySubjectStore, LocalSigner]:
    signer = LocalSigner.generate(key_id="audit")
    log = AuditLog(InMemoryAuditStore(), signer, CheckpointPolicy(1000, math.inf), lambda: T0)
    store = InMemorySubjectStore()
    vault = Vault(store, LocalDataKeys())
    intake = AuditIntake(log, Aside(), privacy=lambda m: pseudonymize(m, vault))
    for chain, drafts in DRAFTS.items():
        for d in drafts:
            assert intake.handle(_msg(chain, d), message_id="m", group=chain) == "appended"
            assert intake.handle(_msg(chain, d), message_id="m", group=chain) == "appended"  # a redelivery
        log.checkpoint_now(chain)
    return log, vault, store, signer


def _text(log: AuditLog, chain: str) -> str:
    events, ckpts = log.export(chain)
    return "\n".join(events + ckpts)


def test_the_declared_table_names_the_people_of_an_event() -> None:
    d = DRAFTS["market"][1]
    assert persons_named(d.type, d.actor, d.subject, d.data) == [BUYER]
    assert persons_named("WitnessRegistered", "system", WITNESS, {}) == [WITNESS]
    assert persons_named("TierAwarded", "system", "pkg-1", {"tier": "gold"}) == []
    assert persons_named("ApprovalRequested", "system:test", "up-1", {"approvers": ["a1", "a2"]}) == ["a1", "a2"]


def test_no_person_goes_on_a_chain_in_the_clear(world: Any) -> None:
    log, vault, _, _ = world
    for chain in DRAFTS:
        text = _text(log, chain)
        assert BUYER not in text and WITNESS not in text and SELLER not in text, chain
    market = list(log.store.events("market"))
    assert len(market) == 4  # each redelivery deduplicated: the keyed id is deterministic
    placed, posted = market[0], market[1]
    psn = vault.pseudonym(BUYER)
    assert PSEUDONYM_RE.fullmatch(psn) and placed.actor == psn and placed.data["buyer"] == psn
    assert posted.data["postings"][0]["account"] == f"wallet:{psn}:EUR"  # the account names its person
    assert posted.data["memo"] == "checkout: buyer to escrow"  # system text stays as it is
    assert placed.id != DRAFTS["market"][0].event_id  # the clear-data hash would confirm a guessed name
    tier = list(log.store.events("ceremony"))[2]
    assert tier.id == DRAFTS["ceremony"][2].event_id and tier.data == {"tier": "bronze"}  # nobody named: as is
    memo = market[3].data["memo"]
    assert set(memo) == {"psn", "f", "ct"} and memo["psn"] == vault.pseudonym(SELLER)
    assert reveal(market[3].data, vault)["memo"] == f"pay {BUYER} back"


def test_erasure_keeps_every_chain_verifiable_and_the_data_unrecoverable(world: Any) -> None:
    log, vault, store, signer = world
    before = {c: log.export(c) for c in DRAFTS}
    proof_before = log.inclusion_proof("market", 2, 4).to_dict()
    buyer_psn, seller_psn = vault.pseudonym(BUYER), vault.pseudonym(SELLER)
    assert names_of(store, [e.to_wire() for e in log.store.events("market")])[buyer_psn] == BUYER

    for who in (BUYER, WITNESS, SELLER):
        assert PSEUDONYM_RE.fullmatch(vault.erase(who))
    with pytest.raises(Erased):
        vault.erase(BUYER)

    for chain in DRAFTS:
        events, ckpts = log.export(chain)
        assert (events, ckpts) == before[chain]  # the chains did not change, byte for byte
        assert verify_export(events, ckpts, signer.public_key_pem()).ok, chain
    assert log.inclusion_proof("market", 2, 4).to_dict() == proof_before
    market = list(log.store.events("market"))
    assert reveal(market[3].data, vault)["memo"] == "erased"  # the ciphertext stays, unreadable
    assert vault.identity(buyer_psn) is None and names_of(store, [e.to_wire() for e in market]) == {
        vault.pseudonym("dan"): "dan"}
    dump = store.dump()
    assert BUYER not in dump and WITNESS not in dump and SELLER not in dump and buyer_psn not in dump
    # named again later, a person gets a new pseudonym: nothing links it to the erased one
    assert vault.pseudonym(BUYER) not in (buyer_psn, seller_psn)


def test_the_bundle_table_is_one_to_one() -> None:
    a, b = "psn-" + "a" * 32, "psn-" + "b" * 32
    assert valid_names(None) == {} and valid_names({a: "x", b: "y"}) == {a: "x", b: "y"}
    assert valid_names({a: "x", b: "x"}) is None  # two pseudonyms for one person: refused
    assert valid_names({"alice": "x"}) is None and valid_names([a]) is None
    assert named({"actor": a, "acct": f"wallet:{a}:EUR", "n": 1}, {a: "x"}) == {"actor": "x", "acct": "wallet:x:EUR",
                                                                             "n": 1}
