"""Witness ceremonies: bronze/silver/gold provenance tiers, signed provenance records, and
provenance-aware deployment planning."""

from hallmark.ceremony.deployment import (
    BASE_RESOURCES,
    MONITORING,
    PlannedDeployment,
    plan_deployment,
    resource_profile,
)
from hallmark.ceremony.models import (
    TIER_RULES,
    ArtifactProvenance,
    Blessing,
    Ceremony,
    CeremonyStatus,
    CeremonyType,
    DeploymentPlan,
    Environment,
    MonitoringProfile,
    ProvenanceAttestation,
    ResourceProfile,
    Tier,
    TierRule,
    Witness,
    WitnessSignature,
)
from hallmark.ceremony.ports import (
    CeremonyRepository,
    InMemoryCeremonyRepository,
    InMemoryWitnessRepository,
    TierAward,
    WitnessRepository,
)
from hallmark.ceremony.provenance import (
    ceremony_payload,
    provenance_payload,
    provenance_record,
    signature_id,
    verify_attestation,
)
from hallmark.ceremony.service import CeremonyChange, CeremonyService, WitnessChange, WitnessRegistry

__all__ = [
    "BASE_RESOURCES",
    "MONITORING",
    "TIER_RULES",
    "ArtifactProvenance",
    "Blessing",
    "Ceremony",
    "CeremonyChange",
    "CeremonyRepository",
    "CeremonyService",
    "CeremonyStatus",
    "CeremonyType",
    "DeploymentPlan",
    "Environment",
    "InMemoryCeremonyRepository",
    "InMemoryWitnessRepository",
    "MonitoringProfile",
    "PlannedDeployment",
    "ProvenanceAttestation",
    "ResourceProfile",
    "Tier",
    "TierAward",
    "TierRule",
    "Witness",
    "WitnessChange",
    "WitnessRegistry",
    "WitnessRepository",
    "WitnessSignature",
    "ceremony_payload",
    "plan_deployment",
    "provenance_payload",
    "provenance_record",
    "resource_profile",
    "signature_id",
    "verify_attestation",
]
