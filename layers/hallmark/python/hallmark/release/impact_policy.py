"""The effective impact of a release, computed by a declared, versioned policy.

The submitter declares an impact; the policy names the *minimum* impact that facts about the
release imply, and the effective impact is the highest of the two: a submitter can raise the
impact, never lower it. Rules (each maps to a minimum impact in the policy document):

- ``firstRelease``: no version of the name was ever released;
- ``majorBump``: the major version is above the current published one;
- ``rollback``: an explicit governed rollback to a lower version (at least HIGH, always);
- ``targets``: the submission's ``target`` starts with a listed prefix (e.g. ``prod``);
- ``advisoryDependency``: the security validator found a dependency with an advisory that the
  current published version did not already have (new or changed);
- ``aiShare``: the attribution validator's AI-assisted share is above ``aiShare.above``.

The first four are known at submit time; the last two only once validation has run
(``assess_validation``, from ``ReleaseService.record_validation``).

The policy is data: a versioned document in the state table (``DocStore`` kind
``impact-policy``, id ``current``; each version also under ``v<n>``), seeded with
:data:`DEFAULT_POLICY` at first use. A superadmin changes it only through governance: a
proposal opens an upgrade-kind approval subject whose digest is the new document's digest, so
approvers sign the exact document under the same rules as any upgrade (3-of-5, capped expiry,
removed approvers no longer count, every refusal audited); once approved a superadmin applies
it (``ImpactPolicyChanged``). Its version and digest go into the package record and manifest.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hallmark._domain import EventDraft, Principal
from hallmark.canonical import canonical_bytes, sha256_hex, to_rfc3339
from hallmark.docstore import DocStore
from hallmark.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound

Impact = Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]
IMPACTS: tuple[Impact, ...] = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
KIND = "impact-policy"
PROPOSAL = "impact-policy-proposal"
CURRENT = "current"
SUPERADMIN = "superadmin"
#: the approval subject of a policy change is an upgrade of this pseudo package
POLICY_PACKAGE = "impact-policy"
PROPOSAL_IMPACT: Impact = "CRITICAL"
ADVISORY_RULES = ("vulnerable-dependency", "vulnerable-range")
_PROPOSAL_ID = re.compile(r"^policy-[0-9a-f-]{36}$")


def rank(impact: str) -> int:
    return IMPACTS.index(impact)  # type: ignore[arg-type]


def highest(*impacts: Impact) -> Impact:
    return max(impacts, key=rank)


class TargetRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    prefix: str = Field(min_length=1, max_length=256)
    impact: Impact


class AiShareRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    above: float = Field(ge=0.0, le=1.0)
    impact: Impact


class PolicyDocument(BaseModel):
    """The rules; every field is a minimum impact (``LOW`` = the rule never raises)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    firstRelease: Impact = "MEDIUM"
    majorBump: Impact = "HIGH"
    rollback: Impact = "HIGH"
    advisoryDependency: Impact = "HIGH"
    aiShare: AiShareRule = AiShareRule(above=0.5, impact="HIGH")
    targets: tuple[TargetRule, ...] = Field(
        default=(TargetRule(prefix="prod", impact="HIGH"),), max_length=50)

    @field_validator("rollback")
    @classmethod
    def _rollback_is_governed(cls, value: Impact) -> Impact:
        if rank(value) < rank("HIGH"):
            raise ValueError("a rollback is always governed: its minimum impact is HIGH or CRITICAL")
        return value

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @property
    def digest(self) -> str:
        return sha256_hex(canonical_bytes(self.as_json()))


DEFAULT_POLICY = PolicyDocument()


@dataclass(frozen=True)
class StoredPolicy:
    version: int
    document: PolicyDocument
    digest: str
    changed_by: str
    changed_at: str
    proposal_id: str | None = None

    def ref(self) -> dict[str, Any]:
        """What a package record and its manifest carry."""
        return {"version": self.version, "digest": self.digest}

    def view(self) -> dict[str, Any]:
        return {"version": self.version, "digest": self.digest, "document": self.document.as_json(),
                "changedBy": self.changed_by, "changedAt": self.changed_at, "proposalId": self.proposal_id}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> StoredPolicy:
        return cls(version=int(doc["policyVersion"]), document=PolicyDocument.model_validate(doc["document"]),
                   digest=doc["digest"], changed_by=doc["changedBy"], changed_at=doc["changedAt"],
                   proposal_id=doc.get("proposalId"))


@dataclass(frozen=True)
class Assessment:
    """The effective impact and every rule that raised it (``rules``: name, minimum, detail)."""

    declared: Impact
    impact: Impact
    policy: dict[str, Any]
    rules: tuple[dict[str, Any], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"declaredImpact": self.declared, "effectiveImpact": self.impact, "policy": self.policy,
                "rules": list(self.rules)}


