"""Governance records: approvers, threshold policy, approval subjects (upgrades, settlements), forms."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, TypeAdapter, field_validator

from hallmark._domain import DomainModel, UtcDatetime
from hallmark.canonical import parse_rfc3339

Impact = Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]
SubjectKind = Literal["upgrade", "settlement"]
SubjectStatus = Literal["Pending", "Applied", "Rejected", "Expired", "Ratifying", "Ratified", "RolledBack"]
#: ``approve``/``reject`` are approval decisions; ``ratify``/``veto`` are ratification decisions
#: (of an emergency upgrade). Distinct words keep a signature meaningful in one collection only.
Decision = Literal["approve", "reject", "ratify", "veto"]
Collection = Literal["approvals", "ratifications"]
#: What the caller does next: ``waiting`` nothing; ``resume`` SendTaskSuccess with the task
#: token; ``reject`` SendTaskFailure; ``ratified`` keep the emergency upgrade; ``rollback``
#: restore ``previous_version``.
Outcome = Literal["waiting", "resume", "reject", "ratified", "rollback"]

APPROVAL_DECISIONS: frozenset[str] = frozenset({"approve", "reject"})
RATIFICATION_DECISIONS: frozenset[str] = frozenset({"ratify", "veto"})

DEFAULT_THRESHOLDS: dict[Impact, int] = {"LOW": 0, "MEDIUM": 0, "HIGH": 3, "CRITICAL": 3}
#: A signed decision may be valid for at most this long (``APPROVAL_MAX_VALIDITY_SECONDS``).
DEFAULT_MAX_DECISION_VALIDITY = timedelta(days=7)

_ID = re.compile(r"^\S{1,256}$")
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")


def check_id(value: str, what: str = "id") -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise ValueError(f"{what} must be 1-256 non-whitespace characters")
    return value


class RetiredKey(DomainModel):
    """A key an approver used before a rotation (kept so old approvals stay verifiable)."""

    key_fingerprint: str
    public_key_pem: str
    retired_at: UtcDatetime


class Approver(DomainModel):
    """One member of the approver registry (``approver_id`` is the approver's OIDC ``sub``)."""

    approver_id: str
    public_key_pem: str
    key_fingerprint: str
    active: bool = True
    added_at: UtcDatetime
    updated_at: UtcDatetime
    previous_keys: tuple[RetiredKey, ...] = ()
    version: int = 1


class ThresholdPolicy(DomainModel):
    """How many valid approvals each kind of subject needs.

    ``thresholds`` per impact (0 = no multisig: publish directly); ``settlement`` for
    settlement plans; ``ratification_window`` for emergency upgrades (48 h by default).
    """

    thresholds: dict[Impact, int] = Field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    settlement: int = 3
    ratification_window: timedelta = timedelta(hours=48)
    #: how far in the future a signed decision's ``expiresAt`` may lie (farther: ``expiry_too_far``)
    max_decision_validity: timedelta = Field(default_factory=lambda: DEFAULT_MAX_DECISION_VALIDITY)

    @field_validator("max_decision_validity")
    @classmethod
    def _positive_validity(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("max_decision_validity must be positive")
        return value

    @field_validator("thresholds")
    @classmethod
    def _non_negative(cls, value: dict[Impact, int]) -> dict[Impact, int]:
        if any(v < 0 for v in value.values()):
            raise ValueError("thresholds must be >= 0")
        return value

    def threshold(self, impact: Impact) -> int:
        return self.thresholds.get(impact, 0)

    def requires_approval(self, impact: Impact) -> bool:
        return self.threshold(impact) > 0

    @property
    def max_threshold(self) -> int:
        return max([self.settlement, *self.thresholds.values()])


class ApprovalRecord(DomainModel):
    """A verified decision, kept with its signature so an auditor can re-verify it later."""

    approver_id: str
    decision: Decision
    expires_at: str
    nonce: str
    signature: str
    key_fingerprint: str
    recorded_at: UtcDatetime


class ApprovalSubject(DomainModel):
    """What approvers sign for: the shared part of an :class:`Upgrade` and a
    :class:`SettlementApproval`. ``subject_id``/``digest`` are what a signature binds."""

    kind: SubjectKind
    threshold: int
    status: SubjectStatus = "Pending"
    task_token: str | None = None
    approvals: tuple[ApprovalRecord, ...] = ()
    ratifications: tuple[ApprovalRecord, ...] = ()
    nonces_used: tuple[str, ...] = ()
    proposed_by: str
    created_at: UtcDatetime
    deadline: UtcDatetime | None = None
    version: int = 1

    @property
    def subject_id(self) -> str:
        raise NotImplementedError

    @property
    def digest(self) -> str:
        raise NotImplementedError

    def records(self, collection: Collection) -> tuple[ApprovalRecord, ...]:
        return self.approvals if collection == "approvals" else self.ratifications

    def count(self, collection: Collection, decision: Decision) -> int:
        return sum(1 for r in self.records(collection) if r.decision == decision)


class Upgrade(ApprovalSubject):
    """A governed release of a package (HIGH/CRITICAL impact, or an emergency apply)."""

    kind: Literal["upgrade"] = "upgrade"
    upgrade_id: str
    package_id: str
    manifest_digest: str
    impact: Impact
    emergency: bool = False
    previous_version: str | None = None
    applied_at: UtcDatetime | None = None
    ratification_deadline: UtcDatetime | None = None

    @property
    def subject_id(self) -> str:
        return self.upgrade_id

    @property
    def digest(self) -> str:
        return self.manifest_digest


class SettlementApproval(ApprovalSubject):
    """The multisig record of a settlement plan (``plan_digest`` = sha256 of the canonical plan)."""

    kind: Literal["settlement"] = "settlement"
    settlement_id: str
    plan_digest: str

    @property
    def subject_id(self) -> str:
        return self.settlement_id

    @property
    def digest(self) -> str:
        return self.plan_digest


_SUBJECT_ADAPTER: TypeAdapter[Upgrade | SettlementApproval] = TypeAdapter(
    Annotated[Upgrade | SettlementApproval, Field(discriminator="kind")]
)


def subject_from_dict(data: dict[str, Any]) -> Upgrade | SettlementApproval:
    """Load a stored subject (camelCase JSON from ``to_json_dict``) of either kind."""
    return _SUBJECT_ADAPTER.validate_python(data)


class ApprovalForm(DomainModel):
    """What an approver submits: the signed fields plus the base64 DER ``signature``.

    ``subject_id``/``digest`` are optional echoes (``upgradeId``/``manifestDigest`` or
    ``settlementId``/``planDigest``); when present they must name the subject they are posted to.
    """

    approver_id: str
    decision: Decision
    expires_at: str
    nonce: str
    signature: str
    subject_id: str | None = Field(
        default=None, validation_alias=AliasChoices("upgradeId", "settlementId", "subjectId", "subject_id")
    )
    digest: str | None = Field(
        default=None, validation_alias=AliasChoices("manifestDigest", "planDigest", "digest")
    )

    @field_validator("approver_id")
    @classmethod
    def _approver_id(cls, value: str) -> str:
        return check_id(value, "approverId")

    @field_validator("expires_at")
    @classmethod
    def _expires_at(cls, value: str) -> str:
        parse_rfc3339(value)
        return value

    @field_validator("nonce")
    @classmethod
    def _nonce(cls, value: str) -> str:
        if not _NONCE.match(value):
            raise ValueError("nonce must be 16-128 characters of [A-Za-z0-9_-]")
        return value

    @field_validator("signature")
    @classmethod
    def _signature(cls, value: str) -> str:
        if not value or len(value) > 512:
            raise ValueError("signature must be base64 DER (at most 512 characters)")
        return value
