"""The ceremony flow's steps over ports (no boto3): each records its own audit events and
settles the waiting execution, so no handler has an event to remember or a token to juggle.

The "Wait for witnesses" task token is claimed once (``TaskTokens.claim_task_token``): of this
step's :meth:`CeremonySteps.wait` and the API's :meth:`CeremonySteps.settle`, exactly one
resumes the execution."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from hallmark._domain import Principal, emit_all
from hallmark.canonical import to_rfc3339
from hallmark.ceremony.models import Ceremony
from hallmark.ceremony.ports import TaskTokens
from hallmark.ceremony.service import CeremonyChange, CeremonyService, WitnessChange, WitnessRegistry
from hallmark.docstore import DocStore
from hallmark.errors import DomainError, NotFound
from hallmark.ports import AuditEmitter, EventPublisher, ExecutionControl, TokenNotWaiting

CHAIN = "ceremony"

#: What became of the waiting execution after a change: ``resumed``; ``not_claimed`` (not
#: witnessed yet, or the other side resumes it); ``not_waiting`` (its deadline fired first:
#: "Mark lapsed" finds it Witnessed and signs it); ``failed`` (the token is released for a retry).
Resumption = Literal["resumed", "not_claimed", "not_waiting", "failed"]


@dataclass(frozen=True)
class Settled:
    ceremony: Ceremony
    resumption: Resumption

    @property
    def resumed(self) -> bool:
        return self.resumption == "resumed"


def _witnessed(ceremony_id: str) -> dict[str, str]:
    return {"ceremonyId": ceremony_id, "status": "Witnessed"}


class CeremonySteps:
    def __init__(self, service: CeremonyService, tokens: TaskTokens, registry: WitnessRegistry,
                 audit: AuditEmitter, executions: ExecutionControl, bus: EventPublisher) -> None:
        self.service = service
        self.bus = bus
        self.tokens = tokens
        self.registry = registry
        self.audit = audit
        self.executions = executions

    def open(self, *, initiator: str, tier: str, ceremony_type: str, artifacts: list[str], blessing: str,
             now: datetime, deadline_seconds: int) -> tuple[Ceremony, str]:
        """Initiate the ceremony, record it, start its execution; returns it and the execution ARN."""
        change = self.service.initiate(initiator=initiator, tier=tier, ceremony_type=ceremony_type,
                                       artifacts=artifacts, blessing=blessing, now=now,
                                       deadline=now + timedelta(seconds=deadline_seconds))
        emit_all(self.audit, CHAIN, change.events)
        ceremony = change.ceremony
        arn = self.executions.start(ceremony.ceremony_id, {"ceremonyId": ceremony.ceremony_id, "tier": ceremony.tier,
                                                           "deadlineSeconds": deadline_seconds})
        return ceremony, arn

    def change(self, ceremony_id: str, change: Callable[[Ceremony], CeremonyChange]) -> Settled:
        """Apply a change (retried on concurrent writes), record its events, and resume the
        waiting execution if the ceremony is now Witnessed and this caller claims the token."""
        done = self.service.retrying(ceremony_id, change)
        emit_all(self.audit, CHAIN, done.events)
        if done.ceremony.status != "Witnessed":
            return Settled(done.ceremony, "not_claimed")
        return Settled(done.ceremony, self._resume(ceremony_id))

    def add_witness(self, ceremony_id: str, witness_id: str, signature: str, now: datetime,
                    caller_sub: str) -> Settled:
        return self.change(ceremony_id, lambda c: self.service.add_witness(c, witness_id, signature, now,
                                                                           caller_sub=caller_sub))

    def bless(self, ceremony_id: str, caller: Principal, now: datetime) -> Settled:
        return self.change(ceremony_id, lambda c: self.service.bless(c, caller, now))

    def mark_lapsed(self, ceremony_id: str, now: datetime) -> Ceremony:
        """The "Mark lapsed" step: a ceremony still gathering at its deadline ends Lapsed
        (``CeremonyLapsed``, recorded); one already Witnessed stays so."""
        done = self.service.retrying(ceremony_id, lambda c: self.service.mark_lapsed(c, now))
        emit_all(self.audit, CHAIN, done.events)
        return done.ceremony

    def sign(self, ceremony_id: str, now: datetime) -> Ceremony:
        """The "Sign provenance" step: the provenance record signed as a DSSE envelope, stored
        with the ceremony and recorded."""
        done = self.service.retrying(ceremony_id, lambda c: self.service.sign_provenance(c, now))
        emit_all(self.audit, CHAIN, done.events)
        return done.ceremony

    def register_witness(self, caller: Principal, witness_id: str, public_key_pem: str,
                         now: datetime) -> WitnessChange:
        change = self.registry.register(caller, witness_id, public_key_pem, now)
        emit_all(self.audit, CHAIN, change.events)
        return change

    def _resume(self, ceremony_id: str) -> Resumption:
        token = self.tokens.claim_task_token(ceremony_id)
        if token is None:
            return "not_claimed"
        try:
            self.executions.resume(token, _witnessed(ceremony_id))
        except TokenNotWaiting:
            return "not_waiting"
        except Exception:
            self.tokens.release_task_token(ceremony_id)
            return "failed"
        return "resumed"

    def wait(self, ceremony_id: str, token: str) -> dict[str, object]:
        """The "Wait for witnesses" step: keep the token on the ceremony; if the witnesses
        completed before it was stored, resume the execution now (a failure releases the token
        and raises, so the step is retried)."""
        self.tokens.attach_task_token(ceremony_id, token)
        claimed = self.tokens.claim_task_token(ceremony_id)
        if claimed is not None:
            try:
                self.executions.resume(claimed, _witnessed(ceremony_id))
            except Exception:
                self.tokens.release_task_token(ceremony_id)
                raise
        return {"ceremonyId": ceremony_id, "waiting": claimed is None}

    def award(self, ceremony_id: str, now: datetime) -> dict[str, object]:
        """The "Award tiers" step: every artifact moves up to its tier in one conditional
        transaction (``TierAwarded`` each, audited); ``CeremonyCompleted`` and ``TierAwarded``
        are published on the bus for other systems."""
        done = self.service.retrying(ceremony_id, lambda c: self.service.award_tiers(c, now))
        emit_all(self.audit, CHAIN, done.events)
        ceremony = done.ceremony
        attestation = ceremony.provenance
        if attestation is None:
            raise ValueError(f"ceremony {ceremony_id} has no signed provenance to award tiers on")
        self.bus.publish("CeremonyCompleted", {"ceremonyId": ceremony.ceremony_id, "tier": ceremony.tier,
                                               "signatureId": attestation.signature_id,
                                               "artifacts": list(ceremony.artifacts),
                                               "witnesses": attestation.record["witnesses"]})
        for artifact in ceremony.awarded:
            self.bus.publish("TierAwarded", {"artifactId": artifact, "tier": ceremony.tier,
                                             "ceremonyId": ceremony.ceremony_id,
                                             "signatureId": attestation.signature_id})
        return {"ceremonyId": ceremony.ceremony_id, "status": ceremony.status, "tier": ceremony.tier,
                "awarded": list(ceremony.awarded),
                "alreadyHeld": [a for a in ceremony.artifacts if a not in ceremony.awarded]}


PLAN = "deployment-plan"


class DeploymentPlanSteps:
    """The provenance-aware plan of an artifact (tier sizing from verified provenance, nothing
    deployed): stored and recorded (``DeploymentPlanned``), or refused and recorded
    (``DeploymentRefused``, nothing else changes)."""

    def __init__(self, service: CeremonyService, docs: DocStore, audit: AuditEmitter,
                 clock: Callable[[], datetime]) -> None:
        self.service = service
        self.docs = docs
        self.audit = audit
        self.clock = clock

    def plan(self, artifact_id: str, environment: str, actor: str) -> dict[str, Any]:
        plan_id = f"plan-{uuid.uuid4()}"
        try:
            planned = self.service.plan_deployment(artifact_id, environment, actor=actor, deployment_id=plan_id)
        except DomainError as exc:
            emit_all(self.audit, CHAIN, list(exc.events))
            raise
        doc = {"deploymentId": plan_id, "plannedBy": actor, "plannedAt": to_rfc3339(self.clock(), "auto"),
               **planned.plan.to_json_dict()}
        self.docs.create(PLAN, plan_id, doc)
        emit_all(self.audit, CHAIN, planned.events)
        return doc

    def get(self, plan_id: str) -> dict[str, Any]:
        doc = self.docs.get(PLAN, plan_id)
        if doc is None:
            raise NotFound("deployment plan", plan_id)
        doc.pop("version", None)
        return doc
