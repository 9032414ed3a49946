"""The governed erasure (hallmark.privacy.steps): superadmin only, 3 approvals over the digest of
the erasure and the pseudonym (the settlement multisig), then scrub, shred and SubjectErased."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from hallmark._domain import Caller
from hallmark.errors import DomainError, Forbidden, InvalidInput, NotFound
from hallmark.governance import GovernanceService, sign_approval
from hallmark.privacy.steps import ErasureSteps, erasure_digest
from hallmark.privacy.vault import Vault
from tests.fakes.docstore import InMemoryDocStore
from tests.fakes.governance import InMemoryApprovalRepository, registered_approvers
from tests.fakes.privacy import InMemorySubjectStore, LocalDataKeys
from tests.fakes.release import RecordingAudit

NOW = datetime(2026, 12, 3, 7, 0, tzinfo=UTC)
ROOT = Caller("root", frozenset({"superadmin"}))
APPROVERS = [f"approver-{i}" for i in range(1, 6)]
BUYER = "alice-buyer"


class Records:
    def __init__(self) -> None:
        self.scrubbed: list[tuple[str, str]] = []

    def scrub(self, subject_id: str, pseudonym: str) -> int:
        self.scrubbed.append((subject_id, pseudonym))
        return 2


@pytest.fixture
def world() -> tuple[ErasureSteps, Vault, InMemorySubjectStore, RecordingAudit, Records, dict[str, ec.EllipticCurvePrivateKey]]:
    keys, approvers, _ = registered_approvers(APPROVERS, NOW)
    store = InMemorySubjectStore()
    vault = Vault(store, LocalDataKeys())
    vault.pseudonym(BUYER)  # named on a chain before
    audit, records = RecordingAudit(), Records()
    steps = ErasureSteps(vault, InMemoryDocStore(), audit,
                         GovernanceService(InMemoryApprovalRepository(), approvers), records)
    return steps, vault, store, audit, records, keys


def _approve(steps: ErasureSteps, keys: dict[str, ec.EllipticCurvePrivateKey], eid: str, digest: str,
             who: list[str]) -> str:
    outcome = ""
    for a in who:
        form = sign_approval(keys[a], approver_id=a, subject_id=eid, digest=digest, decision="approve",
                             expires_at=NOW + timedelta(hours=1), kind="settlement")
        outcome = steps.approve(Caller(a, frozenset({"approver"})), eid, form, NOW)["outcome"]
    return outcome


def test_erasure_needs_a_superadmin_and_three_approvals(world: tuple) -> None:  # type: ignore[type-arg]
    steps, vault, store, audit, records, keys = world
    psn = vault.lookup(BUYER)
    with pytest.raises(Forbidden):
        steps.request(Caller("eve", frozenset({"auditor"})), BUYER, NOW)
    with pytest.raises(NotFound):
        steps.request(ROOT, "never-named", NOW)
    with pytest.raises(InvalidInput):
        steps.request(ROOT, psn or "", NOW)
    view = steps.request(ROOT, BUYER, NOW)
    eid = view["erasureId"]
    assert view["pseudonym"] == psn and view["digest"] == erasure_digest(eid, str(psn))
    assert BUYER not in repr(view) and BUYER not in repr(audit.events)
    assert audit.types(eid) == ["SettlementPlanned", "ApprovalRequested"]
    assert _approve(steps, keys, eid, view["digest"], APPROVERS[:2]) == "waiting"
    with pytest.raises(DomainError) as refused:
        steps.execute(ROOT, eid, NOW)
    assert refused.value.code == "not_approved" and vault.lookup(BUYER) == psn and records.scrubbed == []
    wrong = erasure_digest(eid, "psn-" + "0" * 32)
    with pytest.raises(DomainError):  # a signature over another digest does not count
        _approve(steps, keys, eid, wrong, APPROVERS[2:3])
    _approve(steps, keys, eid, view["digest"], APPROVERS[2:3])
    with pytest.raises(Forbidden):
        steps.execute(Caller("approver-1", frozenset({"approver"})), eid, NOW)
    done = steps.execute(ROOT, eid, NOW)
    assert done["status"] == "Erased" and done["recordsScrubbed"] == 2 and records.scrubbed == [(BUYER, psn)]
    assert vault.lookup(BUYER) is None and vault.identity(str(psn)) is None and BUYER not in store.dump()
    erased = [e for e in audit.events.values() if e["type"] == "SubjectErased"]
    assert len(erased) == 1 and erased[0]["subject"] == psn and erased[0]["chain"] == "governance"
    assert erased[0]["data"]["approvers"] == APPROVERS[:3] and BUYER not in repr(erased)
    with pytest.raises(DomainError) as again:
        steps.execute(ROOT, eid, NOW)
    assert again.value.code == "already_erased"
    with pytest.raises(NotFound):
        steps.view("era-nope")
