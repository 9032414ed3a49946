"""Who may release what (issue 17, "Release policy"), against in-memory fakes: names owned and
delegated, immutable name@version, governed rollbacks, the effective impact from a versioned
policy document (changed only through 3-of-5), and too few approvers refused up front."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from hallmark._domain import Caller
from hallmark.docstore import update
from hallmark.errors import DomainError
from hallmark.governance import ApproverRegistry, GovernanceService, sign_approval
from hallmark.release import names
from hallmark.release.impact_policy import DEFAULT_POLICY, ImpactPolicyStore
from hallmark.release.service import KIND, ReleaseService, SubmitRequest
from hallmark.signing import public_pem_of
from tests.fakes.docstore import InMemoryDocStore
from tests.fakes.governance import InMemoryApprovalRepository, InMemoryApproverRepository

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
ROOT = Caller("root", frozenset({"superadmin"}))
SUB = frozenset({"submitter"})
ADMIN = frozenset({"superadmin", "submitter"})


@dataclass
class Audit:
    events: list[dict[str, Any]] = field(default_factory=list)

    def emit(self, *, chain: str, type: str, actor: str, subject: str, data: dict[str, Any],
             event_id: str | None = None) -> str:
        self.events.append({"chain": chain, "type": type, "actor": actor, "subject": subject, "data": data})
        return event_id or str(len(self.events))

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]


@dataclass
class World:
    store: InMemoryDocStore
    audit: Audit
    gov: GovernanceService
    registry: ApproverRegistry
    keys: dict[str, ec.EllipticCurvePrivateKey]
    releases: ReleaseService

    def submit(self, name: str, version: str, sub: str = "alice", roles: frozenset[str] = SUB,
               **over: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "version": version, "type": "library", "target": f"pypi:{name}",
                                "impact": "LOW", "rationale": "r", "sha256": "a" * 64, "size": 100, "license": "MIT"}
        body.update(over)
        return self.releases.submit(SubmitRequest.model_validate(body), sub, roles)

    def set_status(self, package_id: str, status: str) -> None:
        def change(d: dict[str, Any]) -> None:
            d["status"] = status

        update(self.store, KIND, package_id, change)

    def published(self, name: str, version: str, sub: str = "alice", **over: Any) -> dict[str, Any]:
        doc = self.submit(name, version, sub, **over)
        self.set_status(doc["packageId"], "Published")
        return doc

    def packages(self) -> list[dict[str, Any]]:
        return self.store.query(KIND, 1000)


def make_world(approvers: int = 5) -> World:
    store, audit = InMemoryDocStore(), Audit()
    repo, approvals = InMemoryApproverRepository(), InMemoryApprovalRepository()
    registry = ApproverRegistry(repo)
    keys = {f"approver-{i}": ec.generate_private_key(ec.SECP256R1()) for i in range(1, approvers + 1)}
    for a, k in keys.items():
        registry.add(ROOT, a, public_pem_of(k), NOW)
    gov = GovernanceService(approvals, repo)
    return World(store, audit, gov, registry, keys, ReleaseService(store, audit, lambda: NOW, governance=gov))


@pytest.fixture()
def world() -> World:
    return make_world()


def refused(fn: Any, *args: Any, **kw: Any) -> DomainError:
    with pytest.raises(DomainError) as err:
        fn(*args, **kw)
    return err.value


# ----------------------------------------------------------------------------- names


def test_the_first_submitter_owns_the_name_and_another_is_refused(world: World) -> None:
    first = world.submit("payments", "1.0.0", "alice")
    assert world.releases.names.view("payments")["owner"] == "alice"
    assert "NameClaimed" in world.audit.types()
    before = len(world.packages())
    err = refused(world.submit, "payments", "1.0.1", "mallory")
    assert (err.code, err.http_status) == ("name_owned", 403)
    assert err.details["owner"] == "alice"
    assert len(world.packages()) == before, "nothing stored"
    assert list(world.releases.names.view("payments")["releases"]) == ["1.0.0"]
    assert first["authority"] == "claim"


def test_a_lower_version_by_another_submitter_is_refused_too(world: World) -> None:
    world.published("ledger", "2.0.0", "alice")
    assert refused(world.submit, "ledger", "0.0.1", "mallory").code == "name_owned"


def test_exact_delegation_lets_the_delegate_release_until_revoked(world: World) -> None:
    world.submit("acme", "1.0.0", "alice")
    change = world.releases.names.delegate(Caller("alice", SUB), "acme", "bob", False, NOW)
    assert [e.type for e in change.events] == ["NameDelegated"]
    assert world.submit("acme", "1.1.0", "bob")["authority"] == "delegate"
    # an exact delegation does not cover the namespace
    assert refused(world.submit, "acme-cli", "1.0.0", "bob").code == "name_owned"
    revoked = world.releases.names.revoke(Caller("alice", SUB), "acme", "bob", NOW)
    assert [e.type for e in revoked.events] == ["DelegationRevoked"]
    assert refused(world.submit, "acme", "1.2.0", "bob").code == "name_owned"


def test_prefix_delegation_covers_the_namespace_and_the_owner_keeps_it(world: World) -> None:
    world.submit("acme", "1.0.0", "alice")
    world.releases.names.delegate(Caller("alice", SUB), "acme", "bob", True, NOW)
    doc = world.submit("acme-cli", "1.0.0", "bob")
    assert doc["authority"] == "prefix:acme"
    assert world.releases.names.view("acme-cli")["owner"] == "alice", "a namespace name belongs to its owner"
    assert world.submit("acme.tools", "1.0.0", "bob")["authority"] == "prefix:acme"
    # a stranger cannot squat inside the namespace, but a name that merely starts alike is free
    assert refused(world.submit, "acme-evil", "1.0.0", "mallory").code == "name_owned"
    assert world.submit("acmex", "1.0.0", "mallory")["authority"] == "claim"
    world.releases.names.revoke(Caller("alice", SUB), "acme", "bob", NOW)
    assert refused(world.submit, "acme-cli", "1.1.0", "bob").code == "name_owned"


def test_only_the_owner_or_a_superadmin_delegates(world: World) -> None:
    world.submit("acme", "1.0.0", "alice")
    err = refused(world.releases.names.delegate, Caller("mallory", SUB), "acme", "mallory", True, NOW)
    assert (err.code, err.http_status) == ("not_owner", 403)
    assert refused(world.releases.names.delegate, Caller("x", SUB), "nope", "bob", False, NOW).http_status == 404
    world.releases.names.delegate(ROOT, "acme", "carol", False, NOW)
    assert world.submit("acme", "1.1.0", "carol")["authority"] == "delegate"


def test_a_superadmin_assigns_owners_and_may_release_any_name(world: World) -> None:
    world.submit("orphan", "1.0.0", "alice")
    assert refused(world.releases.names.assign, Caller("alice", SUB), "orphan", "bob", NOW).http_status == 403
    change = world.releases.names.assign(ROOT, "orphan", "bob", NOW)
    assert [e.type for e in change.events] == ["NameOwnerAssigned"]
    assert change.events[0].data["previousOwner"] == "alice"
    assert refused(world.submit, "orphan", "1.1.0", "alice").code == "name_owned"
    assert world.submit("orphan", "1.1.0", "bob")["authority"] == "owner"
    assert world.submit("orphan", "1.2.0", "root", ADMIN)["authority"] == "superadmin"
    world.releases.names.assign(ROOT, "reserved", "carol", NOW)  # a name nobody released yet
    assert refused(world.submit, "reserved", "1.0.0", "alice").code == "name_owned"


class RacingStore(InMemoryDocStore):
    """The first read of a name answers "unowned", then mallory's claim lands before the writer's."""

    def __init__(self) -> None:
        super().__init__()
        self.raced = False

    def get(self, kind: str, ident: str) -> dict[str, Any] | None:
        doc = super().get(kind, ident)
        if kind == names.KIND and doc is None and not self.raced:
            self.raced = True
            super().create(names.KIND, ident, names.new_record(ident, "mallory", NOW, "claim"))
        return doc


def test_claiming_a_name_is_race_safe() -> None:
    w = make_world()
    store = RacingStore()
    releases = ReleaseService(store, w.audit, lambda: NOW, governance=w.gov)
    req = SubmitRequest.model_validate({"name": "contested", "version": "1.0.0", "type": "library",
                                        "target": "pypi:x", "impact": "LOW", "rationale": "r",
                                        "sha256": "a" * 64, "size": 100, "license": "MIT"})
    err = refused(releases.submit, req, "alice", SUB)
    assert err.code == "name_owned"
    assert store.get(names.KIND, "contested")["owner"] == "mallory"  # type: ignore[index]
    assert store.query(KIND) == [] and "NameClaimed" not in w.audit.types()


# ----------------------------------------------------------------------------- versions


def test_a_published_version_is_immutable(world: World) -> None:
    world.published("imm", "1.0.0")
    for again in ("1.0.0", "1.0"):  # the same version however it is spelled
        err = refused(world.submit, "imm", again)
        assert (err.code, err.http_status) == ("version_exists", 409)
    world.set_status(world.releases.names.view("imm")["releases"]["1.0.0"]["packageId"], "RolledBack")
    assert refused(world.submit, "imm", "1.0.0").code == "version_exists", "rolled back is still released"


def test_a_version_in_flight_is_refused_and_a_rejected_one_may_be_resubmitted(world: World) -> None:
    first = world.submit("fly", "1.0.0")
    assert refused(world.submit, "fly", "1.0.0").code == "version_in_flight"
    world.set_status(first["packageId"], "Rejected")
    again = world.submit("fly", "1.0.0")
    assert world.releases.names.view("fly")["releases"]["1.0.0"]["packageId"] == again["packageId"]


def test_a_lower_version_needs_a_governed_rollback(world: World) -> None:
    world.published("down", "2.1.0")
    err = refused(world.submit, "down", "2.0.9")
    assert (err.code, err.http_status) == ("version_lower", 409) and err.details["current"] == "2.1.0"
    rollback = world.submit("down", "2.0.9", rollback=True)
    assert rollback["impact"] == "HIGH" and rollback["declaredImpact"] == "LOW"
    assert "rollback" in [r["rule"] for r in rollback["policy"]["rules"]]
    assert refused(world.submit, "down", "3.0.0", rollback=True).code == "not_a_rollback"


def test_semver_build_metadata_and_prereleases_order(world: World) -> None:
    world.published("sv", "1.0.0")
    assert world.submit("sv", "1.0.1+b1")["status"] == "Submitted"
    assert refused(world.submit, "sv", "1.0.0-rc.1").code == "version_lower"
    assert refused(world.submit, "sv", "banana").code == "invalid_version"


# ----------------------------------------------------------------------------- effective impact


def test_declaring_low_cannot_skip_the_policy(world: World) -> None:
    first = world.submit("imp", "1.0.0")
    assert (first["declaredImpact"], first["impact"]) == ("LOW", "MEDIUM")  # first release
    world.set_status(first["packageId"], "Published")
    assert world.submit("imp", "1.1.0")["impact"] == "LOW"
    major = world.submit("imp", "2.0.0")
    assert major["impact"] == "HIGH" and [r["rule"] for r in major["policy"]["rules"]] == ["majorBump"]
    prod = world.submit("imp", "1.2.0", target="production:eu-west-1")
    assert prod["impact"] == "HIGH"
    assert world.submit("imp", "1.3.0", impact="CRITICAL")["impact"] == "CRITICAL", "raising is fine"
    assert first["policy"]["policy"] == {"version": 1, "digest": DEFAULT_POLICY.digest}


def _results(share: float = 0.0, advisories: list[tuple[str, str]] = ()) -> list[dict[str, Any]]:  # type: ignore[assignment]
    findings = [{"rule": "vulnerable-range", "ecosystem": "PyPI", "package": p, "specifier": s, "advisory": "A-1"}
                for p, s in advisories]
    return [
        {"validator": "security", "passed": True, "digest": "d1", "reasons": [], "stats": {}, "findings": findings},
        {"validator": "attribution", "passed": True, "digest": "d2", "reasons": [], "stats": {"ai_share": share},
         "findings": []},
    ]


def test_ai_share_above_the_threshold_raises_the_impact_after_validation(world: World) -> None:
    world.published("ai", "1.0.0")
    doc = world.submit("ai", "1.1.0")
    low = world.releases.record_validation(doc["packageId"], _results(share=0.2))
    assert low["impact"] == "LOW" and low["passed"]
    doc = world.submit("ai", "1.2.0")
    high = world.releases.record_validation(doc["packageId"], _results(share=0.75))
    assert high["impact"] == "HIGH" and high["declaredImpact"] == "LOW" and high["passed"]
    assert world.releases.get(doc["packageId"])["impact"] == "HIGH"
    statement = world.releases.manifest_statement(doc["packageId"], high["preconditions"], "s3://x")
    assert statement["predicate"]["impact"] == "HIGH" and statement["predicate"]["declaredImpact"] == "LOW"
    assert statement["predicate"]["policy"]["impactPolicyVersion"] == 1
    assert statement["predicate"]["policy"]["rules"] == ["aiShare"]


def test_only_new_or_changed_advisory_dependencies_raise_the_impact(world: World) -> None:
    base = world.submit("dep", "1.0.0")
    world.releases.record_validation(base["packageId"], _results(advisories=[("rich", ">=13")]))
    world.set_status(base["packageId"], "Published")
    same = world.submit("dep", "1.0.1")
    assert world.releases.record_validation(same["packageId"], _results(advisories=[("rich", ">=13")]))["impact"] == "LOW"
    changed = world.submit("dep", "1.0.2")
    out = world.releases.record_validation(changed["packageId"], _results(advisories=[("rich", ">=12")]))
    assert out["impact"] == "HIGH" and out["rules"][0]["dependencies"] == ["PyPI:rich@>=12"]


# ----------------------------------------------------------------------------- approvers


def test_a_high_release_with_too_few_approvers_is_refused_at_submit() -> None:
    w = make_world(approvers=2)
    err = refused(w.submit, "few", "1.0.0", impact="HIGH")
    assert (err.code, err.http_status) == ("approvers_insufficient", 409)
    assert err.details == {"impact": "HIGH", "threshold": 3, "registeredApprovers": 2}
    assert w.packages() == [] and w.releases.names.get("few") is None, "nothing stored, not even the claim"
    assert w.audit.events == []


def test_a_release_that_becomes_high_after_validation_with_too_few_approvers_is_rejected() -> None:
    w = make_world(approvers=2)
    doc = w.submit("late", "1.0.0")
    out = w.releases.record_validation(doc["packageId"], _results(share=0.9))
    assert out["impact"] == "HIGH" and not out["passed"]
    assert any("only 2 approvers are registered" in r for r in out["reasons"])


# ----------------------------------------------------------------------------- the policy is data


def _approve_all(w: World, subject_id: str, digest: str, who: list[str]) -> None:
    for a in who:
        form = sign_approval(w.keys[a], approver_id=a, subject_id=subject_id, digest=digest, decision="approve",
                             expires_at=NOW + timedelta(hours=1))
        w.gov.record_approval(w.gov.load("upgrade", subject_id), form, a, NOW)


def test_the_policy_changes_only_by_superadmin_through_three_of_five(world: World) -> None:
    store = ImpactPolicyStore(world.store)
    assert store.current(NOW).version == 1  # the default, seeded at first use
    stricter = {**DEFAULT_POLICY.as_json(), "firstRelease": "HIGH"}
    assert refused(store.propose, Caller("alice", SUB), stricter, world.gov, NOW).http_status == 403
    assert refused(store.propose, ROOT, {"firstRelease": "ENORMOUS"}, world.gov, NOW).http_status == 400
    assert refused(store.propose, ROOT, {**stricter, "rollback": "LOW"}, world.gov, NOW).http_status == 400
    proposal = store.propose(ROOT, stricter, world.gov, NOW)
    pid, digest = proposal.view["proposalId"], proposal.view["digest"]
    assert proposal.view["threshold"] == 3 and [e.type for e in proposal.events] == ["ApprovalRequested"]
    assert refused(store.apply, ROOT, pid, world.gov, NOW).code == "not_approved"
    _approve_all(world, pid, digest, ["approver-1", "approver-2"])
    assert refused(store.apply, ROOT, pid, world.gov, NOW).code == "not_approved"
    _approve_all(world, pid, digest, ["approver-3"])
    assert refused(store.apply, Caller("alice", SUB), pid, world.gov, NOW).http_status == 403
    applied = store.apply(ROOT, pid, world.gov, NOW)
    assert applied.view["version"] == 2 and [e.type for e in applied.events] == ["ImpactPolicyChanged"]
    assert applied.events[0].data["fromVersion"] == 1 and applied.events[0].data["digest"] == digest
    assert refused(store.apply, ROOT, pid, world.gov, NOW).code == "already_applied"
    doc = world.submit("strict", "1.0.0")
    assert doc["impact"] == "HIGH" and doc["policy"]["policy"]["version"] == 2


def test_a_policy_change_approved_by_a_removed_approver_does_not_apply(world: World) -> None:
    store = ImpactPolicyStore(world.store)
    proposal = store.propose(ROOT, {**DEFAULT_POLICY.as_json(), "majorBump": "CRITICAL"}, world.gov, NOW)
    pid, digest = proposal.view["proposalId"], proposal.view["digest"]
    _approve_all(world, pid, digest, ["approver-1", "approver-2", "approver-3"])
    world.registry.remove(ROOT, "approver-1", NOW)
    assert refused(store.apply, ROOT, pid, world.gov, NOW).code == "not_approved"
    assert store.current(NOW).version == 1


def test_a_stale_proposal_does_not_apply(world: World) -> None:
    store = ImpactPolicyStore(world.store)
    a = store.propose(ROOT, {**DEFAULT_POLICY.as_json(), "majorBump": "CRITICAL"}, world.gov, NOW)
    b = store.propose(ROOT, {**DEFAULT_POLICY.as_json(), "firstRelease": "LOW"}, world.gov, NOW)
    for p in (a, b):
        _approve_all(world, p.view["proposalId"], p.view["digest"], ["approver-1", "approver-2", "approver-3"])
    store.apply(ROOT, a.view["proposalId"], world.gov, NOW)
    assert refused(store.apply, ROOT, b.view["proposalId"], world.gov, NOW).code == "stale_policy"