def _assess(declared: Impact, policy: dict[str, Any], rules: list[dict[str, Any]]) -> Assessment:
    raised = [r for r in rules if rank(r["impact"]) > rank("LOW")]
    impact = highest(declared, *(r["impact"] for r in raised))
    return Assessment(declared=declared, impact=impact, policy=policy, rules=tuple(raised))


def assess_submission(policy: StoredPolicy, declared: Impact, *, target: str, first_release: bool,
                      major_bump: bool, rollback: bool) -> Assessment:
    doc = policy.document
    rules: list[dict[str, Any]] = []
    if first_release:
        rules.append({"rule": "firstRelease", "impact": doc.firstRelease})
    if major_bump:
        rules.append({"rule": "majorBump", "impact": doc.majorBump})
    if rollback:
        rules.append({"rule": "rollback", "impact": highest(doc.rollback, "HIGH")})
    for t in doc.targets:
        if target.startswith(t.prefix):
            rules.append({"rule": "targets", "impact": t.impact, "prefix": t.prefix})
    return _assess(declared, policy.ref(), rules)


def advisory_dependencies(results: list[dict[str, Any]]) -> list[str]:
    """``ecosystem:package@version-or-range`` of every dependency the security validator found
    an advisory for (sorted, unique)."""
    out: set[str] = set()
    for r in results:
        if r.get("validator") != "security":
            continue
        for f in r.get("findings") or []:
            if f.get("rule") in ADVISORY_RULES:
                spec = f.get("version") or f.get("specifier") or "*"
                out.add(f"{f.get('ecosystem', '?')}:{f.get('package', '?')}@{spec}")
    return sorted(out)


def ai_share(results: list[dict[str, Any]]) -> float | None:
    for r in results:
        if r.get("validator") == "attribution":
            share = (r.get("stats") or {}).get("ai_share")
            return float(share) if isinstance(share, int | float) else None
    return None


def assess_validation(policy: StoredPolicy, submitted: Assessment, results: list[dict[str, Any]],
                      previous_advisories: list[str]) -> tuple[Assessment, list[str]]:
    """Add the rules known only after validation to the submit-time assessment. Returns the
    assessment and this package's advisory dependencies (kept for the next version's check)."""
    doc = policy.document
    rules = list(submitted.rules)
    advisories = advisory_dependencies(results)
    new = sorted(set(advisories) - set(previous_advisories))
    if new:
        rules.append({"rule": "advisoryDependency", "impact": doc.advisoryDependency, "dependencies": new[:20]})
    share = ai_share(results)
    if share is not None and share > doc.aiShare.above:
        rules.append({"rule": "aiShare", "impact": doc.aiShare.impact, "share": share, "above": doc.aiShare.above})
    return _assess(submitted.declared, submitted.policy, rules), advisories


def assessment_from_dict(data: dict[str, Any]) -> Assessment:
    return Assessment(declared=data["declaredImpact"], impact=data["effectiveImpact"], policy=data["policy"],
                      rules=tuple(data.get("rules", [])))


# --------------------------------------------------------------------------- storage and change


class PolicyGovernance(Protocol):
    """The multisig seam (``GovernanceService``)."""

    def open_upgrade(self, *, upgrade_id: str, package_id: str, manifest_digest: str, impact: Any,
                     proposed_by: str, now: datetime) -> Any: ...

    def load(self, kind: Any, subject_id: str) -> Any: ...

    def approved(self, subject: Any) -> bool: ...

    def valid_count(self, subject: Any, collection: Any, decision: Any) -> int: ...

    def registered(self) -> frozenset[str]: ...


@dataclass(frozen=True)
class PolicyChange:
    view: dict[str, Any]
    events: list[EventDraft] = field(default_factory=list)


