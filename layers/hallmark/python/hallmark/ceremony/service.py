"""Witness registry and ceremony service: initiate, witness, bless, complete, lapse, deploy."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hallmark._domain import EventDraft, Principal
from hallmark.canonical import as_utc, to_rfc3339
from hallmark.ceremony.deployment import PlannedDeployment, plan_deployment
from hallmark.ceremony.models import (
    CEREMONY_TYPES,
    TIER_RULES,
    TIERS,
    ArtifactProvenance,
    Blessing,
    Ceremony,
    CeremonyType,
    ProvenanceAttestation,
    Tier,
    Witness,
    WitnessSignature,
    tier_rank,
)
from hallmark.ceremony.ports import CeremonyRepository, TierAward, WitnessRepository
from hallmark.ceremony.provenance import (
    RecordEncoder,
    artifact_provenance_failure,
    attest_dsse,
    attestation_failure,
    ceremony_payload,
    dsse_encoder,
    provenance_payload,
    provenance_record,
    signature_id,
)
from hallmark.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from hallmark.governance.models import check_id
from hallmark.ports import Signer
from hallmark.signing import b64decode, b64encode, public_key_fingerprint, verify_signature

SUPERADMIN = "superadmin"
DEFAULT_CEREMONY_WINDOW = timedelta(days=7)
MAX_DESCRIPTION = 2000
CONFLICT_ATTEMPTS = 6


@dataclass(frozen=True)
class CeremonyChange:
    ceremony: Ceremony
    events: list[EventDraft] = field(default_factory=list)


@dataclass(frozen=True)
class WitnessChange:
    witness: Witness
    events: list[EventDraft] = field(default_factory=list)


class WitnessRegistry:
    """Witnesses and their P-256 public keys, maintained by superadmins."""

    def __init__(self, repo: WitnessRepository) -> None:
        self._repo = repo

    def get(self, witness_id: str) -> Witness | None:
        witness = self._repo.get(witness_id)
        return witness if witness is not None and witness.active else None

    def register(self, caller: Principal, witness_id: str, public_key_pem: str, now: datetime) -> WitnessChange:
        _require_superadmin(caller)
        _check_id(witness_id, "witnessId")
        try:
            fingerprint = public_key_fingerprint(public_key_pem)
        except ValueError as exc:
            raise InvalidInput(str(exc), {"field": "publicKeyPem"}) from None
        existing = self._repo.get(witness_id)
        if existing is not None and existing.active:
            raise Conflict(f"witness {witness_id!r} already registered", {"witnessId": witness_id})
        witness = Witness(witness_id=witness_id, public_key_pem=public_key_pem, key_fingerprint=fingerprint,
                          registered_at=as_utc(now), version=(existing.version + 1) if existing else 1)
        self._repo.put(witness, expected_version=existing.version if existing else None)
        return WitnessChange(witness, [EventDraft("WitnessRegistered", witness_id,
                                                  {"keyFingerprint": fingerprint}, actor=caller.sub)])

    def remove(self, caller: Principal, witness_id: str, now: datetime) -> WitnessChange:
        _require_superadmin(caller)
        as_utc(now)
        existing = self._repo.get(witness_id)
        if existing is None or not existing.active:
            raise NotFound("witness", witness_id, code="unknown_witness")
        removed = existing.model_copy(update={"active": False, "version": existing.version + 1})
        self._repo.put(removed, expected_version=existing.version)
        return WitnessChange(removed, [EventDraft("WitnessRemoved", witness_id,
                                                  {"keyFingerprint": existing.key_fingerprint}, actor=caller.sub)])


class CeremonyService:
    """Runs ceremonies. Completion (enough distinct verified witnesses, and a superadmin
    blessing for gold) signs the provenance record through the ``Signer`` port and awards
    the tier to every artifact in the same atomic write.

    ``staged=True`` splits completion into the steps a state machine runs: the witness (or
    blessing) that completes the ceremony leaves it ``Witnessed``; :meth:`sign_provenance`
    signs and stores the record (``Signed``, ``CeremonyCompleted``); :meth:`award_tiers`
    raises each artifact's tier (``Completed``, ``TierAwarded``). ``payload_type`` signs the
    record as a DSSE envelope of that type (``hallmark.dsse``) instead of ``encode``.
    """

    def __init__(
        self,
        ceremonies: CeremonyRepository,
        witnesses: WitnessRegistry,
        signer: Signer,
        *,
        encode: RecordEncoder = provenance_payload,
        window: timedelta = DEFAULT_CEREMONY_WINDOW,
        staged: bool = False,
        payload_type: str | None = None,
    ) -> None:
        self._repo = ceremonies
        self._witnesses = witnesses
        self._signer = signer
        self._payload_type = payload_type
        self._encode = dsse_encoder(payload_type) if payload_type else encode
        self._window = window
        self._staged = staged

    def retrying(self, ceremony_id: str, change: Callable[[Ceremony], CeremonyChange]) -> CeremonyChange:
        """Load the ceremony and apply ``change``; on a concurrent write (``conflict``), reload
        and apply again (optimistic concurrency: concurrent witnesses all land)."""
        for attempt in range(CONFLICT_ATTEMPTS):
            try:
                return change(self.load(ceremony_id))
            except Conflict as exc:
                if exc.code != "conflict" or attempt == CONFLICT_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def load(self, ceremony_id: str) -> Ceremony:
        ceremony = self._repo.get(ceremony_id)
        if ceremony is None:
            raise NotFound("ceremony", ceremony_id)
        return ceremony

    # ------------------------------------------------------------------ initiate
    def initiate(
        self,
        *,
        initiator: str,
        tier: str,
        ceremony_type: str,
        artifacts: list[str] | tuple[str, ...],
        blessing: str,
        now: datetime,
        ceremony_id: str | None = None,
        deadline: datetime | None = None,
    ) -> CeremonyChange:
        """Open a ceremony. The initiator must be a registered witness and sign first
        (:meth:`add_witness`); each artifact must currently hold the tier just below."""
        now = as_utc(now)
        if tier not in TIERS:
            raise DomainError("invalid_tier", f"unknown tier {tier!r}", details={"allowed": list(TIERS)})
        if ceremony_type not in CEREMONY_TYPES:
            raise InvalidInput(f"unknown ceremony type {ceremony_type!r}", {"allowed": list(CEREMONY_TYPES)})
        target: Tier = tier  # type: ignore[assignment]
        kind: CeremonyType = ceremony_type  # type: ignore[assignment]
        rule = TIER_RULES[target]
        for artifact in artifacts:
            _check_id(artifact, "artifact")
        if len(set(artifacts)) != len(artifacts):
            raise InvalidInput("artifacts must be distinct", {"artifacts": list(artifacts)})
        if len(artifacts) < rule.min_artifacts:
            raise DomainError("too_few_artifacts", f"a {target} ceremony needs at least {rule.min_artifacts} artifacts",
                              details={"required": rule.min_artifacts, "given": len(artifacts)})
        if not blessing.strip() or len(blessing) > MAX_DESCRIPTION:
            raise InvalidInput(f"blessing (the ceremony description) must be 1-{MAX_DESCRIPTION} characters",
                               {"field": "blessing"})
        if self._witnesses.get(initiator) is None:
            raise Forbidden(f"initiator {initiator!r} is not a registered witness", {"initiator": initiator},
                            code="unknown_witness")
        self._check_climb(target, artifacts)
        end = as_utc(deadline) if deadline else now + self._window
        if end <= now:
            raise InvalidInput("deadline must be in the future", {"field": "deadline"})
        ceremony = Ceremony(
            ceremony_id=ceremony_id or f"cer-{uuid.uuid4()}",
            initiator=initiator, tier=target, type=kind, artifacts=tuple(sorted(artifacts)), blessing=blessing,
            created_at=now, deadline=end,
        )
        _check_id(ceremony.ceremony_id, "ceremonyId")
        self._repo.create(ceremony)
        return CeremonyChange(ceremony, [EventDraft("CeremonyInitiated", ceremony.ceremony_id, {
            "tier": target, "type": kind, "artifacts": list(ceremony.artifacts), "initiator": initiator,
            "requiredWitnesses": rule.min_witnesses, "requiresBlessing": rule.requires_blessing,
            "deadline": to_rfc3339(end, "auto"),
        }, actor=initiator)])

    # ------------------------------------------------------------------ witness / bless
    def add_witness(
        self,
        ceremony: Ceremony,
        witness_id: str,
        signature: str,
        now: datetime,
        *,
        caller_sub: str | None = None,
    ) -> CeremonyChange:
        """Add one distinct witness whose signature over :func:`ceremony_payload` verifies
        against the registered key; completes the ceremony when its rule is met."""
        now = as_utc(now)
        self._require_gathering(ceremony, now)
        if caller_sub is not None and caller_sub != witness_id:
            raise Forbidden("the caller may only witness as themself",
                            {"witnessId": witness_id, "caller": caller_sub}, code="witness_mismatch")
        witness = self._witnesses.get(witness_id)
        if witness is None:
            raise Forbidden(f"{witness_id!r} is not a registered witness", {"witnessId": witness_id},
                            code="unknown_witness")
        if not ceremony.witnesses and witness_id != ceremony.initiator:
            raise DomainError("initiator_first", "the initiator is the first witness",
                              details={"initiator": ceremony.initiator})
        if witness_id in ceremony.witness_ids:
            raise DomainError("duplicate_witness", f"{witness_id!r} has already witnessed",
                              details={"witnessId": witness_id})
        try:
            der = b64decode(signature)
        except ValueError:
            der = b""
        if not der or not verify_signature(witness.public_key_pem, ceremony_payload(ceremony), der):
            raise DomainError("bad_signature", "the witness signature does not verify for this ceremony",
                              details={"witnessId": witness_id, "keyFingerprint": witness.key_fingerprint})
        entry = WitnessSignature(witness_id=witness_id, key_fingerprint=witness.key_fingerprint,
                                 signature=signature, signed_at=now)
        updated = ceremony.model_copy(update={"witnesses": (*ceremony.witnesses, entry),
                                              "version": ceremony.version + 1})
        event = EventDraft("WitnessAdded", ceremony.ceremony_id, {
            "witnessId": witness_id, "keyFingerprint": witness.key_fingerprint,
            "witnesses": len(updated.witnesses), "required": ceremony.rule.min_witnesses,
        }, actor=witness_id)
        return self._commit(ceremony, updated, [event], now)

    def bless(self, ceremony: Ceremony, caller: Principal, now: datetime) -> CeremonyChange:
        """A superadmin (not the initiator) blesses a gold ceremony."""
        now = as_utc(now)
        _require_superadmin(caller)
        if not ceremony.rule.requires_blessing:
            raise DomainError("not_applicable", f"a {ceremony.tier} ceremony takes no blessing",
                              details={"tier": ceremony.tier})
        self._require_gathering(ceremony, now)
        if caller.sub == ceremony.initiator:
            raise Forbidden("the initiator cannot bless their own ceremony", {"initiator": ceremony.initiator},
                            code="self_blessing")
        if ceremony.blessed_by is not None:
            raise Conflict("the ceremony is already blessed", {"superadmin": ceremony.blessed_by.superadmin},
                           code="already_blessed")
        updated = ceremony.model_copy(update={"blessed_by": Blessing(superadmin=caller.sub, blessed_at=now),
                                              "version": ceremony.version + 1})
        event = EventDraft("BlessingGiven", ceremony.ceremony_id, {"tier": ceremony.tier}, actor=caller.sub)
        return self._commit(ceremony, updated, [event], now)

    # ------------------------------------------------------------------ lapse
    def lapse_if_due(self, ceremony: Ceremony, now: datetime) -> CeremonyChange:
        """At the deadline an incomplete ceremony lapses (no-op before it, or once decided)."""
        now = as_utc(now)
        if ceremony.status != "Gathering" or now < ceremony.deadline:
            return CeremonyChange(ceremony)
        lapsed = ceremony.model_copy(update={"status": "Lapsed", "version": ceremony.version + 1})
        self._repo.save(lapsed, expected_version=ceremony.version)
        return CeremonyChange(lapsed, [self._lapsed_event(ceremony)])

    # ------------------------------------------------------------------ staged completion
    def sign_provenance(self, ceremony: Ceremony, now: datetime) -> CeremonyChange:
        """``Witnessed`` -> ``Signed``: sign the provenance record and store it with the
        ceremony (``CeremonyCompleted``). Idempotent: once signed, the same event again."""
        now = as_utc(now)
        if ceremony.status in ("Signed", "Completed") and ceremony.provenance is not None:
            return CeremonyChange(ceremony, [self._completed_event(ceremony, ceremony.provenance)])
        if ceremony.status != "Witnessed":
            raise Conflict(f"the ceremony is {ceremony.status}, not Witnessed", {"status": ceremony.status},
                           code="invalid_transition")
        attestation = self._attest(provenance_record(ceremony, to_rfc3339(now, "auto")))
        signed = ceremony.model_copy(update={"status": "Signed", "provenance": attestation, "completed_at": now,
                                             "version": ceremony.version + 1})
        self._repo.save(signed, expected_version=ceremony.version)
        return CeremonyChange(signed, [self._completed_event(signed, attestation)])

    def award_tiers(self, ceremony: Ceremony, now: datetime) -> CeremonyChange:
        """``Signed`` -> ``Completed``: raise every artifact that still holds the tier below to
        the ceremony's tier, in one atomic write (``TierAwarded`` each). An artifact that got
        the tier (or a higher one) meanwhile from another ceremony keeps it and is skipped.
        Idempotent: once completed, the same events again."""
        now = as_utc(now)
        if ceremony.status == "Completed" and ceremony.provenance is not None:
            return CeremonyChange(ceremony, self._award_events(ceremony, ceremony.provenance, ceremony.awarded))
        if ceremony.status != "Signed" or ceremony.provenance is None:
            raise Conflict(f"the ceremony is {ceremony.status}, not Signed", {"status": ceremony.status},
                           code="invalid_transition")
        attestation = ceremony.provenance
        prior = TIER_RULES[ceremony.tier].requires_prior
        awards = [award for award in self._awards(ceremony, attestation, now)
                  if self._held_tier(award.record.artifact_id) == prior]
        awarded = tuple(a.record.artifact_id for a in awards)
        done = ceremony.model_copy(update={"status": "Completed", "awarded": awarded, "awarded_at": now,
                                           "version": ceremony.version + 1})
        self._repo.save(done, expected_version=ceremony.version, awards=awards)
        return CeremonyChange(done, self._award_events(done, attestation, awarded))

    def mark_lapsed(self, ceremony: Ceremony, now: datetime) -> CeremonyChange:
        """The state machine's deadline fired: a ceremony still ``Gathering`` lapses
        (``CeremonyLapsed``); one that was witnessed in time is left for signing."""
        if ceremony.status == "Gathering":
            return self.lapse_if_due(ceremony, max(as_utc(now), ceremony.deadline))
        if ceremony.status == "Lapsed":
            return CeremonyChange(ceremony, [self._lapsed_event(ceremony)])
        return CeremonyChange(ceremony)

    # ------------------------------------------------------------------ deployment
    def plan_deployment(self, artifact_id: str, environment: str, *, actor: str = "system",
                        deployment_id: str | None = None) -> PlannedDeployment:
        """Look up the artifact's provenance, verify it with the signer's public key, and plan."""
        held = self._repo.artifact(artifact_id)
        attestation = self._repo.provenance(held.signature_id) if held else None
        reason = self.provenance_failure(artifact_id, held, attestation)
        return plan_deployment(
            artifact_id, environment, reason is None, held.tier if held else "bronze",
            signature_id=held.signature_id if held else None,
            witnesses=attestation.record.get("witnesses", ()) if attestation else (), actor=actor,
            reason=reason, deployment_id=deployment_id,
        )

    def provenance_failure(self, artifact_id: str, held: ArtifactProvenance | None,
                           attestation: ProvenanceAttestation | None) -> str | None:
        """Why the artifact's provenance does not verify (``None`` when it does): it must be
        signed by this service's key and name this artifact, this tier and this ceremony."""
        return artifact_provenance_failure(artifact_id, held, attestation, self._signer.public_key_pem(), self._encode)

    def verify(self, attestation: ProvenanceAttestation) -> bool:
        return attestation_failure(attestation, self._signer.public_key_pem(), self._encode) is None

    # ------------------------------------------------------------------ internals
    def _commit(self, before: Ceremony, updated: Ceremony, events: list[EventDraft], now: datetime) -> CeremonyChange:
        if not updated.is_complete():
            self._repo.save(updated, expected_version=before.version)
            return CeremonyChange(updated, events)
        if self._staged:
            witnessed = updated.model_copy(update={"status": "Witnessed"})
            self._repo.save(witnessed, expected_version=before.version)
            return CeremonyChange(witnessed, events)
        attestation = self._attest(provenance_record(updated, to_rfc3339(now, "auto")))
        awards = self._awards(updated, attestation, now)
        done = updated.model_copy(update={"status": "Completed", "provenance": attestation, "completed_at": now,
                                          "awarded": updated.artifacts, "awarded_at": now})
        self._repo.save(done, expected_version=before.version, awards=awards)
        return CeremonyChange(done, [*events, self._completed_event(done, attestation),
                                     *self._award_events(done, attestation, done.artifacts)])

    def _attest(self, record: dict[str, Any]) -> ProvenanceAttestation:
        if self._payload_type:
            return attest_dsse(record, self._signer, self._payload_type)
        payload = self._encode(record)
        return ProvenanceAttestation(
            record=record, key_id=self._signer.key_id, signature=b64encode(self._signer.sign(payload)),
            signature_id=signature_id(record["tier"], payload),
        )

    @staticmethod
    def _awards(ceremony: Ceremony, attestation: ProvenanceAttestation, now: datetime) -> list[TierAward]:
        return [
            TierAward(TIER_RULES[ceremony.tier].requires_prior, ArtifactProvenance(
                artifact_id=artifact, tier=ceremony.tier, ceremony_id=ceremony.ceremony_id,
                signature_id=attestation.signature_id, awarded_at=now))
            for artifact in ceremony.artifacts
        ]

    def _held_tier(self, artifact_id: str) -> Tier | None:
        held = self._repo.artifact(artifact_id)
        return held.tier if held else None

    @staticmethod
    def _completed_event(ceremony: Ceremony, attestation: ProvenanceAttestation) -> EventDraft:
        record = attestation.record
        data = {
            "tier": ceremony.tier, "signatureId": attestation.signature_id, "keyId": attestation.key_id,
            "witnesses": record["witnesses"], "artifacts": record["artifacts"], "blessedBy": record["blessedBy"],
        }
        if attestation.payload_type:
            data["payloadType"] = attestation.payload_type
        return EventDraft("CeremonyCompleted", ceremony.ceremony_id, data)

    @staticmethod
    def _award_events(ceremony: Ceremony, attestation: ProvenanceAttestation,
                      artifacts: tuple[str, ...]) -> list[EventDraft]:
        return [EventDraft("TierAwarded", artifact, {
            "tier": ceremony.tier, "ceremonyId": ceremony.ceremony_id, "signatureId": attestation.signature_id,
        }) for artifact in artifacts]

    @staticmethod
    def _lapsed_event(ceremony: Ceremony) -> EventDraft:
        return EventDraft("CeremonyLapsed", ceremony.ceremony_id, {
            "tier": ceremony.tier, "witnesses": len(ceremony.witnesses),
            "required": ceremony.rule.min_witnesses, "blessed": ceremony.blessed_by is not None,
        })

    def _check_climb(self, target: Tier, artifacts: list[str] | tuple[str, ...]) -> None:
        prior = TIER_RULES[target].requires_prior
        for artifact in artifacts:
            held = self._repo.artifact(artifact)
            current = held.tier if held else None
            if current == prior:
                continue
            details = {"artifactId": artifact, "current": current, "target": target, "requires": prior}
            if tier_rank(current) >= tier_rank(target):
                raise DomainError("tier_held", f"{artifact!r} already holds {current}", details=details)
            raise DomainError("tier_skip", f"{artifact!r} must hold {prior} before {target}", details=details)

    @staticmethod
    def _require_gathering(ceremony: Ceremony, now: datetime) -> None:
        if ceremony.status == "Lapsed" or (ceremony.status == "Gathering" and now >= ceremony.deadline):
            raise DomainError("lapsed", "the ceremony has lapsed",
                              details={"deadline": to_rfc3339(ceremony.deadline, "auto")})
        if ceremony.status != "Gathering":
            raise Conflict(f"the ceremony is {ceremony.status}", {"status": ceremony.status}, code="ceremony_closed")


def _require_superadmin(caller: Principal) -> None:
    if SUPERADMIN not in caller.roles:
        raise Forbidden("a superadmin is required", {"role": SUPERADMIN})


def _check_id(value: str, what: str) -> None:
    try:
        check_id(value, what)
    except ValueError as exc:
        raise InvalidInput(str(exc), {"field": what}) from None
