"""Small shared pieces of the domain: audit event drafts, the caller, the UTC datetime field, the model base.

Canonical JSON, hashing and RFC 3339 time live in :mod:`hallmark.canonical`; keys and
signatures in :mod:`hallmark.signing`; the event vocabulary in :mod:`hallmark.audit.events`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Protocol

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, PlainSerializer
from pydantic.alias_generators import to_camel

from hallmark.audit.events import derive_event_id, flow_of, validate_event_type
from hallmark.canonical import as_utc, canonical_bytes, digest_of, to_rfc3339

# --------------------------------------------------------------------------- events

@dataclass(frozen=True, slots=True)
class EventDraft:
    """An audit event to record: the caller hands it to ``AuditEmitter.emit``.

    ``event_id`` is deterministic (type, subject, actor and the digest of data), so a retried step that
    produces the same draft is deduplicated by the audit log's idempotency on event ids.
    """

    type: str
    subject: str
    data: dict[str, Any] = field(default_factory=dict)
    actor: str = "system"

    def __post_init__(self) -> None:
        validate_event_type(self.type)  # fail fast: one vocabulary, hallmark.audit.events.EVENT_TYPES
        canonical_bytes(self.data)  # fail fast: event data must be plain JSON (no datetimes, floats ok)

    @property
    def event_id(self) -> str:
        return derive_event_id(self.type, self.subject, self.actor, digest_of(self.data))

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

def _to_rfc3339_auto(moment: datetime) -> str:
    return to_rfc3339(moment, "auto")


UtcDatetime = Annotated[
    AwareDatetime,
    AfterValidator(as_utc),
    PlainSerializer(_to_rfc3339_auto, return_type=str, when_used="json"),
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
