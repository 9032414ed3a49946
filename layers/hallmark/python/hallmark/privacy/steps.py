"""Erasure of a person (``POST /privacy/erasure``), governed like a settlement plan.

1. ``request`` (a superadmin) names the person; the request is stored under ``era-<uuid>`` with
   the person's *pseudonym* only, and a settlement-kind approval subject is opened over
   ``digest = sha256(RFC8785({"purpose": "hallmark/erasure/v1", "erasureId", "pseudonym"}))``
   (``GovernanceService.open_settlement``: 3 of the registered approvers, capped expiry, every
   refusal audited; ``SettlementPlanned`` + ``ApprovalRequested``).
2. ``approve`` (approvers) records signed decisions over that digest, by the one approval code
   path (``record_approval``), exactly as for a settlement.
3. ``execute`` (a superadmin), once approved: the state-table records naming the person are
   scrubbed (``StateRecords``: the id replaced by the pseudonym, signed purchase proofs naming
   them withdrawn), then the vault destroys the key material and the link, and ``SubjectErased``
   is audited with the pseudonym, the erasure id, the digest and the approvers (no personal data).

No chain changes: every event, checkpoint, inclusion proof and bundle verifies as before
(docs/privacy.md says what that does and does not guarantee).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Protocol

from hallmark._domain import EventDraft, Principal, emit_by_flow
from hallmark.canonical import canonical_bytes, sha256_hex, to_rfc3339
from hallmark.docstore import DocStore
from hallmark.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from hallmark.ports import AuditEmitter
from hallmark.privacy.vault import PSEUDONYM_RE, Vault

KIND: Final = "erasure"
SUPERADMIN: Final = "superadmin"
PURPOSE: Final = "hallmark/erasure/v1"
_ID_RE: Final = re.compile(r"^era-[0-9a-f]{32}$")


class ErasureGovernance(Protocol):
    """The multisig of settlement plans (``hallmark.governance.GovernanceService``)."""

    def open_settlement(self, *, settlement_id: str, plan_digest: str, proposed_by: str, now: datetime,
                        task_token: str | None = None, deadline: datetime | None = None,
                        plan_summary: Mapping[str, Any] | None = None) -> Any: ...

    def load(self, kind: Any, subject_id: str) -> Any: ...

    def record_approval(self, subject: Any, form: Any, caller_sub: str, now: datetime) -> Any: ...

    def approved(self, subject: Any) -> bool: ...

    def valid_count(self, subject: Any, collection: Any, decision: Any) -> int: ...

    def registered(self) -> frozenset[str]: ...


class StateRecords(Protocol):
    def scrub(self, subject_id: str, pseudonym: str) -> int:
        """Replace ``subject_id`` (as a token) by ``pseudonym`` in every record of the state
        table, withdrawing signed purchase proofs that name it; returns the records changed."""
        ...


def erasure_digest(erasure_id: str, pseudonym: str) -> str:
    return sha256_hex(canonical_bytes({"purpose": PURPOSE, "erasureId": erasure_id, "pseudonym": pseudonym}))


def _superadmin(caller: Principal) -> None:
    if SUPERADMIN not in caller.roles:
        raise Forbidden("only a superadmin requests or executes an erasure", {"role": SUPERADMIN})


class ErasureSteps:
    def __init__(self, vault: Vault, docs: DocStore, audit: AuditEmitter, governance: ErasureGovernance,
                 records: StateRecords) -> None:
        self._vault = vault
        self._docs = docs
        self._audit = audit
        self._governance = governance
        self._records = records

    def request(self, caller: Principal, subject_id: str, now: datetime) -> dict[str, Any]:
        _superadmin(caller)
        if not isinstance(subject_id, str) or not subject_id or PSEUDONYM_RE.fullmatch(subject_id):
            raise InvalidInput("subjectId must be a person's id", {"field": "subjectId"})
        pseudonym = self._vault.lookup(subject_id)
        if pseudonym is None:
            raise NotFound("subject", "(not named on any chain, or already erased)")
        erasure_id = f"era-{uuid.uuid4().hex}"
        digest = erasure_digest(erasure_id, pseudonym)
        opened = self._governance.open_settlement(settlement_id=erasure_id, plan_digest=digest,
                                                  proposed_by=caller.sub, now=now,
                                                  plan_summary={"kind": KIND, "pseudonym": pseudonym})
        doc = {"erasureId": erasure_id, "pseudonym": pseudonym, "digest": digest, "status": "Pending",
               "requestedBy": self._vault.pseudonym(caller.sub), "requestedAt": to_rfc3339(now)}
        self._docs.create(KIND, erasure_id, doc)
        emit_by_flow(self._audit, opened.events)
        return self.view(erasure_id)

    def approve(self, caller: Principal, erasure_id: str, form: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        self._doc(erasure_id)
        result = self._governance.record_approval(self._governance.load("settlement", erasure_id), form,
                                                  caller.sub, now)
        emit_by_flow(self._audit, result.events)
        return {"outcome": result.outcome, **self.view(erasure_id)}

    def execute(self, caller: Principal, erasure_id: str, now: datetime) -> dict[str, Any]:
        _superadmin(caller)
        doc = self._doc(erasure_id)
        if doc["status"] == "Erased":
            raise Conflict("this erasure was already executed", {"erasureId": erasure_id}, code="already_erased")
        subject = self._governance.load("settlement", erasure_id)
        if subject.digest != doc["digest"]:
            raise DomainError("wrong_subject", "the approval subject is for another erasure", 422)
        if not self._governance.approved(subject):
            raise DomainError("not_approved", "the erasure does not have the required approvals", 409,
                              {"status": subject.status, "threshold": subject.threshold,
                               "approvals": self._governance.valid_count(subject, "approvals", "approve")})
        pseudonym = str(doc["pseudonym"])
        subject_id = self._vault.identity(pseudonym)
        scrubbed = self._records.scrub(subject_id, pseudonym) if subject_id is not None else 0
        self._vault.erase_pseudonym(pseudonym)
        registered = self._governance.registered()
        approvers = sorted(r.approver_id for r in subject.approvals
                           if r.decision == "approve" and r.approver_id in registered)
        version = doc.pop("version")
        self._docs.replace(KIND, erasure_id, {**doc, "status": "Erased", "erasedAt": to_rfc3339(now),
                                              "recordsScrubbed": scrubbed}, version)
        emit_by_flow(self._audit, [EventDraft("SubjectErased", pseudonym, {
            "erasureId": erasure_id, "digest": doc["digest"], "approvers": approvers,
            "recordsScrubbed": scrubbed}, actor=caller.sub)])
        return self.view(erasure_id)

    def view(self, erasure_id: str) -> dict[str, Any]:
        doc = self._doc(erasure_id)
        subject = self._governance.load("settlement", erasure_id)
        return {**{k: v for k, v in doc.items() if k != "version"},
                "approval": {"status": subject.status, "threshold": subject.threshold,
                             "approvals": subject.count("approvals", "approve")}}

    def _doc(self, erasure_id: str) -> dict[str, Any]:
        doc = self._docs.get(KIND, erasure_id) if isinstance(erasure_id, str) and _ID_RE.match(erasure_id) else None
        if doc is None:
            raise NotFound("erasure", str(erasure_id)[:80])
        return doc
