"""Ceremony records: tiers and their rules, witnesses, ceremonies, provenance, deployment plans."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from hallmark._domain import DomainModel, UtcDatetime

Tier = Literal["bronze", "silver", "gold"]
CeremonyType = Literal["release", "update", "milestone", "collaboration"]
CeremonyStatus = Literal["Gathering", "Witnessed", "Signed", "Completed", "Lapsed"]
"""``Gathering`` -> (``Witnessed`` -> ``Signed`` ->) ``Completed``, or ``Lapsed`` at the deadline.

The staged statuses are used when a state machine runs the completion (``CeremonyService(
staged=True)``): ``Witnessed`` = enough witnesses (and the blessing); ``Signed`` = the
provenance record is signed and stored; ``Completed`` = the tiers are awarded."""
Environment = Literal["development", "staging", "production"]

TIERS: tuple[Tier, ...] = ("bronze", "silver", "gold")
CEREMONY_TYPES: tuple[CeremonyType, ...] = ("release", "update", "milestone", "collaboration")
ENVIRONMENTS: tuple[Environment, ...] = ("development", "staging", "production")


@dataclass(frozen=True, slots=True)
class TierRule:
    min_witnesses: int
    min_artifacts: int
    requires_blessing: bool
    #: the tier an artifact must hold before this ceremony (``None``: no tier yet)
    requires_prior: Tier | None


TIER_RULES: dict[Tier, TierRule] = {
    "bronze": TierRule(1, 1, False, None),
    "silver": TierRule(3, 3, False, "bronze"),
    "gold": TierRule(5, 5, True, "silver"),
}


def tier_rank(tier: Tier | None) -> int:
    """0 for no tier, 1 bronze, 2 silver, 3 gold."""
    return 0 if tier is None else TIERS.index(tier) + 1


class Witness(DomainModel):
    """A registered witness (``witness_id`` is the witness's OIDC ``sub``)."""

    witness_id: str
    public_key_pem: str
    key_fingerprint: str
    active: bool = True
    registered_at: UtcDatetime
    version: int = 1


class WitnessSignature(DomainModel):
    witness_id: str
    key_fingerprint: str
    signature: str
    signed_at: UtcDatetime


class Blessing(DomainModel):
    """A superadmin's blessing of a gold ceremony."""

    superadmin: str
    blessed_at: UtcDatetime


class ProvenanceAttestation(DomainModel):
    """The signed provenance record: ``signature`` (base64 DER) by ``key_id`` over
    ``encode(record)`` (RFC 8785 of the record by default). ``signature_id`` names it.

    When signed as a DSSE envelope (``payload_type`` set), ``envelope`` is the envelope
    itself (``payload`` = base64 of RFC 8785 of ``record``) and ``signature`` its signature
    over ``PAE(payload_type, payload)``; ``signature_id`` hashes those PAE bytes."""

    record: dict[str, Any]
    key_id: str
    signature: str
    signature_id: str
    payload_type: str | None = None
    envelope: dict[str, Any] | None = None


class Ceremony(DomainModel):
    ceremony_id: str
    initiator: str
    tier: Tier
    type: CeremonyType
    artifacts: tuple[str, ...]
    blessing: str
    """The human-readable ceremony description (the seed's ``blessing`` text)."""
    created_at: UtcDatetime
    deadline: UtcDatetime
    status: CeremonyStatus = "Gathering"
    witnesses: tuple[WitnessSignature, ...] = ()
    blessed_by: Blessing | None = None
    provenance: ProvenanceAttestation | None = None
    completed_at: UtcDatetime | None = None
    awarded: tuple[str, ...] = ()
    """The artifacts whose tier this ceremony raised (staged completion; an artifact that
    already held the tier through a concurrent ceremony is not in it)."""
    awarded_at: UtcDatetime | None = None
    version: int = 1

    @property
    def rule(self) -> TierRule:
        return TIER_RULES[self.tier]

    @property
    def witness_ids(self) -> tuple[str, ...]:
        return tuple(w.witness_id for w in self.witnesses)

    def is_complete(self) -> bool:
        """Enough distinct witnesses, and for gold a blessing."""
        rule = self.rule
        return len(set(self.witness_ids)) >= rule.min_witnesses and (
            not rule.requires_blessing or self.blessed_by is not None
        )


class ArtifactProvenance(DomainModel):
    """An artifact's current tier and the provenance that awarded it."""

    artifact_id: str
    tier: Tier
    ceremony_id: str
    signature_id: str
    awarded_at: UtcDatetime
    version: int = 1


class ResourceProfile(DomainModel):
    cpu_millis: int
    vcpu: str
    memory_mib: int
    storage_gib: int


class MonitoringProfile(DomainModel):
    log_retention_days: int
    metric_retention_days: int
    alerts: Literal["basic", "standard", "comprehensive"]


class DeploymentPlan(DomainModel):
    artifact_id: str
    environment: Environment
    tier: Tier
    resources: ResourceProfile
    monitoring: MonitoringProfile
    annotations: dict[str, str]
