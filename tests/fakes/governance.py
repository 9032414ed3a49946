"""In-memory fakes (tests only; never in the Lambda layer)."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from hallmark.errors import Conflict, DomainError
from hallmark.governance.models import ApprovalSubject, Approver, SubjectKind
from hallmark.governance.ports import NonceClaim


class InMemoryApproverRepository:
    def __init__(self) -> None:
        self._items: dict[str, Approver] = {}
        self._lock = threading.Lock()

    def get(self, approver_id: str) -> Approver | None:
        with self._lock:
            return self._items.get(approver_id)

    def list_active(self) -> list[Approver]:
        with self._lock:
            return sorted((a for a in self._items.values() if a.active), key=lambda a: a.approver_id)

    def put(self, approver: Approver, *, expected_version: int | None) -> None:
        with self._lock:
            current = self._items.get(approver.approver_id)
            stored = current.version if current else None
            if stored != expected_version:
                raise Conflict(
                    "approver changed concurrently",
                    {"approverId": approver.approver_id, "expected": expected_version, "stored": stored},
                )
            self._items[approver.approver_id] = approver


class InMemoryApprovalRepository:
    def __init__(self) -> None:
        self._subjects: dict[tuple[str, str], ApprovalSubject] = {}
        self._nonces: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def get(self, kind: SubjectKind, subject_id: str) -> ApprovalSubject | None:
        with self._lock:
            return self._subjects.get((kind, subject_id))

    def create(self, subject: ApprovalSubject) -> None:
        key = (subject.kind, subject.subject_id)
        with self._lock:
            if key in self._subjects:
                raise Conflict(f"{subject.kind} {subject.subject_id!r} already exists", {"id": subject.subject_id})
            self._subjects[key] = subject

    def save(self, subject: ApprovalSubject, *, expected_version: int, nonce: NonceClaim | None = None) -> None:
        key = (subject.kind, subject.subject_id)
        with self._lock:
            current = self._subjects.get(key)
            if current is None or current.version != expected_version:
                raise Conflict(
                    f"{subject.kind} {subject.subject_id!r} changed concurrently",
                    {"expected": expected_version, "stored": current.version if current else None},
                )
            if nonce is not None and (nonce.approver_id, nonce.nonce) in self._nonces:
                raise DomainError("nonce_reused", "nonce already used by this approver", details={"nonce": nonce.nonce})
            if nonce is not None:
                self._nonces.add((nonce.approver_id, nonce.nonce))
            self._subjects[key] = subject

    def nonce_used(self, approver_id: str, nonce: str) -> bool:
        with self._lock:
            return (approver_id, nonce) in self._nonces


def registered_approvers(ids: list[str], now: datetime) -> tuple[dict[str, Any], InMemoryApproverRepository, Any]:
    """Approvers ``ids`` with keys generated here, registered by a superadmin at ``now``:
    ``(private keys by id, the repository, the ApproverRegistry)``."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from hallmark._domain import Caller
    from hallmark.governance import ApproverRegistry
    from hallmark.signing import public_pem_of

    keys = {a: ec.generate_private_key(ec.SECP256R1()) for a in ids}
    approvers = InMemoryApproverRepository()
    registry = ApproverRegistry(approvers)
    for a in ids:
        registry.add(Caller("root", frozenset({"superadmin"})), a, public_pem_of(keys[a]), now)
    return keys, approvers, registry
