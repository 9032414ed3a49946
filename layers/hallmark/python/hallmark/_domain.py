"""Small shared pieces of the domain: audit event drafts, callers, RFC 3339 time, the model base.

Private module (to be merged by the lead with the other shared helpers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Protocol

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, PlainSerializer
from pydantic.alias_generators import to_camel

from hallmark._crypto import canonical, sha256_hex

# --------------------------------------------------------------------------- events

#: The audit vocabulary used by the governance, ceremony and market flows (DESIGN.md), plus
#: the registry-maintenance types this package adds (``Approver*``, ``Witness*``).
EventType = Literal[
    # governance
    "ApprovalRequested",
    "ApprovalRecorded",
    "ApprovalRefused",
    "UpgradeApplied",
    "UpgradeRatified",
    "UpgradeRolledBack",
    "UpgradeExpired",
    "PackageRejected",
    "SettlementExpired",
    "ImpactPolicyChanged",
    # release policy: names owned and delegated
    "NameClaimed",
    "NameOwnerAssigned",
    "NameDelegated",
    "DelegationRevoked",
    # registry maintenance (not yet in DESIGN.md's table)
    "ApproverAdded",
    "ApproverRemoved",
    "ApproverKeyRotated",
    "WitnessRegistered",
    "WitnessRemoved",
    # ceremony
    "CeremonyInitiated",
    "WitnessAdded",
    "BlessingGiven",
    "CeremonyCompleted",
    "TierAwarded",
    "CeremonyLapsed",
    "DeploymentPlanned",
    "DeploymentRefused",
    # market
    "OrderPlaced",
    "LedgerPosted",
    "DeliveryIssued",
    "SettlementPlanned",
    "PayoutPosted",
    # release: a new OSV advisory-set version (hallmark.release.advisories)
    "AdvisorySetPublished",
]


@dataclass(frozen=True, slots=True)
class EventDraft:
    """An audit event to record: the caller hands it to ``AuditEmitter.emit``.

    ``event_id`` is deterministic (type, subject, actor and data), so a retried step that
    produces the same draft is deduplicated by the audit log's idempotency on event ids.
    """

    type: EventType
    subject: str
    data: dict[str, Any] = field(default_factory=dict)
    actor: str = "system"

    def __post_init__(self) -> None:
        canonical(self.data)  # fail fast: event data must be plain JSON (no datetimes, floats ok)

    @property
    def event_id(self) -> str:
        body = {"type": self.type, "subject": self.subject, "actor": self.actor, "data": self.data}
        return sha256_hex(canonical(body))[:32]

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "subject": self.subject, "actor": self.actor, "data": self.data}


class _Emitter(Protocol):
    def emit(
        self, *, chain: str, type: str, actor: str, subject: str, data: dict[str, Any], event_id: str | None = None
    ) -> str: ...


def emit_all(emitter: _Emitter, chain: str, events: list[EventDraft] | tuple[EventDraft, ...]) -> list[str]:
    """Hand every draft to an ``AuditEmitter`` with its deterministic id; returns the ids."""
    return [
        emitter.emit(chain=chain, type=e.type, actor=e.actor, subject=e.subject, data=e.data, event_id=e.event_id)
        for e in events
    ]


def emit_by_flow(emitter: _Emitter, events: list[EventDraft] | tuple[EventDraft, ...]) -> list[str]:
    """Record drafts on the chain of their flow (DESIGN.md's vocabulary decides: an
    ``UpgradeApplied`` lands on ``governance``, a ``PackageRejected`` on ``release``)."""
    from hallmark.audit.events import flow_of

    return [
        emitter.emit(chain=flow_of(e.type), type=e.type, actor=e.actor, subject=e.subject, data=e.data,
                     event_id=e.event_id)
        for e in events
    ]


# --------------------------------------------------------------------------- callers


class Principal(Protocol):
    """Anything with the caller's ``sub`` and ``roles`` (``hallmark.http.Caller`` fits)."""

    @property
    def sub(self) -> str: ...

    @property
    def roles(self) -> frozenset[str]: ...


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated caller (JWT ``sub`` and the roles from its claims)."""

    sub: str
    roles: frozenset[str] = frozenset()

    def has_role(self, role: str) -> bool:
        return role in self.roles


# --------------------------------------------------------------------------- time

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})$"
)


def parse_rfc3339(value: str) -> datetime:
    """Parse an RFC 3339 timestamp (offset required) into an aware UTC datetime.

    Raises ``ValueError`` for anything else (a naive time, a date only, junk).
    """
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError(f"not an RFC 3339 timestamp with offset: {value!r}")
    text = value.upper()
    frac = re.search(r"\.(\d+)", text)
    if frac and len(frac.group(1)) > 6:  # Python keeps microseconds: truncate nanoseconds
        text = text.replace(frac.group(0), "." + frac.group(1)[:6])
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def format_rfc3339(moment: datetime) -> str:
    """``2026-11-22T20:11:00Z`` (UTC, ``Z``, microseconds only when non-zero)."""
    return as_utc(moment).isoformat().replace("+00:00", "Z")


def as_utc(moment: datetime) -> datetime:
    """Refuse naive datetimes; convert aware ones to UTC."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive datetime: domain times must be timezone-aware")
    return moment.astimezone(UTC)


UtcDatetime = Annotated[
    AwareDatetime,
    AfterValidator(as_utc),
    PlainSerializer(format_rfc3339, return_type=str, when_used="json"),
]


# --------------------------------------------------------------------------- models


class DomainModel(BaseModel):
    """Immutable domain record; camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        defer_build=True,  # the core schema is built on first use: a handler pays only for the models it uses
    )

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-ready dict with camelCase keys (what is stored, exported and signed)."""
        return self.model_dump(mode="json", by_alias=True)
