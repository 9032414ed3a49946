"""Repository ports of the governance package and their in-memory fakes.

A DynamoDB implementation keeps the subject and its claimed nonce in one
``TransactWriteItems`` (a version condition on the subject, ``attribute_not_exists`` on the
nonce item); the fakes give the same all-or-nothing behaviour under a lock.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from hallmark.governance.models import ApprovalSubject, Approver, SubjectKind


class NonceClaim(NamedTuple):
    approver_id: str
    nonce: str


class ApproverRepository(Protocol):
    def get(self, approver_id: str) -> Approver | None: ...

    def list_active(self) -> list[Approver]: ...

    def put(self, approver: Approver, *, expected_version: int | None) -> None:
        """Store ``approver``; ``expected_version=None`` means it must not exist yet.
        Raises ``Conflict`` when the stored version differs."""
        ...


class ApprovalRepository(Protocol):
    def get(self, kind: SubjectKind, subject_id: str) -> ApprovalSubject | None: ...

    def create(self, subject: ApprovalSubject) -> None:
        """Store a new subject; ``Conflict`` if one with that kind and id exists."""
        ...

    def save(self, subject: ApprovalSubject, *, expected_version: int, nonce: NonceClaim | None = None) -> None:
        """Atomically: the stored version must equal ``expected_version`` (else ``Conflict``),
        the nonce must be unclaimed for that approver (else ``nonce_reused``); then store the
        subject and claim the nonce. On any failure nothing changes."""
        ...

    def nonce_used(self, approver_id: str, nonce: str) -> bool: ...


