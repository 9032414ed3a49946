"""Provenance-aware deployment planning: no verified provenance, no deployment; the tier
picks the resource profile (doubled in production) and the monitoring retention."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from hallmark._domain import EventDraft
from hallmark.ceremony.models import (
    ENVIRONMENTS,
    TIERS,
    DeploymentPlan,
    Environment,
    MonitoringProfile,
    ResourceProfile,
    Tier,
)
from hallmark.errors import DomainError, InvalidInput

#: (cpu millis, memory MiB, storage GiB) per tier, before the production multiplier.
BASE_RESOURCES: dict[Tier, tuple[int, int, int]] = {
    "bronze": (500, 512, 1),
    "silver": (1000, 1024, 5),
    "gold": (2000, 2048, 10),
}
PRODUCTION_MULTIPLIER = 2
MONITORING: dict[Tier, MonitoringProfile] = {
    "bronze": MonitoringProfile(log_retention_days=7, metric_retention_days=1, alerts="basic"),
    "silver": MonitoringProfile(log_retention_days=30, metric_retention_days=7, alerts="standard"),
    "gold": MonitoringProfile(log_retention_days=90, metric_retention_days=30, alerts="comprehensive"),
}


@dataclass(frozen=True)
class PlannedDeployment:
    plan: DeploymentPlan
    events: list[EventDraft] = field(default_factory=list)


def resource_profile(tier: Tier, environment: Environment) -> ResourceProfile:
    cpu, memory, storage = BASE_RESOURCES[tier]
    k = PRODUCTION_MULTIPLIER if environment == "production" else 1
    cpu *= k
    vcpu = f"{cpu // 1000}" if cpu % 1000 == 0 else f"{cpu / 1000:g}"
    return ResourceProfile(cpu_millis=cpu, vcpu=vcpu, memory_mib=memory * k, storage_gib=storage * k)


def plan_deployment(
    artifact_id: str,
    environment: str,
    provenance_verified: bool,
    tier: str,
    *,
    signature_id: str | None = None,
    witnesses: Iterable[str] = (),
    actor: str = "system",
    reason: str | None = None,
    deployment_id: str | None = None,
) -> PlannedDeployment:
    """The deployment plan for an artifact whose provenance verified, or a refusal.

    Raises ``provenance_unverified`` (403) carrying a ``DeploymentRefused`` event when the
    provenance did not verify (``reason`` says why: ``no_provenance``, ``envelope_invalid``,
    ``record_mismatch``, ...); ``invalid_input``/``invalid_tier`` for unknown enum values.
    ``deployment_id`` names the request in the events (two identical requests are two events).
    """
    if environment not in ENVIRONMENTS:
        raise InvalidInput(f"unknown environment {environment!r}", {"allowed": list(ENVIRONMENTS)})
    if tier not in TIERS:
        raise DomainError("invalid_tier", f"unknown tier {tier!r}", details={"allowed": list(TIERS)})
    env: Environment = environment  # type: ignore[assignment]
    tier_: Tier = tier  # type: ignore[assignment]
    request = {"deploymentId": deployment_id} if deployment_id else {}
    if not provenance_verified:
        why = reason or "provenance_unverified"
        raise DomainError(
            "provenance_unverified",
            f"deployment refused: the artifact's provenance does not verify ({why})",
            details={"artifactId": artifact_id, "environment": env, "reason": why, "signatureId": signature_id},
            events=[EventDraft("DeploymentRefused", artifact_id,
                               {"environment": env, "reason": "provenance_unverified", "detail": why,
                                "signatureId": signature_id, **request}, actor=actor)],
        )
    witness_list = sorted(witnesses)
    annotations = {
        "hallmark.io/verified": "true",
        "hallmark.io/tier": tier_,
        "hallmark.io/environment": env,
    }
    if signature_id:
        annotations["hallmark.io/provenance-signature"] = signature_id
    if witness_list:
        annotations["hallmark.io/witnesses"] = ",".join(witness_list)
    plan = DeploymentPlan(
        artifact_id=artifact_id,
        environment=env,
        tier=tier_,
        resources=resource_profile(tier_, env),
        monitoring=MONITORING[tier_],
        annotations=annotations,
    )
    event = EventDraft("DeploymentPlanned", artifact_id, {
        "environment": env, "tier": tier_, "signatureId": signature_id,
        "resources": plan.resources.to_json_dict(), "monitoring": plan.monitoring.to_json_dict(), **request,
    }, actor=actor)
    return PlannedDeployment(plan, [event])
