"""The governance steps of the release state machine and the approvers' API, over ports (no
boto3). Each step records its own audit events (on the chain of their flow) and settles the
waiting execution itself, so a handler is ``parse -> one step -> response``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hallmark._domain import Principal, emit_by_flow
from hallmark.docstore import DocStore, update
from hallmark.errors import Conflict
from hallmark.governance.models import Approver, Upgrade
from hallmark.governance.registry import ApproverRegistry, RegistryChange
from hallmark.governance.service import ApprovalResult, GovernanceService
from hallmark.ports import AuditEmitter, EventPublisher, ExecutionControl, TokenNotWaiting
from hallmark.release.current import ManifestRepository
from hallmark.release.publish import LISTING
from hallmark.release.service import ReleaseService

UNREACHABLE = "enough approvers rejected the upgrade that the threshold is unreachable"
EXPIRED = "governance: the approval window closed before the threshold was reached"


def upgrade_id_for(package_id: str) -> str:
    return f"up-{package_id}"


@dataclass(frozen=True)
class Requested:
    upgrade_id: str
    opened: bool  # False: a retried step (the first token stands)


class GovernanceSteps:
    def __init__(self, governance: GovernanceService, releases: ReleaseService, repository: ManifestRepository,
                 docs: DocStore, audit: AuditEmitter, bus: EventPublisher, executions: ExecutionControl,
                 clock: Callable[[], datetime]) -> None:
        self.governance = governance
        self.releases = releases
        self.repository = repository
        self.docs = docs
        self.audit = audit
        self.bus = bus
        self.executions = executions
        self.clock = clock

    # ---------------------------------------------------------------- "Wait for approvals"
    def request(self, *, package_id: str, manifest_digest: str, impact: Any, proposed_by: str, task_token: str,
                timeout_seconds: int) -> Requested:
        """Open the upgrade with the execution's task token, record it, notify approvers."""
        now, upgrade_id = self.clock(), upgrade_id_for(package_id)
        try:
            opened = self.governance.open_upgrade(
                upgrade_id=upgrade_id, package_id=package_id, manifest_digest=manifest_digest, impact=impact,
                proposed_by=proposed_by, now=now, task_token=task_token,
                deadline=now + timedelta(seconds=timeout_seconds))
        except Conflict:
            return Requested(upgrade_id, opened=False)
        self.releases.await_approval(package_id, upgrade_id)
        emit_by_flow(self.audit, opened.events)
        self.bus.publish("ApprovalRequested", {"upgradeId": upgrade_id, "packageId": package_id,
                                               "manifestDigest": manifest_digest,
                                               "threshold": opened.subject.threshold})
        return Requested(upgrade_id, opened=True)

    # ---------------------------------------------------------------- "Apply emergency upgrade"
    def apply_emergency(self, *, package_id: str, name: str, manifest_digest: str, impact: Any,
                        proposed_by: str) -> dict[str, Any]:
        """Apply at once (UpgradeApplied), remembering the published version for a rollback."""
        upgrade_id = upgrade_id_for(package_id)
        previous = self.repository.current(name)
        previous_id = previous["packageId"] if previous else None
        try:
            opened = self.governance.open_upgrade(
                upgrade_id=upgrade_id, package_id=package_id, manifest_digest=manifest_digest, impact=impact,
                proposed_by=proposed_by, now=self.clock(), emergency=True, previous_version=previous_id)
            emit_by_flow(self.audit, opened.events)
        except Conflict:
            pass  # a retried step: the upgrade is already applied
        self.releases.record_upgrade(package_id, upgrade_id)
        return {"upgradeId": upgrade_id, "previousPackageId": previous_id}

    # ---------------------------------------------------------------- "Expire"
    def expire(self, package_id: str) -> dict[str, Any]:
        """The approval wait timed out: the upgrade ends Expired (recorded) and the package is
        rejected with that reason."""
        upgrade_id = upgrade_id_for(package_id)
        result = self.governance.expire(self.governance.load("upgrade", upgrade_id), self.clock())
        emit_by_flow(self.audit, result.events)
        self.releases.reject(package_id, [EXPIRED])
        return {"upgradeId": upgrade_id, "status": result.subject.status}

    # ---------------------------------------------------------------- "Roll back"
    def roll_back(self, upgrade_id: str, package_id: str) -> dict[str, Any]:
        """An emergency upgrade nobody ratified in time: the previous published version becomes
        current again (or none is), the emergency listing is withdrawn, UpgradeRolledBack."""
        upgrade = self.governance.load("upgrade", upgrade_id)
        result = self.governance.check_ratification(upgrade, self.clock())
        package = self.releases.get(package_id)
        name = package["meta"]["name"]
        restored: dict[str, Any] | None = None
        previous_version = upgrade.previous_version if isinstance(upgrade, Upgrade) else None
        if previous_version:
            previous = self.releases.get(previous_version)
            restored = {"packageId": previous["packageId"], "version": previous["meta"]["version"],
                        **previous["manifest"]["repository"],
                        "manifestSignatureId": previous["manifest"]["signatureId"]}
            self.repository.point(name, restored)
        else:
            self.repository.clear(name)
        if package.get("listingId"):
            def withdraw(doc: dict[str, Any]) -> None:
                doc["status"] = "Withdrawn"

            update(self.docs, LISTING, package["listingId"], withdraw)
        self.releases.mark_rolled_back(package["packageId"], restored)
        emit_by_flow(self.audit, result.events)
        self.bus.publish("UpgradeRolledBack", {"upgradeId": upgrade_id, "packageId": package["packageId"],
                                               "restored": restored})
        return {"upgradeId": upgrade_id, "restored": restored}

    # ---------------------------------------------------------------- the approvers' API
    def settle(self, result: ApprovalResult) -> bool:
        """Record a decision's events and settle the waiting execution: resume it at the
        threshold, fail it (``Rejected``) when the threshold became unreachable. True when an
        execution stopped waiting. (The release state machine records the package's rejection
        itself: "Record governance rejection".)"""
        emit_by_flow(self.audit, [e for e in result.events if e.type != "PackageRejected"])
        token = result.task_token
        try:
            if token and result.outcome == "resume":
                self.executions.resume(token, {"decision": "approved", "subjectId": result.subject.subject_id})
                return True
            if token and result.outcome == "reject":
                self.executions.fail(token, "Rejected", UNREACHABLE)
                return True
        except TokenNotWaiting as exc:
            raise execution_lost(result.subject.subject_id, str(exc)) from exc
        return False