class ImpactPolicyStore:
    def __init__(self, store: DocStore) -> None:
        self.store = store

    def current(self, now: datetime | None = None) -> StoredPolicy:
        """The policy in force; the default is seeded (version 1) at first use."""
        doc = self.store.get(KIND, CURRENT)
        if doc is not None:
            return StoredPolicy.from_doc(doc)
        seeded = self._doc(1, DEFAULT_POLICY, "system:default", to_rfc3339(now, "auto") if now else "1970-01-01T00:00:00Z",
                           None)
        for ident in (CURRENT, "v1"):
            with contextlib.suppress(Conflict):  # seeded concurrently: read what won
                self.store.create(KIND, ident, seeded)
        stored = self.store.get(KIND, CURRENT)
        assert stored is not None
        return StoredPolicy.from_doc(stored)

    def version(self, n: int) -> StoredPolicy:
        doc = self.store.get(KIND, f"v{n}")
        if doc is None:
            current = self.current()
            if current.version == n:  # a seed interrupted between its two writes
                return current
            raise NotFound("impact policy version", str(n))
        return StoredPolicy.from_doc(doc)

    @staticmethod
    def _doc(version: int, document: PolicyDocument, by: str, at: str, proposal_id: str | None) -> dict[str, Any]:
        return {"policyVersion": version, "document": document.as_json(), "digest": document.digest,
                "changedBy": by, "changedAt": at, "proposalId": proposal_id}

    # ------------------------------------------------------------------ governed change
    def propose(self, caller: Principal, document: dict[str, Any], governance: PolicyGovernance,
                now: datetime) -> PolicyChange:
        """A superadmin proposes a new document; approvers sign its digest (``POST
        /upgrades/{proposalId}/approvals``) under the same rules as any upgrade."""
        _require_superadmin(caller)
        try:
            parsed = PolicyDocument.model_validate(document)
        except ValidationError as exc:
            raise InvalidInput("invalid impact policy document",
                               {"errors": [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]}) from None
        base = self.current(now)
        if parsed.digest == base.digest:
            raise DomainError("policy_unchanged", "the proposed document is the policy in force", 409,
                              {"version": base.version, "digest": base.digest})
        proposal_id = f"policy-{uuid.uuid4()}"
        opened = governance.open_upgrade(upgrade_id=proposal_id, package_id=POLICY_PACKAGE,
                                         manifest_digest=parsed.digest, impact=PROPOSAL_IMPACT,
                                         proposed_by=caller.sub, now=now)
        record = {"proposalId": proposal_id, "document": parsed.as_json(), "digest": parsed.digest,
                  "baseVersion": base.version, "proposedBy": caller.sub, "proposedAt": to_rfc3339(now, "auto"),
                  "status": "Pending", "threshold": opened.subject.threshold}
        self.store.create(PROPOSAL, proposal_id, record)
        return PolicyChange({**record, "upgradeId": proposal_id}, list(opened.events))

    def proposal(self, proposal_id: str) -> dict[str, Any]:
        if not isinstance(proposal_id, str) or not _PROPOSAL_ID.match(proposal_id):
            raise NotFound("impact policy proposal", str(proposal_id)[:80])
        doc = self.store.get(PROPOSAL, proposal_id)
        if doc is None:
            raise NotFound("impact policy proposal", proposal_id)
        return doc

    def apply(self, caller: Principal, proposal_id: str, governance: PolicyGovernance, now: datetime) -> PolicyChange:
        """Once approved (by enough approvers registered *now*), the document becomes the next version."""
        _require_superadmin(caller)
        proposal = self.proposal(proposal_id)
        if proposal["status"] == "Applied":
            raise Conflict("this proposal was already applied", {"proposalId": proposal_id,
                                                                 "version": proposal.get("appliedVersion")},
                           code="already_applied")
        subject = governance.load("upgrade", proposal_id)
        if subject.digest != proposal["digest"]:
            raise DomainError("wrong_subject", "the approval subject is for another document", 422)
        if not governance.approved(subject):
            raise DomainError("not_approved", "the policy change does not have the required approvals",
                              409, {"status": subject.status, "threshold": subject.threshold,
                                    "approvals": governance.valid_count(subject, "approvals", "approve")})
        base = self.current(now)
        if base.version != proposal["baseVersion"]:
            raise Conflict("the policy changed since this proposal was made; propose again",
                           {"baseVersion": proposal["baseVersion"], "current": base.version}, code="stale_policy")
        document = PolicyDocument.model_validate(proposal["document"])
        new_version = base.version + 1
        doc = self._doc(new_version, document, caller.sub, to_rfc3339(now, "auto"), proposal_id)
        current_doc = self.store.get(KIND, CURRENT)
        assert current_doc is not None
        self.store.create(KIND, f"v{new_version}", doc)  # Conflict: a concurrent apply won
        self.store.replace(KIND, CURRENT, doc, current_doc["version"])
        proposal_doc = dict(proposal)
        version = proposal_doc.pop("version")
        self.store.replace(PROPOSAL, proposal_id, {**proposal_doc, "status": "Applied",
                                                   "appliedVersion": new_version}, version)
        registered = governance.registered()
        approvers = sorted(r.approver_id for r in subject.approvals
                           if r.decision == "approve" and r.approver_id in registered)
        stored = StoredPolicy.from_doc(doc)
        return PolicyChange(stored.view(), [EventDraft("ImpactPolicyChanged", POLICY_PACKAGE, {
            "fromVersion": base.version, "toVersion": new_version, "fromDigest": base.digest,
            "digest": document.digest, "proposalId": proposal_id, "approvers": approvers}, actor=caller.sub)])


def _require_superadmin(caller: Principal) -> None:
    if SUPERADMIN not in caller.roles:
        raise Forbidden("only a superadmin changes the impact policy", {"role": SUPERADMIN})
