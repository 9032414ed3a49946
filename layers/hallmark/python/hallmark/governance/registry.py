"""The approver registry: superadmins add, remove and rotate approvers' P-256 public keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from hallmark._domain import EventDraft, Principal
from hallmark.canonical import as_utc
from hallmark.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from hallmark.governance.models import Approver, RetiredKey, ThresholdPolicy, check_id
from hallmark.governance.ports import ApproverRepository
from hallmark.signing import public_key_fingerprint

SUPERADMIN = "superadmin"


@dataclass(frozen=True)
class RegistryChange:
    approver: Approver
    events: list[EventDraft] = field(default_factory=list)


class ApproverRegistry:
    """At most ``capacity`` (5) active approvers, each with a distinct P-256 key.

    Removing an approver is refused when it would leave fewer active approvers than the
    policy's largest threshold (every pending subject would become impossible).
    """

    def __init__(self, repo: ApproverRepository, policy: ThresholdPolicy | None = None, capacity: int = 5) -> None:
        self._repo = repo
        self._policy = policy or ThresholdPolicy()
        self._capacity = capacity

    # ------------------------------------------------------------------ queries
    def get(self, approver_id: str) -> Approver | None:
        return self._repo.get(approver_id)

    def active(self) -> list[Approver]:
        return self._repo.list_active()

    # ------------------------------------------------------------------ changes
    def add(self, caller: Principal, approver_id: str, public_key_pem: str, now: datetime) -> RegistryChange:
        self._require_superadmin(caller)
        try:
            check_id(approver_id, "approverId")
        except ValueError as exc:
            raise InvalidInput(str(exc), {"field": "approverId"}) from exc
        fingerprint = self._fingerprint(public_key_pem)
        now = as_utc(now)
        active = self._repo.list_active()
        existing = self._repo.get(approver_id)
        if existing is not None and existing.active:
            raise Conflict(f"approver {approver_id!r} already registered", {"approverId": approver_id})
        if len(active) >= self._capacity:
            raise DomainError("registry_full", f"registry holds at most {self._capacity} approvers",
                              details={"capacity": self._capacity})
        self._refuse_shared_key(fingerprint, approver_id, active)
        approver = Approver(
            approver_id=approver_id,
            public_key_pem=public_key_pem,
            key_fingerprint=fingerprint,
            active=True,
            added_at=now,
            updated_at=now,
            previous_keys=existing.previous_keys if existing else (),
            version=(existing.version + 1) if existing else 1,
        )
        self._repo.put(approver, expected_version=existing.version if existing else None)
        return RegistryChange(approver, [EventDraft(
            "ApproverAdded", approver_id, {"keyFingerprint": fingerprint}, actor=caller.sub)])

    def remove(self, caller: Principal, approver_id: str, now: datetime) -> RegistryChange:
        self._require_superadmin(caller)
        current = self._active_or_404(approver_id)
        remaining = len(self._repo.list_active()) - 1
        if remaining < self._policy.max_threshold:
            raise DomainError(
                "threshold_unreachable",
                f"removing {approver_id!r} would leave {remaining} approvers, fewer than a threshold of "
                f"{self._policy.max_threshold}",
                details={"remaining": remaining, "threshold": self._policy.max_threshold},
            )
        now = as_utc(now)
        updated = current.model_copy(update={"active": False, "updated_at": now, "version": current.version + 1})
        self._repo.put(updated, expected_version=current.version)
        return RegistryChange(updated, [EventDraft(
            "ApproverRemoved", approver_id, {"keyFingerprint": current.key_fingerprint}, actor=caller.sub)])

    def rotate(self, caller: Principal, approver_id: str, new_public_key_pem: str, now: datetime) -> RegistryChange:
        self._require_superadmin(caller)
        current = self._active_or_404(approver_id)
        fingerprint = self._fingerprint(new_public_key_pem)
        if fingerprint == current.key_fingerprint:
            raise InvalidInput("the new key is the current key", {"keyFingerprint": fingerprint})
        self._refuse_shared_key(fingerprint, approver_id, self._repo.list_active())
        if any(k.key_fingerprint == fingerprint for k in current.previous_keys):
            raise InvalidInput("a retired key cannot be reinstated", {"keyFingerprint": fingerprint})
        now = as_utc(now)
        retired = RetiredKey(key_fingerprint=current.key_fingerprint, public_key_pem=current.public_key_pem,
                             retired_at=now)
        updated = current.model_copy(update={
            "public_key_pem": new_public_key_pem,
            "key_fingerprint": fingerprint,
            "previous_keys": (*current.previous_keys, retired),
            "updated_at": now,
            "version": current.version + 1,
        })
        self._repo.put(updated, expected_version=current.version)
        return RegistryChange(updated, [EventDraft(
            "ApproverKeyRotated", approver_id,
            {"keyFingerprint": fingerprint, "previousKeyFingerprint": current.key_fingerprint},
            actor=caller.sub)])

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _require_superadmin(caller: Principal) -> None:
        if SUPERADMIN not in caller.roles:
            raise Forbidden("only a superadmin manages the approver registry", {"role": SUPERADMIN})

    @staticmethod
    def _fingerprint(pem: str) -> str:
        try:
            return public_key_fingerprint(pem)
        except ValueError as exc:
            raise InvalidInput(str(exc), {"field": "publicKeyPem"}) from exc

    def _active_or_404(self, approver_id: str) -> Approver:
        current = self._repo.get(approver_id)
        if current is None or not current.active:
            raise NotFound("approver", approver_id, code="unknown_approver")
        return current

    @staticmethod
    def _refuse_shared_key(fingerprint: str, approver_id: str, active: list[Approver]) -> None:
        for other in active:
            if other.approver_id != approver_id and other.key_fingerprint == fingerprint:
                raise Conflict("two approvers cannot share a key",
                               {"approverId": approver_id, "sharedWith": other.approver_id})
