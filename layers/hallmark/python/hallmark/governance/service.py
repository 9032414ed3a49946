"""Governance service: open upgrades and settlement approvals, record signed decisions,
decide when a waiting execution resumes, is rejected, ratified or rolled back.

Every check runs before anything is written; the one write (subject + claimed nonce) is
atomic in the repository, so a refused request changes nothing. Refusals carry an
``ApprovalRefused`` audit event (``DomainError.events``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from hallmark._domain import EventDraft
from hallmark.canonical import as_utc, parse_rfc3339, to_rfc3339
from hallmark.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from hallmark.governance.messages import message_for
from hallmark.governance.models import (
    APPROVAL_DECISIONS,
    RATIFICATION_DECISIONS,
    ApprovalForm,
    ApprovalRecord,
    ApprovalSubject,
    Collection,
    Decision,
    Impact,
    Outcome,
    SettlementApproval,
    SubjectKind,
    ThresholdPolicy,
    Upgrade,
    check_id,
)
from hallmark.governance.ports import ApprovalRepository, ApproverRepository, NonceClaim
from hallmark.signing import b64decode, verify_signature

T = TypeVar("T", bound=ApprovalSubject)


@dataclass(frozen=True)
class Opened(Generic[T]):
    """A newly created subject and the events to record."""

    subject: T
    events: list[EventDraft] = field(default_factory=list)


@dataclass(frozen=True)
class ApprovalResult:
    """The subject after the change, what the caller does next, and the events to record."""

    subject: ApprovalSubject
    outcome: Outcome
    events: list[EventDraft] = field(default_factory=list)

    @property
    def task_token(self) -> str | None:
        return self.subject.task_token


class GovernanceService:
    SAVE_ATTEMPTS = 5

    def __init__(
        self,
        approvals: ApprovalRepository,
        approvers: ApproverRepository,
        policy: ThresholdPolicy | None = None,
    ) -> None:
        self._approvals = approvals
        self._approvers = approvers
        self._policy = policy or ThresholdPolicy()

    @property
    def policy(self) -> ThresholdPolicy:
        return self._policy

    def threshold_for(self, impact: Impact) -> int:
        """How many approvals a release of ``impact`` needs (0: none)."""
        return self._policy.threshold(impact)

    def active_approvers(self) -> int:
        """How many approvers are registered now."""
        return len(self._approvers.list_active())

    # ------------------------------------------------------------------ open
    def open_upgrade(
        self,
        *,
        upgrade_id: str,
        package_id: str,
        manifest_digest: str,
        impact: Impact,
        proposed_by: str,
        now: datetime,
        emergency: bool = False,
        previous_version: str | None = None,
        task_token: str | None = None,
        deadline: datetime | None = None,
    ) -> Opened[Upgrade]:
        """Create the upgrade record. HIGH/CRITICAL wait for approvals (``Pending``); with
        ``emergency`` the upgrade is applied at once and waits for ratification (``Ratifying``)."""
        now = as_utc(now)
        threshold = self._policy.threshold(impact)
        if threshold == 0:
            raise DomainError("approval_not_required", f"{impact} impact publishes without multisig",
                              details={"impact": impact})
        self._require_reachable(threshold)
        self._check_ids(upgrade_id=upgrade_id, package_id=package_id, manifest_digest=manifest_digest)
        base: dict[str, Any] = {
            "upgrade_id": upgrade_id, "package_id": package_id, "manifest_digest": manifest_digest,
            "impact": impact, "threshold": threshold, "proposed_by": proposed_by, "created_at": now,
            "deadline": as_utc(deadline) if deadline else None, "task_token": task_token,
            "previous_version": previous_version, "emergency": emergency,
        }
        approvers = [a.approver_id for a in self._approvers.list_active()]
        if emergency:
            window_end = now + self._policy.ratification_window
            upgrade = Upgrade(**base, status="Ratifying", applied_at=now, ratification_deadline=window_end)
            events = [
                EventDraft("UpgradeApplied", upgrade_id, {
                    "packageId": package_id, "manifestDigest": manifest_digest, "emergency": True,
                    "ratificationDeadline": to_rfc3339(window_end, "auto"), "previousVersion": previous_version,
                }, actor=proposed_by),
                EventDraft("ApprovalRequested", upgrade_id, {
                    "kind": "upgrade", "collection": "ratifications", "threshold": threshold,
                    "approvers": approvers, "manifestDigest": manifest_digest,
                    "deadline": to_rfc3339(window_end, "auto"),
                }, actor=proposed_by),
            ]
        else:
            upgrade = Upgrade(**base, status="Pending")
            events = [EventDraft("ApprovalRequested", upgrade_id, {
                "kind": "upgrade", "collection": "approvals", "threshold": threshold, "impact": impact,
                "approvers": approvers, "packageId": package_id, "manifestDigest": manifest_digest,
                "deadline": to_rfc3339(upgrade.deadline, "auto") if upgrade.deadline else None,
            }, actor=proposed_by)]
        self._approvals.create(upgrade)
        return Opened(upgrade, events)

    def open_settlement(
        self,
        *,
        settlement_id: str,
        plan_digest: str,
        proposed_by: str,
        now: datetime,
        task_token: str | None = None,
        deadline: datetime | None = None,
        plan_summary: Mapping[str, Any] | None = None,
    ) -> Opened[SettlementApproval]:
        """Create the multisig record of a settlement plan (``SettlementPlanned``)."""
        now = as_utc(now)
        threshold = self._policy.settlement
        self._require_reachable(threshold)
        self._check_ids(settlement_id=settlement_id, plan_digest=plan_digest)
        subject = SettlementApproval(
            settlement_id=settlement_id, plan_digest=plan_digest, threshold=threshold, proposed_by=proposed_by,
            created_at=now, deadline=as_utc(deadline) if deadline else None, task_token=task_token,
            status="Pending" if threshold > 0 else "Applied",
        )
        self._approvals.create(subject)
        data: dict[str, Any] = {"planDigest": plan_digest, "threshold": threshold, **dict(plan_summary or {})}
        events = [EventDraft("SettlementPlanned", settlement_id, data, actor=proposed_by)]
        if threshold > 0:
            events.append(EventDraft("ApprovalRequested", settlement_id, {
                "kind": "settlement", "collection": "approvals", "threshold": threshold,
                "approvers": [a.approver_id for a in self._approvers.list_active()], "planDigest": plan_digest,
            }, actor=proposed_by))
        return Opened(subject, events)

    def load(self, kind: SubjectKind, subject_id: str) -> ApprovalSubject:
        subject = self._approvals.get(kind, subject_id)
        if subject is None:
            raise NotFound(kind, subject_id)
        return subject

    # ------------------------------------------------------------------ decisions
    def decide(
        self, kind: SubjectKind, subject_id: str, form: ApprovalForm | Mapping[str, Any], caller_sub: str,
        now: datetime, collection: Collection = "approvals",
    ) -> ApprovalResult:
        """Load the subject by id and record the decision: a decision on a subject that does not
        exist is refused like any other, with one ``ApprovalRefused``."""
        try:
            subject = self.load(kind, subject_id)
        except NotFound as err:
            try:
                audited_id = check_id(subject_id, "subjectId")
            except ValueError:
                audited_id = "invalid-subject-id"
            hint = form.approver_id if isinstance(form, ApprovalForm) else form.get("approverId")
            raise err.with_events(EventDraft("ApprovalRefused", audited_id, {
                "kind": kind, "collection": collection, "code": err.code, "reason": err.message,
                "approverId": hint if isinstance(hint, str) else None, "at": to_rfc3339(as_utc(now), "auto"),
            }, actor=caller_sub)) from None
        return self._record(subject, form, caller_sub, now, collection)

    def record_approval(
        self, subject: ApprovalSubject, form: ApprovalForm | Mapping[str, Any], caller_sub: str, now: datetime
    ) -> ApprovalResult:
        """Verify and record one approval (``approve``/``reject``) of a pending subject."""
        return self._record(subject, form, caller_sub, now, "approvals")

    def record_ratification(
        self, upgrade: ApprovalSubject, form: ApprovalForm | Mapping[str, Any], caller_sub: str, now: datetime
    ) -> ApprovalResult:
        """Verify and record one ratification (``ratify``/``veto``) of an emergency upgrade."""
        return self._record(upgrade, form, caller_sub, now, "ratifications")

    def check_ratification(self, upgrade: ApprovalSubject, now: datetime) -> ApprovalResult:
        """After the ratification window: keep a ratified upgrade, roll back anything else."""
        now = as_utc(now)
        if not isinstance(upgrade, Upgrade) or not upgrade.emergency:
            raise Conflict("only an emergency upgrade is ratified", {"id": upgrade.subject_id})
        if upgrade.status == "Ratified":
            return ApprovalResult(upgrade, "ratified")
        if upgrade.status == "RolledBack":
            return ApprovalResult(upgrade, "rollback")
        if upgrade.status != "Ratifying":
            raise Conflict("upgrade is not awaiting ratification", {"status": upgrade.status})
        assert upgrade.ratification_deadline is not None
        if now < upgrade.ratification_deadline:
            raise DomainError("window_open", "the ratification window is still open", details={
                "ratificationDeadline": to_rfc3339(upgrade.ratification_deadline, "auto")})
        rolled = upgrade.model_copy(update={"status": "RolledBack", "version": upgrade.version + 1})
        self._approvals.save(rolled, expected_version=upgrade.version)
        return ApprovalResult(rolled, "rollback", [EventDraft("UpgradeRolledBack", upgrade.upgrade_id, {
            "reason": "not_ratified", "previousVersion": upgrade.previous_version,
            "packageId": upgrade.package_id, "ratifications": upgrade.count("ratifications", "ratify"),
            "threshold": upgrade.threshold,
        })])

    def expire(self, subject: ApprovalSubject, now: datetime) -> ApprovalResult:
        """The approval wait timed out: ``Pending`` -> ``Expired`` (idempotent)."""
        as_utc(now)
        if subject.status == "Expired":
            return ApprovalResult(subject, "reject")
        if subject.status != "Pending":
            raise Conflict(f"{subject.kind} is {subject.status}, not Pending", {"status": subject.status})
        expired = subject.model_copy(update={"status": "Expired", "version": subject.version + 1})
        self._approvals.save(expired, expected_version=subject.version)
        data = {"approvals": subject.count("approvals", "approve"), "threshold": subject.threshold}
        event_type: str = "UpgradeExpired" if subject.kind == "upgrade" else "SettlementExpired"
        return ApprovalResult(expired, "reject", [EventDraft(event_type, subject.subject_id, data)])

    # ------------------------------------------------------------------ internals
    def _record(
        self,
        subject: ApprovalSubject,
        raw_form: ApprovalForm | Mapping[str, Any],
        caller_sub: str,
        now: datetime,
        collection: Collection,
    ) -> ApprovalResult:
        """The one code path of every signed decision (upgrades, emergency ratifications,
        settlement plans, impact-policy changes): each refusal carries exactly one
        ``ApprovalRefused`` event with its code and reason; a concurrent change of the subject
        (a version conflict on save) is not a refusal: the subject is reloaded and decided again."""
        now = as_utc(now)
        approver_hint = raw_form.approver_id if isinstance(raw_form, ApprovalForm) else raw_form.get("approverId")
        nonce_hint = raw_form.nonce if isinstance(raw_form, ApprovalForm) else raw_form.get("nonce")
        try:
            form = raw_form if isinstance(raw_form, ApprovalForm) else self._parse(raw_form)
            for attempt in range(self.SAVE_ATTEMPTS):
                new_subject, outcome, record = self._decide(subject, form, caller_sub, now, collection)
                try:
                    self._approvals.save(new_subject, expected_version=subject.version,
                                         nonce=NonceClaim(form.approver_id, form.nonce))
                    break
                except DomainError as err:
                    if err.code != "conflict" or attempt == self.SAVE_ATTEMPTS - 1:
                        raise
                    subject = self.load(subject.kind, subject.subject_id)  # changed concurrently: decide again
        except DomainError as err:
            raise err.with_events(EventDraft("ApprovalRefused", subject.subject_id, {
                "kind": subject.kind, "collection": collection, "code": err.code, "reason": err.message,
                "approverId": approver_hint if isinstance(approver_hint, str) else None,
                "nonce": nonce_hint if isinstance(nonce_hint, str) else None,
                "at": to_rfc3339(now, "auto"),
            }, actor=caller_sub)) from None
        return ApprovalResult(new_subject, outcome, self._events(new_subject, record, outcome, collection))

    @staticmethod
    def _parse(raw: Mapping[str, Any]) -> ApprovalForm:
        try:
            return ApprovalForm.model_validate(dict(raw))
        except ValidationError as exc:
            errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
            raise InvalidInput("malformed approval form", {"errors": errors}) from None

    def _decide(
        self, subject: ApprovalSubject, form: ApprovalForm, caller_sub: str, now: datetime, collection: Collection
    ) -> tuple[ApprovalSubject, Outcome, ApprovalRecord]:
        # 1. the caller speaks only for themself
        if form.approver_id != caller_sub:
            raise Forbidden("the caller may only submit their own decision",
                            {"approverId": form.approver_id, "caller": caller_sub}, code="approver_mismatch")
        # 2. the subject must be collecting this kind of decision
        self._require_open(subject, now, collection)
        # 3. a registered, active approver
        approver = self._approvers.get(form.approver_id)
        if approver is None or not approver.active:
            raise Forbidden(f"{form.approver_id!r} is not a registered approver",
                            {"approverId": form.approver_id}, code="unknown_approver")
        # 4. a form that names another subject is not a forgery but a misdirected form
        mismatched = {
            name: {"expected": own, "got": given}
            for name, own, given in (("subjectId", subject.subject_id, form.subject_id),
                                     ("digest", subject.digest, form.digest))
            if given is not None and given != own
        }
        if mismatched:
            raise DomainError("wrong_subject", f"the form was signed for another {subject.kind}", details=mismatched)
        # 5. the decision belongs to this collection
        allowed = APPROVAL_DECISIONS if collection == "approvals" else RATIFICATION_DECISIONS
        if form.decision not in allowed:
            raise DomainError("invalid_decision", f"{form.decision!r} is not a decision on {collection}",
                              details={"allowed": sorted(allowed)})
        # 6. the signature covers this subject's own id and digest
        try:
            der = b64decode(form.signature)
        except ValueError:
            der = b""
        message = message_for(subject, form.decision, form.expires_at, form.nonce)
        if not der or not verify_signature(approver.public_key_pem, message, der):
            raise DomainError("bad_signature", "the signature does not verify for this subject and approver",
                              details={"approverId": form.approver_id, "keyFingerprint": approver.key_fingerprint})
        # 7. still valid, and not valid for longer than the policy allows
        expires_at = parse_rfc3339(form.expires_at)
        if expires_at <= now:
            raise DomainError("expired", "the signed decision has expired",
                              details={"what": "decision", "expiresAt": form.expires_at})
        latest = now + self._policy.max_decision_validity
        if expires_at > latest:
            raise DomainError("expiry_too_far",
                              f"a signed decision may be valid for at most "
                              f"{int(self._policy.max_decision_validity.total_seconds())} s",
                              http_status=422,
                              details={"expiresAt": form.expires_at, "latest": to_rfc3339(latest, "auto")})
        # 8. one decision per approver per collection
        records = subject.records(collection)
        if any(r.approver_id == form.approver_id for r in records):
            raise DomainError("duplicate_approver", f"{form.approver_id!r} has already decided",
                              details={"approverId": form.approver_id, "collection": collection})
        # 9. a nonce is good once per approver, across all subjects
        if self._approvals.nonce_used(form.approver_id, form.nonce):
            raise DomainError("nonce_reused", "nonce already used by this approver",
                              details={"approverId": form.approver_id, "nonce": form.nonce})

        record = ApprovalRecord(
            approver_id=form.approver_id, decision=form.decision, expires_at=form.expires_at, nonce=form.nonce,
            signature=form.signature, key_fingerprint=approver.key_fingerprint, recorded_at=now,
        )
        new_records = (*records, record)
        outcome = self._outcome(subject.threshold, new_records, collection)
        update: dict[str, Any] = {
            collection: new_records,
            "nonces_used": (*subject.nonces_used, form.nonce),
            "version": subject.version + 1,
        }
        if outcome == "resume":
            update["status"] = "Applied"
            if isinstance(subject, Upgrade):
                update["applied_at"] = now
        elif outcome == "reject":
            update["status"] = "Rejected"
        elif outcome == "ratified":
            update["status"] = "Ratified"
        elif outcome == "rollback":
            update["status"] = "RolledBack"
        return subject.model_copy(update=update), outcome, record

    def registered(self) -> frozenset[str]:
        """The ids of the approvers registered now (only their decisions count)."""
        return frozenset(a.approver_id for a in self._approvers.list_active())

    def valid_count(self, subject: ApprovalSubject, collection: Collection, decision: Decision) -> int:
        """Decisions of ``decision`` by approvers registered *now*: a removed approver's earlier
        decision no longer counts towards (or against) the threshold."""
        registered = self.registered()
        return sum(1 for r in subject.records(collection) if r.decision == decision and r.approver_id in registered)

    def approved(self, subject: ApprovalSubject) -> bool:
        """An ``Applied`` subject whose approvals by currently registered approvers still reach
        its threshold (checked again whenever an approval is acted on later, e.g. a policy change)."""
        return subject.status == "Applied" and self.valid_count(subject, "approvals", "approve") >= subject.threshold

    def _outcome(self, threshold: int, records: tuple[ApprovalRecord, ...], collection: Collection) -> Outcome:
        positive: Decision = "approve" if collection == "approvals" else "ratify"
        registered = self.registered()
        valid = [r for r in records if r.approver_id in registered]  # removed approvers no longer count
        yes = sum(1 for r in valid if r.decision == positive)
        decided = {r.approver_id for r in valid}
        undecided = sum(1 for a in registered if a not in decided)
        if yes >= threshold:
            return "resume" if collection == "approvals" else "ratified"
        if yes + undecided < threshold:
            return "reject" if collection == "approvals" else "rollback"
        return "waiting"

    @staticmethod
    def _require_open(subject: ApprovalSubject, now: datetime, collection: Collection) -> None:
        if collection == "approvals":
            if subject.status != "Pending":
                raise Conflict(f"{subject.kind} is {subject.status}; approvals are closed",
                               {"status": subject.status})
            if subject.deadline is not None and now >= subject.deadline:
                raise DomainError("expired", f"the {subject.kind}'s approval window has closed",
                                  details={"what": subject.kind, "deadline": to_rfc3339(subject.deadline, "auto")})
            return
        if not isinstance(subject, Upgrade) or not subject.emergency:
            raise Conflict("only an emergency upgrade is ratified", {"kind": subject.kind})
        if subject.status != "Ratifying":
            raise Conflict(f"upgrade is {subject.status}; ratifications are closed", {"status": subject.status})
        assert subject.ratification_deadline is not None
        if now >= subject.ratification_deadline:
            raise DomainError("window_closed", "the ratification window has closed",
                              details={"ratificationDeadline": to_rfc3339(subject.ratification_deadline, "auto")})

    def _require_reachable(self, threshold: int) -> None:
        active = len(self._approvers.list_active())
        if threshold > active:
            raise DomainError("threshold_unreachable",
                              f"threshold {threshold} exceeds the {active} registered approvers",
                              details={"threshold": threshold, "approvers": active})

    @staticmethod
    def _check_ids(**values: str) -> None:
        for name, value in values.items():
            try:
                check_id(value, name)
            except ValueError as exc:
                raise InvalidInput(str(exc), {"field": name}) from None

    def _events(
        self, subject: ApprovalSubject, record: ApprovalRecord, outcome: Outcome, collection: Collection
    ) -> list[EventDraft]:
        positive: Decision = "approve" if collection == "approvals" else "ratify"
        negative: Decision = "reject" if collection == "approvals" else "veto"
        registered = self.registered()
        records = tuple(r for r in subject.records(collection) if r.approver_id in registered)
        events = [EventDraft("ApprovalRecorded", subject.subject_id, {
            "kind": subject.kind, "collection": collection, "approverId": record.approver_id,
            "decision": record.decision, "nonce": record.nonce, "keyFingerprint": record.key_fingerprint,
            "digest": subject.digest, "yes": self.valid_count(subject, collection, positive),
            "no": self.valid_count(subject, collection, negative),
            "threshold": subject.threshold, "outcome": outcome,
        }, actor=record.approver_id)]
        if not isinstance(subject, Upgrade):
            return events
        approvers = sorted(r.approver_id for r in records if r.decision == positive)
        if outcome == "resume":
            events.append(EventDraft("UpgradeApplied", subject.upgrade_id, {
                "packageId": subject.package_id, "manifestDigest": subject.manifest_digest,
                "emergency": False, "approvers": approvers}))
        elif outcome == "reject":
            events.append(EventDraft("PackageRejected", subject.package_id, {
                "upgradeId": subject.upgrade_id, "reason": "multisig_rejected",
                "rejections": subject.count(collection, "reject")}))
        elif outcome == "ratified":
            events.append(EventDraft("UpgradeRatified", subject.upgrade_id, {
                "packageId": subject.package_id, "ratifiers": approvers}))
        elif outcome == "rollback":
            events.append(EventDraft("UpgradeRolledBack", subject.upgrade_id, {
                "reason": "vetoed", "previousVersion": subject.previous_version, "packageId": subject.package_id,
                "vetoes": subject.count(collection, "veto")}))
        return events
