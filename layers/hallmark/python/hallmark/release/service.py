"""The release flow's domain: package records, their status, validation outcomes, the manifest.

Status: Submitted -> Validating -> (Rejected | AwaitingApproval | Published); Published ->
RolledBack (emergency not ratified). Every change returns after emitting its audit event on
the `release` chain with a deterministic id, so a retried step never records twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hallmark._domain import Caller, EventDraft
from hallmark.audit.events import derive_event_id
from hallmark.canonical import to_rfc3339
from hallmark.docstore import DocStore, update
from hallmark.errors import Conflict, DomainError, Forbidden, NotFound
from hallmark.governance.models import DEFAULT_THRESHOLDS, Impact
from hallmark.ports import AuditEmitter
from hallmark.release import impact_policy, names, versions

KIND = "package"
CHAIN = "release"
PREDICATE_TYPE = "https://hallmark.dev/manifest/v1"
Status = Literal["Submitted", "Validating", "AwaitingApproval", "Rejected", "Failed", "Published", "RolledBack"]
FORMATS = (".tar.gz", ".tgz", ".zip")


class SubmitRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    version: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9.+_-]*$")
    type: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")
    target: str = Field(min_length=1, max_length=256)
    impact: Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]
    rationale: str = Field(min_length=1, max_length=4000)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=1, le=1 << 40, description="exact byte length of the package; the upload URL accepts no other")
    license: str = Field(min_length=1, max_length=512)
    emergency: bool = False
    #: an explicit, governed rollback to a version lower than the current one (impact >= HIGH)
    rollback: bool = False
    filename: str | None = Field(default=None, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")

    @field_validator("filename")
    @classmethod
    def _format(cls, v: str | None) -> str | None:
        if v is not None and not v.endswith(FORMATS):
            raise ValueError(f"package format must be one of {', '.join(FORMATS)}")
        return v

    def file_name(self) -> str:
        return self.filename or f"{self.name}-{self.version}.tar.gz"


class UploadAlreadyClaimed(Conflict):
    """Another execution already took this package's upload (or the package is past intake)."""

    def __init__(self, package_id: str, status: str) -> None:
        super().__init__(f"package {package_id} is {status}: its upload was already taken",
                         {"packageId": package_id, "status": status}, code="upload_claimed")


class ApprovalCapacity(Protocol):
    """The multisig seam the release policy needs (``GovernanceService`` implements it)."""

    def threshold_for(self, impact: Impact) -> int: ...

    def active_approvers(self) -> int: ...


class _NoApprovers:
    """Fail closed when no governance is wired in: the default thresholds, nobody registered."""

    def threshold_for(self, impact: Impact) -> int:
        return DEFAULT_THRESHOLDS[impact]

    def active_approvers(self) -> int:
        return 0


SUBMIT_ATTEMPTS = 5