def execution_lost(subject_id: str, why: str) -> Conflict:
    """409 ``execution_lost``: the decision is recorded (and audited), but the Step Functions
    execution that waited on it is gone (it timed out, or ``hallmark local serve --state`` was
    restarted, which does not keep running executions)."""
    return Conflict(
        f"the decision on {subject_id} is recorded, but the execution that waited on it no longer exists ({why})",
        {"subjectId": subject_id, "stepFunctionsError": why,
         "action": "submit the package again (a new release execution asks for approvals afresh); a local "
                   "cloud restarted with --state keeps documents but not running executions"},
        code="execution_lost")


class ApproverSteps:
    """The approvers' registry as the API changes it: each change records its own events."""

    def __init__(self, registry: ApproverRegistry, audit: AuditEmitter, clock: Callable[[], datetime]) -> None:
        self.registry = registry
        self.audit = audit
        self.clock = clock

    def _recorded(self, change: RegistryChange) -> Approver:
        emit_by_flow(self.audit, change.events)
        return change.approver

    def add(self, caller: Principal, approver_id: str, public_key_pem: str) -> Approver:
        return self._recorded(self.registry.add(caller, approver_id, public_key_pem, self.clock()))

    def rotate(self, caller: Principal, approver_id: str, public_key_pem: str) -> Approver:
        return self._recorded(self.registry.rotate(caller, approver_id, public_key_pem, self.clock()))

    def remove(self, caller: Principal, approver_id: str) -> Approver:
        return self._recorded(self.registry.remove(caller, approver_id, self.clock()))
