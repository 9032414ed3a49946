"""The audit event (wire format), its hash, and the event-type vocabulary.

Wire format (``docs/wire-format.md``): ``{"id", "chain", "seq", "ts", "type", "actor", "subject", "data",
"prevHash", "hash", "signature"}``; ``hash = sha256(RFC8785(event without "hash" and
"signature"))`` as lowercase hex; ``prevHash`` of seq 1 is :data:`GENESIS`; ``signature`` is
``null`` until a checkpoint covers the event, then ``{"checkpoint": <seq>, "keyId": ...}``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hallmark.canonical import canonical_bytes, is_rfc3339_utc, sha256_hex

__all__ = [
    "ALL_EVENT_TYPES",
    "CHAIN_PATTERN",
    "EVENT_FIELDS",
    "EVENT_TYPES",
    "GENESIS",
    "HASHED_FIELDS",
    "AuditEvent",
    "CheckpointRef",
    "UnknownEventType",
    "derive_event_id",
    "event_hash",
    "flow_of",
    "is_hex64",
    "validate_event_type",
]

GENESIS: Final = "0" * 64

EVENT_FIELDS: Final = (
    "id", "chain", "seq", "ts", "type", "actor", "subject", "data", "prevHash", "hash", "signature",
)  # fmt: skip
HASHED_FIELDS: Final = tuple(f for f in EVENT_FIELDS if f not in ("hash", "signature"))

EVENT_TYPES: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "release": (
            "PackageSubmitted", "PackageUploaded", "ValidationPassed", "ValidationFailed",
            "ManifestSigned", "PackageRejected", "PackagePublished", "ListingCreated",
            # a write to an upload key after its package was claimed (changes nothing)
            "PackageUploadIgnored",
            # a new OSV advisory-set version that dependency vetting now reads (beyond DESIGN.md's table)
            "AdvisorySetPublished",
            # who may release what (names owned and delegated, TUF-style)
            "NameClaimed", "NameOwnerAssigned", "NameDelegated", "DelegationRevoked",
        ),
        "governance": (
            "ApprovalRequested", "ApprovalRecorded", "ApprovalRefused", "UpgradeApplied",
            "UpgradeRatified", "UpgradeRolledBack", "UpgradeExpired",
            # registry maintenance and settlement expiry (beyond DESIGN.md's table, same flow)
            "ApproverAdded", "ApproverRemoved", "ApproverKeyRotated", "SettlementExpired",
            # the impact policy, changed through 3-of-5 approvals
            "ImpactPolicyChanged",
            # a subject's key material destroyed (personal data crypto-shredded; PROTOTYPE)
            "SubjectErased",
        ),
        "ceremony": (
            "CeremonyInitiated", "WitnessAdded", "BlessingGiven", "CeremonyCompleted",
            "TierAwarded", "CeremonyLapsed", "DeploymentPlanned", "DeploymentRefused",
            "WitnessRegistered", "WitnessRemoved",
            # deployments that deploy (hallmark.deploy): each step of the flow, drift and revocation
            "DeploymentAdmitted", "DeploymentVersionPublished", "DeploymentCodeMismatch", "DeploymentProfileApplied",
            "DeploymentCanaryStarted", "DeploymentPromoted", "DeploymentRolledBack", "DeploymentDrifted",
            "DeploymentReverted", "DeploymentFailed",
        ),
        "market": ("OrderPlaced", "LedgerPosted", "DeliveryIssued", "SettlementPlanned", "PayoutPosted",
                   "DeliveryDownloaded"),
        "scoring": ("EventsIngested", "BatchScored", "BriefCreated", "WebhookDelivered", "FeedbackRecorded",
                    "WeightsProposed", "WeightsPromoted", "WeightsRolledBack"),
    }
)  # fmt: skip
ALL_EVENT_TYPES: Final = frozenset(t for types in EVENT_TYPES.values() for t in types)
_FLOW_OF: Final = {t: flow for flow, types in EVENT_TYPES.items() for t in types}

CHAIN_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_HEX64: Final = r"^[0-9a-f]{64}$"
_HEX64_RE = re.compile(_HEX64)


_EVENT_ID_NAMESPACE: Final = uuid.UUID("6f1c9a52-3a43-4a53-9d8e-6c1d8b7f0a11")


def derive_event_id(*parts: str) -> str:
    """The one deterministic audit event id scheme: a UUIDv5 (32 hex) of the parts joined by ``/``, so the
    same step retried (same parts) records once (the audit log is idempotent on ids)."""
    return uuid.uuid5(_EVENT_ID_NAMESPACE, "/".join(parts)).hex


class UnknownEventType(ValueError):
    """An event type outside the vocabulary of DESIGN.md."""


def validate_event_type(event_type: str) -> str:
    """Return ``event_type`` if it is in the vocabulary, else raise :class:`UnknownEventType`."""
    if event_type not in ALL_EVENT_TYPES:
        raise UnknownEventType(f"unknown audit event type {event_type!r}")
    return event_type


def flow_of(event_type: str) -> str:
    """The flow (``release``, ``governance``, ...) an event type belongs to."""
    return _FLOW_OF[validate_event_type(event_type)]


def event_hash(event: Mapping[str, Any]) -> str:
    """``sha256(RFC8785(event without "hash" and "signature"))`` as lowercase hex."""
    return sha256_hex(event_hash_bytes(event))


def event_hash_bytes(event: Mapping[str, Any]) -> bytes:
    """What :func:`event_hash` hashes: RFC 8785 JSON of ``event`` without "hash" and "signature"
    (for a caller that reads the canonical text too, so that it canonicalises once)."""
    return canonical_bytes({k: v for k, v in event.items() if k != "hash" and k != "signature"})


class CheckpointRef(BaseModel):
    """An event's ``signature``: the first checkpoint that covers it."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)

    checkpoint: int = Field(ge=1)
    keyId: str = Field(min_length=1)