class ReleaseService:
    def __init__(self, store: DocStore, audit: AuditEmitter, clock: Callable[[], datetime] | None = None,
                 governance: ApprovalCapacity | None = None) -> None:
        self.store = store
        self.audit = audit
        self.clock = clock or (lambda: datetime.now(UTC))
        self.governance: ApprovalCapacity = governance or _NoApprovers()
        self.names = names.NameRegistry(store)
        self.policies = impact_policy.ImpactPolicyStore(store)

    # -------------------------------------------------------------- submit
    def submit(self, req: SubmitRequest, submitter: str, roles: frozenset[str],
               package_id: str | None = None) -> dict[str, Any]:
        """Accept a submission only if the submitter may release the name, the version is new
        and not lower than the current one (unless a governed rollback), and enough approvers
        are registered for its effective impact. The name record (claim + version slot) is one
        conditional write: of racing submitters one wins, the others are decided again."""
        if req.emergency and "superadmin" not in roles:
            raise Forbidden("an emergency release can only be submitted by a superadmin")
        if req.emergency and req.impact not in ("HIGH", "CRITICAL"):
            raise DomainError("invalid_request", "emergency applies only to HIGH or CRITICAL impact", 400)
        caller = Caller(submitter, roles)
        pid = package_id or str(uuid.uuid4())
        now = self.clock()
        policy = self.policies.current(now)
        for _ in range(SUBMIT_ATTEMPTS):
            name_doc = self.names.get(req.name)
            authority = self.names.authorize(req.name, name_doc, caller)
            releases: dict[str, dict[str, Any]] = dict((name_doc or {}).get("releases", {}))
            check = versions.check_version(req.version, releases, self._status_of, rollback=req.rollback)
            assessment = impact_policy.assess_submission(
                policy, req.impact, target=req.target, first_release=check.first_release,
                major_bump=check.major_bump, rollback=check.rollback)
            self._require_approvers(assessment.impact, req.name, req.version)
            if check.reuses is not None:
                releases.pop(check.reuses, None)
            releases[req.version] = {"packageId": pid, "submittedBy": submitter, "at": to_rfc3339(now)}
            if name_doc is None:
                assert authority.claim_for is not None
                updated = {**names.new_record(req.name, authority.claim_for, now, authority.via), "releases": releases}
            else:
                updated = {**name_doc, "releases": releases}
            try:
                self.names.save(req.name, updated, name_doc["version"] if name_doc else None)
            except Conflict:
                continue  # someone claimed the name or took a version first: decide again
            break
        else:
            raise Conflict(f"name {req.name!r} is being changed concurrently; retry")
        record = {
            "packageId": pid,
            "meta": req.model_dump(),
            "filename": req.file_name(),
            "objectKey": f"uploads/{pid}/{req.file_name()}",
            "status": "Submitted",
            "submittedBy": submitter,
            "submittedAt": to_rfc3339(now),
            "authority": authority.via,
            "impact": assessment.impact,
            "declaredImpact": req.impact,
            "policy": {**assessment.as_dict(), "submitted": assessment.as_dict(), "versions": check.as_dict()},
            "results": {},
            "reasons": [],
            "manifest": None,
            "listingId": None,
            "executionArn": None,
            "history": [{"status": "Submitted", "at": to_rfc3339(now)}],
        }
        self.store.create(KIND, pid, record)
        if name_doc is None:
            # subject: the package whose acceptance claimed the name (data.name is the name), so a
            # package's events are all under its id
            self.audit.emit(chain=CHAIN, type="NameClaimed", actor=submitter, subject=pid,
                            data={"name": req.name, "owner": authority.claim_for, "via": authority.via,
                                  "packageId": pid}, event_id=derive_event_id(pid, "NameClaimed"))
        self.audit.emit(chain=CHAIN, type="PackageSubmitted", actor=submitter, subject=pid,
                        data={"name": req.name, "version": req.version, "impact": assessment.impact,
                              "declaredImpact": req.impact, "policyVersion": policy.version,
                              "rules": [r["rule"] for r in assessment.rules], "authority": authority.via,
                              "rollback": req.rollback, "emergency": req.emergency, "sha256": req.sha256,
                              "license": req.license},
                        event_id=derive_event_id(pid, "PackageSubmitted"))
        return record

    def _status_of(self, package_id: str) -> str | None:
        doc = self.store.get(KIND, package_id)
        return None if doc is None else str(doc["status"])

    def _approvers_short(self, impact: Impact) -> dict[str, Any] | None:
        threshold = self.governance.threshold_for(impact)
        registered = self.governance.active_approvers()
        if threshold > registered:
            return {"impact": impact, "threshold": threshold, "registeredApprovers": registered}
        return None

    def _require_approvers(self, impact: Impact, name: str, version: str) -> None:
        short = self._approvers_short(impact)
        if short is not None:
            raise Conflict(f"{name} {version} has effective impact {impact}, which needs {short['threshold']} "
                           f"approvals, but only {short['registeredApprovers']} approvers are registered",
                           short, code="approvers_insufficient")

    def name_events(self, events: list[EventDraft]) -> None:
        """Record the events of a name change (``NameRegistry``) on the release chain."""
        for e in events:
            self.audit.emit(chain=CHAIN, type=e.type, actor=e.actor, subject=e.subject, data=e.data,
                            event_id=e.event_id)

    def get(self, package_id: str) -> dict[str, Any]:
        doc = self.store.get(KIND, package_id)
        if doc is None:
            raise NotFound("package", package_id)
        return doc

    def _transition(self, package_id: str, to: Status, allowed_from: tuple[str, ...],
                    extra: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        def change(doc: dict[str, Any]) -> None:
            if doc["status"] == to:
                return  # retried step: idempotent
            if doc["status"] not in allowed_from:
                raise Conflict(f"package {package_id} is {doc['status']}, cannot become {to}",
                               {"status": doc["status"], "to": to})
            doc["status"] = to
            doc["history"].append({"status": to, "at": to_rfc3339(self.clock())})
            if extra:
                extra(doc)

        return update(self.store, KIND, package_id, change)

    # -------------------------------------------------------------- upload -> validating
    def pin_upload(self, package_id: str, pinned: dict[str, Any], upload_version: str | None,
                   execution_arn: str) -> dict[str, Any]:
        """The upload's bytes matched the declaration and are pinned: Submitted -> Validating.

        Only one execution can claim a package: a second upload (another S3 event) finds the
        execution recorded and gets ``UploadAlreadyClaimed``; a retry of the same one is a no-op."""

        def change(d: dict[str, Any]) -> None:
            if d.get("executionArn") == execution_arn and d["status"] != "Submitted":
                return
            if d["status"] != "Submitted" or d.get("executionArn"):
                raise UploadAlreadyClaimed(package_id, d["status"])
            d["status"] = "Validating"
            d["history"].append({"status": "Validating", "at": to_rfc3339(self.clock())})
            d["executionArn"] = execution_arn
            d["size"] = pinned["size"]
            d["pinned"] = pinned
            d["uploadVersionId"] = upload_version

        doc = update(self.store, KIND, package_id, change)
        self.audit.emit(chain=CHAIN, type="PackageUploaded", actor="system:release", subject=package_id,
                        data={"key": doc["objectKey"], "uploadVersionId": upload_version, "size": pinned["size"],
                              "pinned": pinned, "executionArn": execution_arn},
                        event_id=derive_event_id(package_id, "PackageUploaded"))
        return doc

    def refuse_upload(self, package_id: str, reason: str, execution_arn: str) -> dict[str, Any]:
        """The uploaded bytes are not the declared ones: the package ends Rejected, audited as a
        failed ``intake`` validation and ``PackageRejected``."""

        def change(d: dict[str, Any]) -> None:
            if d["status"] == "Rejected":
                return
            if d["status"] != "Submitted" or d.get("executionArn"):
                raise UploadAlreadyClaimed(package_id, d["status"])
            d["status"] = "Rejected"
            d["history"].append({"status": "Rejected", "at": to_rfc3339(self.clock())})
            d["executionArn"] = execution_arn
            d["reasons"] = [f"intake: {reason}"]

        doc = update(self.store, KIND, package_id, change)
        self.audit.emit(chain=CHAIN, type="ValidationFailed", actor="system:release_intake", subject=package_id,
                        data={"validator": "intake", "digest": None, "reasons": [reason]},
                        event_id=derive_event_id(package_id, "ValidationFailed", "intake"))
        self.audit.emit(chain=CHAIN, type="PackageRejected", actor="system:release", subject=package_id,
                        data={"reasons": doc["reasons"]}, event_id=derive_event_id(package_id, "PackageRejected"))
        return doc

    def ignore_upload(self, package_id: str, data: dict[str, Any], discriminator: str) -> None:
        """A write to the upload key after the package was claimed: changes nothing, audited."""
        self.audit.emit(chain=CHAIN, type="PackageUploadIgnored", actor="system:release_intake", subject=package_id,
                        data=data, event_id=derive_event_id(package_id, "PackageUploadIgnored", discriminator))

    # -------------------------------------------------------------- validation outcome
    def record_validation(self, package_id: str, results: list[dict[str, Any]]) -> dict[str, Any]:
        """Persist each validator's result (with its digest) and audit it; return the outcome."""
        results = sorted(results, key=lambda r: r["validator"])

        def change(doc: dict[str, Any]) -> None:
            doc["results"] = {r["validator"]: {k: r[k] for k in ("passed", "digest", "reasons", "stats")} for r in results}

        doc = update(self.store, KIND, package_id, change)
        for r in results:
            kind = "ValidationPassed" if r["passed"] else "ValidationFailed"
            self.audit.emit(chain=CHAIN, type=kind, actor=f"system:validate_{r['validator']}", subject=package_id,
                            data={"validator": r["validator"], "digest": r["digest"], "reasons": r["reasons"]},
                            event_id=derive_event_id(package_id, kind, r["validator"]))
        reasons = [f"{r['validator']}: {reason}" for r in results if not r["passed"] for reason in r["reasons"]]
        assessment = self._assess_validated(doc, results)
        short = self._approvers_short(assessment.impact)
        if short is not None:
            reasons.append(f"policy: effective impact {assessment.impact} needs {short['threshold']} approvals, but "
                           f"only {short['registeredApprovers']} approvers are registered")
        return {
            "packageId": package_id,
            "passed": not reasons,
            "reasons": reasons,
            "preconditions": [{"validator": r["validator"], "passed": r["passed"], "digest": r["digest"],
                               "subjectSha256": r.get("subjectSha256")} for r in results],
            "impact": assessment.impact,
            "declaredImpact": assessment.declared,
            "policy": assessment.policy,
            "rules": list(assessment.rules),
        }

    def _assess_validated(self, doc: dict[str, Any], results: list[dict[str, Any]]) -> impact_policy.Assessment:
        """Apply the rules known only after validation (advisories, AI share) with the policy
        version the package was submitted under; store the effective impact on the record."""
        stored = doc.get("policy") or {}
        submitted = impact_policy.assessment_from_dict(stored["submitted"]) if "submitted" in stored else \
            impact_policy.Assessment(declared=doc["meta"]["impact"], impact=doc["meta"]["impact"],
                                     policy=self.policies.current(self.clock()).ref())
        policy = self.policies.version(int(submitted.policy["version"]))
        previous_id = (stored.get("versions") or {}).get("currentPackageId")
        previous = self.store.get(KIND, previous_id) if previous_id else None
        previous_advisories = list(((previous or {}).get("policy") or {}).get("advisoryDependencies", []))
        assessment, advisories = impact_policy.assess_validation(policy, submitted, results, previous_advisories)

        def change(d: dict[str, Any]) -> None:
            d["impact"] = assessment.impact
            d["declaredImpact"] = assessment.declared
            d["policy"] = {**(d.get("policy") or {}), **assessment.as_dict(), "advisoryDependencies": advisories}

        update(self.store, KIND, doc["packageId"], change)
        return assessment

    def record_upgrade(self, package_id: str, upgrade_id: str) -> dict[str, Any]:
        """Remember the governance upgrade of a package whose status does not change (emergency)."""

        def change(d: dict[str, Any]) -> None:
            d["upgradeId"] = upgrade_id

        return update(self.store, KIND, package_id, change)

    def reject(self, package_id: str, reasons: list[str]) -> dict[str, Any]:
        def extra(d: dict[str, Any]) -> None:
            d["reasons"] = reasons

        doc = self._transition(package_id, "Rejected", ("Validating", "AwaitingApproval"), extra)
        self.audit.emit(chain=CHAIN, type="PackageRejected", actor="system:release", subject=package_id,
                        data={"reasons": reasons}, event_id=derive_event_id(package_id, "PackageRejected"))
        return doc

    def fail(self, package_id: str, reason: str, execution_arn: str) -> dict[str, Any] | None:
        """A release step failed for good: the package ends ``Failed`` with the reason, audited
        ``PackageRejected``. Only the execution that claimed the package (or any, while it is
        still unclaimed) may end it; a package already at an end is left as it is."""
        ended = ("Rejected", "Failed", "Published", "RolledBack")

        def change(d: dict[str, Any]) -> None:
            if d["status"] in ended or d.get("executionArn") not in (None, execution_arn):
                return
            d["status"] = "Failed"
            d["history"].append({"status": "Failed", "at": to_rfc3339(self.clock())})
            d["executionArn"] = execution_arn
            d["reasons"] = [reason]

        doc = update(self.store, KIND, package_id, change)
        if doc["status"] != "Failed" or doc.get("executionArn") != execution_arn:
            return None  # ended by something else, or claimed by another execution
        self.audit.emit(chain=CHAIN, type="PackageRejected", actor="system:release", subject=package_id,
                        data={"reasons": doc["reasons"], "status": "Failed"},
                        event_id=derive_event_id(package_id, "PackageRejected"))
        return doc

    # -------------------------------------------------------------- manifest
    def manifest_statement(self, package_id: str, preconditions: list[dict[str, Any]],
                           artifact_ref: str) -> dict[str, Any]:
        doc = self.get(package_id)
        meta = doc["meta"]
        predicate = {
            "manifestId": f"mf-{package_id}",
            "type": meta["type"],
            "target": meta["target"],
            "rationale": meta["rationale"],
            "impact": doc.get("impact", meta["impact"]),
            "emergency": meta["emergency"],
            "declaredImpact": meta["impact"],
            "policy": {"impactPolicyVersion": (doc.get("policy") or {}).get("policy", {}).get("version"),
                       "impactPolicyDigest": (doc.get("policy") or {}).get("policy", {}).get("digest"),
                       "rules": [r["rule"] for r in (doc.get("policy") or {}).get("rules", [])],
                       "rollback": bool(meta.get("rollback", False))},
            "preconditions": preconditions,
            "artifact_ref": artifact_ref,
            "timestamp": to_rfc3339(self.clock()),
            "proposedBy": doc["submittedBy"],
            "package": {"name": meta["name"], "version": meta["version"], "license": meta["license"]},
        }
        return {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": doc["filename"], "digest": {"sha256": meta["sha256"]}}],
            "predicateType": PREDICATE_TYPE,
            "predicate": predicate,
        }

    def record_manifest(self, package_id: str, signature_id: str, digest: str, envelope_key: str) -> dict[str, Any]:
        def change(doc: dict[str, Any]) -> None:
            doc["manifest"] = {"signatureId": signature_id, "digest": digest, "staged": envelope_key,
                               "manifestId": f"mf-{package_id}"}

        doc = update(self.store, KIND, package_id, change)
        self.audit.emit(chain=CHAIN, type="ManifestSigned", actor="system:release_sign", subject=package_id,
                        data={"manifestSignatureId": signature_id, "manifestDigest": digest},
                        event_id=derive_event_id(package_id, "ManifestSigned"))
        return doc

    # -------------------------------------------------------------- governance / publish
    def await_approval(self, package_id: str, upgrade_id: str) -> dict[str, Any]:
        def extra(d: dict[str, Any]) -> None:
            d["upgradeId"] = upgrade_id

        return self._transition(package_id, "AwaitingApproval", ("Validating",), extra)

    def record_repository(self, package_id: str, repo_ref: dict[str, Any]) -> dict[str, Any]:
        """RepoWriter committed the envelope: remember where (the status does not change)."""

        def change(doc: dict[str, Any]) -> None:
            doc["manifest"] = {**(doc.get("manifest") or {}), "repository": repo_ref}

        return update(self.store, KIND, package_id, change)

    def mark_published(self, package_id: str, repo_ref: dict[str, Any], listing_id: str | None) -> dict[str, Any]:
        """Published only once the manifest is committed and the listing exists."""

        def extra(d: dict[str, Any]) -> None:
            d["manifest"] = {**(d.get("manifest") or {}), "repository": repo_ref}
            d["listingId"] = listing_id
            d["publishedAt"] = to_rfc3339(self.clock())

        doc = self._transition(package_id, "Published", ("Validating", "AwaitingApproval"), extra)
        self.audit.emit(chain=CHAIN, type="PackagePublished", actor="system:marketplace", subject=package_id,
                        data={"repository": repo_ref, "listingId": listing_id,
                              "manifestSignatureId": (doc.get("manifest") or {}).get("signatureId")},
                        event_id=derive_event_id(package_id, "PackagePublished"))
        return doc

    def mark_rolled_back(self, package_id: str, restored: dict[str, Any] | None) -> dict[str, Any]:
        def extra(d: dict[str, Any]) -> None:
            d["restored"] = restored

        return self._transition(package_id, "RolledBack", ("Published",), extra)


def presign_expiry(now: datetime, seconds: int) -> str:
    return to_rfc3339(now + timedelta(seconds=seconds))