class AuditEvent(BaseModel):
    """One entry of a chain, exactly the wire format's fields."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)

    id: str = Field(min_length=1, max_length=256)
    chain: str = Field(pattern=CHAIN_PATTERN)
    seq: int = Field(ge=1)
    ts: str
    type: str
    actor: str
    subject: str
    data: dict[str, Any]
    prevHash: str = Field(pattern=_HEX64)
    hash: str = Field(pattern=_HEX64)
    signature: CheckpointRef | None = None

    @field_validator("ts")
    @classmethod
    def _ts_is_rfc3339_utc(cls, value: str) -> str:
        if not is_rfc3339_utc(value):
            raise ValueError("ts must be RFC 3339 UTC, e.g. 2026-11-22T20:11:00.123Z")
        return value

    @field_validator("type")
    @classmethod
    def _type_is_known(cls, value: str) -> str:
        return validate_event_type(value)

    def hash_input(self) -> dict[str, Any]:
        """The fields the hash covers (everything but ``hash`` and ``signature``)."""
        return {
            "id": self.id, "chain": self.chain, "seq": self.seq, "ts": self.ts, "type": self.type,
            "actor": self.actor, "subject": self.subject, "data": self.data, "prevHash": self.prevHash,
        }  # fmt: skip

    def compute_hash(self) -> str:
        return sha256_hex(canonical_bytes(self.hash_input()))

    def to_wire(self) -> dict[str, Any]:
        """The wire-format dict (``signature`` as a dict or ``None``)."""
        out = self.hash_input()
        out["hash"] = self.hash
        out["signature"] = None if self.signature is None else self.signature.model_dump()
        return out

    def line(self) -> str:
        """The event as one RFC 8785 canonical JSON line (no newline)."""
        return canonical_bytes(self.to_wire()).decode("utf-8")

    @classmethod
    def create(
        cls,
        *,
        id: str,
        chain: str,
        seq: int,
        ts: str,
        type: str,
        actor: str,
        subject: str,
        data: Mapping[str, Any],
        prevHash: str,
    ) -> AuditEvent:
        """Build an event and compute its ``hash``."""
        fields: dict[str, Any] = {
            "id": id, "chain": chain, "seq": seq, "ts": ts, "type": type, "actor": actor,
            "subject": subject, "data": dict(data), "prevHash": prevHash,
        }  # fmt: skip
        return cls(**fields, hash=sha256_hex(canonical_bytes(fields)))

    @classmethod
    def from_wire(cls, obj: Mapping[str, Any], *, verify_hash: bool = True) -> AuditEvent:
        """Parse a wire dict; with ``verify_hash`` the stored hash must match the content."""
        event = cls.model_validate(dict(obj))
        if verify_hash and event.compute_hash() != event.hash:
            raise ValueError(f"event {event.chain}#{event.seq}: hash does not match its content")
        return event


def is_hex64(value: object) -> bool:
    """True for 64 lowercase hex characters."""
    return isinstance(value, str) and _HEX64_RE.match(value) is not None
