"""Governance: approver registry, signed approvals, thresholds, emergency ratification."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from hallmark._domain import Caller
from hallmark.canonical import to_rfc3339
from hallmark.errors import DomainError
from hallmark.governance import (
    ApprovalSubject,
    ApproverRegistry,
    GovernanceService,
    ThresholdPolicy,
    Upgrade,
    approval_message,
    new_nonce,
    sign_approval,
)
from hallmark.signing import public_pem_of
from tests.fakes.governance import (
    InMemoryApprovalRepository,
    InMemoryApproverRepository,
    registered_approvers,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
DIGEST = "sha256:" + "ab" * 32
ROOT = Caller("root", frozenset({"superadmin"}))
APPROVERS = [f"approver-{i}" for i in range(1, 6)]


@dataclass
class World:
    keys: dict[str, ec.EllipticCurvePrivateKey]
    approvers: InMemoryApproverRepository
    approvals: InMemoryApprovalRepository
    registry: ApproverRegistry
    service: GovernanceService

    def form(self, approver: str, subject: ApprovalSubject, decision: str = "approve", **over: Any) -> dict[str, Any]:
        args: dict[str, Any] = {
            "approver_id": approver, "subject_id": subject.subject_id, "digest": subject.digest,
            "decision": decision, "expires_at": NOW + timedelta(hours=1), "kind": subject.kind,
        }
        args.update(over)
        return sign_approval(self.keys[approver], **args)

    def fresh(self, subject: ApprovalSubject) -> ApprovalSubject:
        stored = self.approvals.get(subject.kind, subject.subject_id)
        assert stored is not None
        return stored


@pytest.fixture()
def world() -> World:
    keys, approvers, registry = registered_approvers(APPROVERS, NOW)
    approvals = InMemoryApprovalRepository()
    return World(keys, approvers, approvals, registry, GovernanceService(approvals, approvers))


def open_upgrade(world: World, upgrade_id: str = "upg-1", **kw: Any) -> Upgrade:
    args: dict[str, Any] = {"upgrade_id": upgrade_id, "package_id": "pkg-1", "manifest_digest": DIGEST,
                            "impact": "HIGH", "proposed_by": "alice", "now": NOW, "task_token": "tok-1",
                            "previous_version": "1.0.0"}
    args.update(kw)
    return world.service.open_upgrade(**args).subject


def approve(world: World, subject: ApprovalSubject, approver: str, decision: str = "approve") -> Any:
    return world.service.record_approval(world.fresh(subject), world.form(approver, subject, decision), approver, NOW)


# ----------------------------------------------------------------------------- happy paths


def test_message_is_rfc8785_of_the_five_fields() -> None:
    msg = approval_message("u", "d", "approve", "2026-01-01T00:00:00Z", "n" * 16)
    assert msg == b'{"decision":"approve","expiresAt":"2026-01-01T00:00:00Z","manifestDigest":"d","nonce":"nnnnnnnnnnnnnnnn","upgradeId":"u"}'


def test_two_approvals_wait_three_resume(world: World) -> None:
    upgrade = open_upgrade(world)
    r1 = approve(world, upgrade, "approver-1")
    r2 = approve(world, upgrade, "approver-2")
    assert (r1.outcome, r2.outcome) == ("waiting", "waiting")
    assert world.fresh(upgrade).status == "Pending"
    r3 = approve(world, upgrade, "approver-3")
    assert r3.outcome == "resume"
    assert r3.task_token == "tok-1"
    stored = world.fresh(upgrade)
    assert stored.status == "Applied" and len(stored.approvals) == 3
    assert [e.type for e in r3.events] == ["ApprovalRecorded", "UpgradeApplied"]
    assert r3.events[1].data["approvers"] == ["approver-1", "approver-2", "approver-3"]
    # closed: a fourth approval is a conflict
    with pytest.raises(DomainError) as err:
        approve(world, upgrade, "approver-4")
    assert err.value.code == "conflict" and err.value.http_status == 409


def test_open_emits_approval_requested_and_low_impact_needs_none(world: World) -> None:
    opened = world.service.open_upgrade(upgrade_id="u9", package_id="p", manifest_digest=DIGEST, impact="CRITICAL",
                                        proposed_by="alice", now=NOW)
    assert [e.type for e in opened.events] == ["ApprovalRequested"]
    assert opened.events[0].data["threshold"] == 3
    with pytest.raises(DomainError) as err:
        open_upgrade(world, "u10", impact="LOW")
    assert err.value.code == "approval_not_required"


def test_rejections_that_make_threshold_impossible_reject(world: World) -> None:
    upgrade = open_upgrade(world)
    assert approve(world, upgrade, "approver-1", "approve").outcome == "waiting"
    assert approve(world, upgrade, "approver-2", "reject").outcome == "waiting"
    assert approve(world, upgrade, "approver-3", "reject").outcome == "waiting"  # 1 yes + 2 undecided = 3
    last = approve(world, upgrade, "approver-4", "reject")
    assert last.outcome == "reject"
    assert world.fresh(upgrade).status == "Rejected"
    assert [e.type for e in last.events] == ["ApprovalRecorded", "PackageRejected"]


def test_configurable_threshold() -> None:
    keys = {a: ec.generate_private_key(ec.SECP256R1()) for a in APPROVERS}
    approvers = InMemoryApproverRepository()
    policy = ThresholdPolicy(thresholds={"LOW": 0, "MEDIUM": 0, "HIGH": 2, "CRITICAL": 4})
    registry = ApproverRegistry(approvers, policy)
    for a in APPROVERS:
        registry.add(ROOT, a, public_pem_of(keys[a]), NOW)
    repo = InMemoryApprovalRepository()
    w = World(keys, approvers, repo, registry, GovernanceService(repo, approvers, policy))
    crit = open_upgrade(w, "crit", impact="CRITICAL")
    assert crit.threshold == 4
    for a in APPROVERS[:3]:
        assert approve(w, crit, a).outcome == "waiting"
    assert approve(w, crit, "approver-4").outcome == "resume"
    high = open_upgrade(w, "high", impact="HIGH")
    approve(w, high, "approver-1")
    assert approve(w, high, "approver-2").outcome == "resume"


# ----------------------------------------------------------------------------- refusals


def _snapshot(world: World, subject: ApprovalSubject) -> tuple[Any, set[Any]]:
    return world.fresh(subject), set(world.approvals._nonces)


RefusalCase = Callable[[World, Upgrade], tuple[dict[str, Any], str]]


def _unknown(world: World, up: Upgrade) -> tuple[dict[str, Any], str]:
    stranger = ec.generate_private_key(ec.SECP256R1())
    world.keys["mallory"] = stranger
    return world.form("mallory", up), "mallory"


def _bad_sig(world: World, up: Upgrade) -> tuple[dict[str, Any], str]:
    form = world.form("approver-1", up)
    form["decision"] = "reject"  # the signature was over "approve"
    return form, "approver-1"


def _forged_by_other_key(world: World, up: Upgrade) -> tuple[dict[str, Any], str]:
    form = sign_approval(ec.generate_private_key(ec.SECP256R1()), approver_id="approver-1",
                         subject_id=up.upgrade_id, digest=up.manifest_digest, decision="approve",
                         expires_at=NOW + timedelta(hours=1))
    return form, "approver-1"


def _other_upgrade_silent(world: World, up: Upgrade) -> tuple[dict[str, Any], str]:
    form = world.form("approver-1", up, subject_id="upg-OTHER")
    del form["upgradeId"], form["manifestDigest"]  # no echo: caught by the signature
    return form, "approver-1"


def _other_digest_silent(world: World, up: Upgrade) -> tuple[dict[str, Any], str]:
    form = world.form("approver-1", up, digest="sha256:" + "cd" * 32)
    del form["upgradeId"], form["manifestDigest"]
    return form, "approver-1"


def _other_upgrade(world: World, up: Upgrade) -> tuple[dict[str, Any], str]:
    return world.form("approver-1", up, subject_id="upg-OTHER"), "approver-1"


def _other_digest(world: World, up: Upgrade) -> tuple[dict[str, Any], str]:
    return world.form("approver-1", up, digest="sha256:" + "cd" * 32), "approver-1"


def _expired(world: World, up: Upgrade) -> tuple[dict[str, Any], str]:
    return world.form("approver-1", up, expires_at=NOW), "approver-1"


def _caller_mismatch(world: World, up: Upgrade) -> tuple[dict[str, Any], str]:
    return world.form("approver-1", up), "approver-2"


def _garbage_signature(world: World, up: Upgrade) -> tuple[dict[str, Any], str]:
    form = world.form("approver-1", up)
    form["signature"] = "not base64!!"
    return form, "approver-1"


def _ratify_on_approvals(world: World, up: Upgrade) -> tuple[dict[str, Any], str]:
    return world.form("approver-1", up, "ratify"), "approver-1"


@pytest.mark.parametrize(
    ("case", "code", "status"),
    [
        (_unknown, "unknown_approver", 403),
        (_bad_sig, "bad_signature", 422),
        (_forged_by_other_key, "bad_signature", 422),
        (_garbage_signature, "bad_signature", 422),
        (_other_upgrade_silent, "bad_signature", 422),
        (_other_digest_silent, "bad_signature", 422),
        (_other_upgrade, "wrong_subject", 422),
        (_other_digest, "wrong_subject", 422),
        (_expired, "expired", 422),
        (_caller_mismatch, "approver_mismatch", 403),
        (_ratify_on_approvals, "invalid_decision", 400),
    ],
)
def test_refusals_are_typed_and_change_nothing(world: World, case: RefusalCase, code: str, status: int) -> None:
    up = open_upgrade(world)
    approve(world, up, "approver-5")
    before = _snapshot(world, up)
    form, caller = case(world, up)
    with pytest.raises(DomainError) as err:
        world.service.record_approval(world.fresh(up), form, caller, NOW)
    assert (err.value.code, err.value.http_status) == (code, status)
    assert [e.type for e in err.value.events] == ["ApprovalRefused"]
    assert err.value.events[0].data["code"] == code
    assert _snapshot(world, up) == before


def test_reused_nonce_is_refused_globally_per_approver(world: World) -> None:
    up1 = open_upgrade(world, "upg-1")
    up2 = open_upgrade(world, "upg-2")
    nonce = new_nonce()
    world.service.record_approval(up1, world.form("approver-1", up1, nonce=nonce), "approver-1", NOW)
    before = _snapshot(world, up2)
    with pytest.raises(DomainError) as err:  # same approver, same nonce, another upgrade
        world.service.record_approval(world.fresh(up2), world.form("approver-1", up2, nonce=nonce), "approver-1", NOW)
    assert err.value.code == "nonce_reused"
    assert _snapshot(world, up2) == before
    # another approver may use the same nonce string
    res = world.service.record_approval(world.fresh(up2), world.form("approver-2", up2, nonce=nonce), "approver-2", NOW)
    assert res.outcome == "waiting"


def test_replaying_the_same_form_is_refused(world: World) -> None:
    up = open_upgrade(world)
    form = world.form("approver-1", up)
    world.service.record_approval(world.fresh(up), form, "approver-1", NOW)
    before = _snapshot(world, up)
    with pytest.raises(DomainError) as err:
        world.service.record_approval(world.fresh(up), form, "approver-1", NOW)
    assert err.value.code == "duplicate_approver"
    assert _snapshot(world, up) == before


def test_same_approver_twice_with_fresh_nonce(world: World) -> None:
    up = open_upgrade(world)
    approve(world, up, "approver-1")
    before = _snapshot(world, up)
    with pytest.raises(DomainError) as err:
        approve(world, up, "approver-1", "reject")
    assert err.value.code == "duplicate_approver"
    assert _snapshot(world, up) == before


def test_stale_subject_is_reloaded_and_decided_again(world: World) -> None:
    """A concurrent change is not a refusal: the service reloads the subject and decides again."""
    up = open_upgrade(world)
    stale = world.fresh(up)
    approve(world, up, "approver-1")
    form = world.form("approver-2", up)
    result = world.service.record_approval(stale, form, "approver-2", NOW)
    assert result.outcome == "waiting"
    assert [r.approver_id for r in world.fresh(up).approvals] == ["approver-1", "approver-2"]
    # the very same form again: the nonce is spent once, the approver has decided
    with pytest.raises(DomainError) as err:
        world.service.record_approval(world.fresh(up), form, "approver-2", NOW)
    assert err.value.code == "duplicate_approver"


def test_malformed_form_is_invalid_input(world: World) -> None:
    up = open_upgrade(world)
    with pytest.raises(DomainError) as err:
        world.service.record_approval(up, {"approverId": "approver-1", "decision": "maybe"}, "approver-1", NOW)
    assert err.value.code == "invalid_input" and err.value.http_status == 400


def test_subject_deadline_closes_approvals(world: World) -> None:
    up = open_upgrade(world, deadline=NOW + timedelta(minutes=5))
    with pytest.raises(DomainError) as err:
        world.service.record_approval(up, world.form("approver-1", up), "approver-1", NOW + timedelta(minutes=5))
    assert err.value.code == "expired"
    res = world.service.expire(world.fresh(up), NOW + timedelta(minutes=5))
    assert res.subject.status == "Expired" and [e.type for e in res.events] == ["UpgradeExpired"]
    assert world.service.expire(res.subject, NOW).events == []  # idempotent


# ----------------------------------------------------------------------------- emergency / ratification


def test_emergency_applies_at_once_and_ratification_keeps_it(world: World) -> None:
    opened = world.service.open_upgrade(upgrade_id="emg", package_id="p", manifest_digest=DIGEST, impact="CRITICAL",
                                        proposed_by="alice", now=NOW, emergency=True, previous_version="1.0.0")
    up = opened.subject
    assert up.status == "Ratifying" and up.applied_at == NOW
    assert up.ratification_deadline == NOW + timedelta(hours=48)
    assert [e.type for e in opened.events] == ["UpgradeApplied", "ApprovalRequested"]
    # approvals are not what an emergency upgrade collects
    with pytest.raises(DomainError):
        world.service.record_approval(up, world.form("approver-1", up), "approver-1", NOW)
    # an approval-decision signature is not accepted as a ratification
    with pytest.raises(DomainError) as err:
        world.service.record_ratification(up, world.form("approver-1", up, "approve"), "approver-1", NOW)
    assert err.value.code == "invalid_decision"
    results = [world.service.record_ratification(world.fresh(up), world.form(a, up, "ratify"), a, NOW)
               for a in APPROVERS[:3]]
    assert [r.outcome for r in results] == ["waiting", "waiting", "ratified"]
    assert world.fresh(up).status == "Ratified"
    assert [e.type for e in results[-1].events] == ["ApprovalRecorded", "UpgradeRatified"]
    check = world.service.check_ratification(world.fresh(up), NOW + timedelta(hours=48))
    assert check.outcome == "ratified" and check.events == []


def test_unratified_emergency_rolls_back_after_window(world: World) -> None:
    up = world.service.open_upgrade(upgrade_id="emg", package_id="p", manifest_digest=DIGEST, impact="HIGH",
                                    proposed_by="alice", now=NOW, emergency=True, previous_version="1.0.0").subject
    world.service.record_ratification(up, world.form("approver-1", up, "ratify"), "approver-1", NOW)
    with pytest.raises(DomainError) as err:
        world.service.check_ratification(world.fresh(up), NOW + timedelta(hours=1))
    assert err.value.code == "window_open"
    late = NOW + timedelta(hours=48)
    with pytest.raises(DomainError) as err:
        world.service.record_ratification(world.fresh(up), world.form("approver-2", up, "ratify",
                                          expires_at=late + timedelta(hours=1)), "approver-2", late)
    assert err.value.code == "window_closed"
    res = world.service.check_ratification(world.fresh(up), late)
    assert res.outcome == "rollback" and world.fresh(up).status == "RolledBack"
    assert res.events[0].type == "UpgradeRolledBack" and res.events[0].data["previousVersion"] == "1.0.0"


def test_vetoes_roll_back_early(world: World) -> None:
    up = world.service.open_upgrade(upgrade_id="emg", package_id="p", manifest_digest=DIGEST, impact="HIGH",
                                    proposed_by="alice", now=NOW, emergency=True, previous_version="1.0.0").subject
    outcomes = [world.service.record_ratification(world.fresh(up), world.form(a, up, "veto"), a, NOW).outcome
                for a in APPROVERS[:3]]
    assert outcomes == ["waiting", "waiting", "rollback"]
    assert world.fresh(up).status == "RolledBack"


# ----------------------------------------------------------------------------- settlements


def test_settlement_plan_uses_the_same_machinery(world: World) -> None:
    opened = world.service.open_settlement(settlement_id="stl-1", plan_digest="ff" * 32, proposed_by="alice", now=NOW)
    stl = opened.subject
    assert [e.type for e in opened.events] == ["SettlementPlanned", "ApprovalRequested"]
    form = world.form("approver-1", stl)
    assert "settlementId" in form and "planDigest" in form
    # an upgrade-shaped signature over the same id/digest is not a settlement approval
    forged = world.form("approver-2", stl, kind="upgrade")
    with pytest.raises(DomainError) as err:
        world.service.record_approval(stl, forged, "approver-2", NOW)
    assert err.value.code == "bad_signature"
    outs = [world.service.record_approval(world.fresh(stl), world.form(a, stl), a, NOW).outcome for a in APPROVERS[:3]]
    assert outs == ["waiting", "waiting", "resume"]
    assert world.fresh(stl).status == "Applied"


# ----------------------------------------------------------------------------- registry


def test_registry_is_managed_by_superadmin_and_audited(world: World) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(DomainError) as err:
        world.registry.add(Caller("bob", frozenset({"approver"})), "approver-6", public_pem_of(key), NOW)
    assert err.value.code == "forbidden"
    with pytest.raises(DomainError) as err:
        world.registry.add(ROOT, "approver-6", public_pem_of(key), NOW)
    assert err.value.code == "registry_full"
    world.registry.remove(ROOT, "approver-1", NOW)
    world.registry.remove(ROOT, "approver-2", NOW)
    with pytest.raises(DomainError) as err:  # 2 left could never reach a threshold of 3
        world.registry.remove(ROOT, "approver-3", NOW)
    assert err.value.code == "threshold_unreachable"
    assert len(world.registry.active()) == 3


def test_registry_rotate_remove_and_shared_keys() -> None:
    keys = {a: ec.generate_private_key(ec.SECP256R1()) for a in APPROVERS}
    repo = InMemoryApproverRepository()
    registry = ApproverRegistry(repo, ThresholdPolicy(), capacity=6)
    events = []
    for a in APPROVERS:
        events += registry.add(ROOT, a, public_pem_of(keys[a]), NOW).events
    assert [e.type for e in events] == ["ApproverAdded"] * 5
    with pytest.raises(DomainError) as err:  # a key may serve one approver only
        registry.add(ROOT, "approver-6", public_pem_of(keys["approver-1"]), NOW)
    assert err.value.code == "conflict"
    new_key = ec.generate_private_key(ec.SECP256R1())
    change = registry.rotate(ROOT, "approver-1", public_pem_of(new_key), NOW)
    assert change.events[0].type == "ApproverKeyRotated"
    assert len(change.approver.previous_keys) == 1
    removed = registry.remove(ROOT, "approver-5", NOW)
    assert removed.events[0].type == "ApproverRemoved" and not removed.approver.active
    assert len(registry.active()) == 4
    # the old key no longer signs for approver-1
    service = GovernanceService(InMemoryApprovalRepository(), repo)
    up = service.open_upgrade(upgrade_id="u", package_id="p", manifest_digest=DIGEST, impact="HIGH",
                              proposed_by="alice", now=NOW).subject
    old = sign_approval(keys["approver-1"], approver_id="approver-1", subject_id="u", digest=DIGEST,
                        decision="approve", expires_at=NOW + timedelta(hours=1))
    with pytest.raises(DomainError) as err:
        service.record_approval(up, old, "approver-1", NOW)
    assert err.value.code == "bad_signature"
    new = sign_approval(new_key, approver_id="approver-1", subject_id="u", digest=DIGEST,
                        decision="approve", expires_at=NOW + timedelta(hours=1))
    assert service.record_approval(up, new, "approver-1", NOW).outcome == "waiting"
    with pytest.raises(DomainError) as err:  # removed approvers are unknown
        service.record_approval(
            service.load("upgrade", "u"),
            sign_approval(keys["approver-5"], approver_id="approver-5", subject_id="u", digest=DIGEST,
                          decision="approve", expires_at=NOW + timedelta(hours=1)),
            "approver-5", NOW)
    assert err.value.code == "unknown_approver"


def test_registry_refuses_non_p256_keys(world: World) -> None:
    from cryptography.hazmat.primitives import serialization

    other = ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    with pytest.raises(DomainError) as err:
        ApproverRegistry(InMemoryApproverRepository()).add(ROOT, "x", other, NOW)
    assert err.value.code == "invalid_input"
    with pytest.raises(DomainError) as err:
        ApproverRegistry(InMemoryApproverRepository()).add(ROOT, "x", "-----BEGIN PUBLIC KEY-----\nxx", NOW)
    assert err.value.code == "invalid_input"


# ----------------------------------------------------------------------------- plumbing


def test_error_body_and_events_reach_an_emitter(world: World) -> None:
    from hallmark._domain import emit_all

    up = open_upgrade(world)
    with pytest.raises(DomainError) as err:
        world.service.record_approval(up, world.form("approver-1", up), "approver-2", NOW)
    assert err.value.to_response_body() == {"error": {
        "code": "approver_mismatch", "message": err.value.message, "details": err.value.details}}

    class Emitter:
        def __init__(self) -> None:
            self.calls: list[dict[str, Any]] = []

        def emit(self, *, chain: str, type: str, actor: str, subject: str, data: dict[str, Any],
                 event_id: str | None = None) -> str:
            self.calls.append({"chain": chain, "type": type, "actor": actor, "subject": subject, "id": event_id})
            return event_id or ""

    emitter = Emitter()
    ids = emit_all(emitter, "governance", err.value.events)
    assert emitter.calls[0]["type"] == "ApprovalRefused" and emitter.calls[0]["actor"] == "approver-2"
    assert ids == [err.value.events[0].event_id] and len(ids[0]) == 32


def test_subjects_roundtrip_through_json(world: World) -> None:
    from hallmark.governance import subject_from_dict

    up = open_upgrade(world)
    approve(world, up, "approver-1")
    stored = world.fresh(up)
    assert subject_from_dict(stored.to_json_dict()) == stored


# ----------------------------------------------------------------------------- issue 17: approvals


def _open_settlement(world: World, sid: str = "stl-x") -> ApprovalSubject:
    return world.service.open_settlement(settlement_id=sid, plan_digest="ee" * 32, proposed_by="alice",
                                         now=NOW).subject


@pytest.mark.parametrize("kind", ["upgrade", "settlement"])
def test_a_removed_approvers_earlier_approval_no_longer_counts(world: World, kind: str) -> None:
    subject = open_upgrade(world) if kind == "upgrade" else _open_settlement(world)
    assert approve(world, subject, "approver-1").outcome == "waiting"
    assert approve(world, subject, "approver-2").outcome == "waiting"
    world.registry.remove(ROOT, "approver-1", NOW)  # 4 remain: still >= the threshold of 3
    third = approve(world, subject, "approver-3")
    assert third.outcome == "waiting", "approver-1's approval must not count once removed"
    assert third.events[0].data["yes"] == 2
    assert world.fresh(subject).status == "Pending"
    assert world.service.valid_count(world.fresh(subject), "approvals", "approve") == 2
    assert approve(world, subject, "approver-4").outcome == "resume"
    assert world.service.approved(world.fresh(subject))


def test_approved_is_rechecked_against_the_registry_now(world: World) -> None:
    up = open_upgrade(world)
    for a in ("approver-1", "approver-2", "approver-3"):
        approve(world, up, a)
    assert world.service.approved(world.fresh(up))
    world.registry.remove(ROOT, "approver-3", NOW)
    assert not world.service.approved(world.fresh(up))


@pytest.mark.parametrize("kind", ["upgrade", "settlement"])
def test_expiry_farther_than_the_cap_is_refused_and_audited(world: World, kind: str) -> None:
    subject = open_upgrade(world) if kind == "upgrade" else _open_settlement(world)
    millennium = world.form("approver-1", subject, expires_at=NOW + timedelta(days=365 * 1000))
    with pytest.raises(DomainError) as err:
        world.service.record_approval(subject, millennium, "approver-1", NOW)
    assert err.value.code == "expiry_too_far" and err.value.http_status == 422
    assert [e.type for e in err.value.events] == ["ApprovalRefused"]
    assert err.value.events[0].data["code"] == "expiry_too_far"
    assert world.fresh(subject).approvals == ()
    # exactly the cap (7 days by default) is fine
    ok = world.form("approver-1", subject, expires_at=NOW + timedelta(days=7))
    assert world.service.record_approval(subject, ok, "approver-1", NOW).outcome == "waiting"


def test_the_expiry_cap_is_configurable(world: World) -> None:
    service = GovernanceService(world.approvals, world.approvers,
                                ThresholdPolicy(max_decision_validity=timedelta(hours=1)))
    up = service.open_upgrade(upgrade_id="cap-1", package_id="p", manifest_digest=DIGEST, impact="HIGH",
                              proposed_by="alice", now=NOW).subject
    with pytest.raises(DomainError) as err:
        service.record_approval(up, world.form("approver-1", up, expires_at=NOW + timedelta(hours=2)),
                                "approver-1", NOW)
    assert err.value.code == "expiry_too_far"
    assert service.record_approval(up, world.form("approver-1", up, expires_at=NOW + timedelta(minutes=59)),
                                   "approver-1", NOW).outcome == "waiting"


@pytest.mark.parametrize("kind", ["upgrade", "settlement"])
def test_every_refusal_is_exactly_one_approval_refused_with_its_reason(world: World, kind: str) -> None:
    subject = open_upgrade(world) if kind == "upgrade" else _open_settlement(world)
    first = world.form("approver-1", subject)
    world.service.record_approval(subject, first, "approver-1", NOW)
    outsider = ec.generate_private_key(ec.SECP256R1())
    cases: dict[str, tuple[str, dict[str, Any]]] = {
        "unknown_approver": ("mallory", sign_approval(outsider, approver_id="mallory", subject_id=subject.subject_id,
                                                     digest=subject.digest, decision="approve",
                                                     expires_at=NOW + timedelta(hours=1), kind=subject.kind)),
        "bad_signature": ("approver-2", world.form("approver-2", subject) | {"signature": first["signature"]}),
        "wrong_subject": ("approver-2", world.form("approver-2", subject, digest="00" * 32)),
        "expired": ("approver-2", world.form("approver-2", subject, expires_at=NOW - timedelta(seconds=1))),
        "expiry_too_far": ("approver-2", world.form("approver-2", subject, expires_at=NOW + timedelta(days=8))),
        "nonce_reused": ("approver-1", world.form("approver-1", subject, nonce=first["nonce"])),
        "duplicate_approver": ("approver-1", world.form("approver-1", subject)),
        "approver_mismatch": ("approver-3", world.form("approver-2", subject)),
        "invalid_input": ("approver-2", {"approverId": "approver-2", "decision": "approve"}),
    }
    for expected, (caller, form) in cases.items():
        with pytest.raises(DomainError) as err:
            world.service.record_approval(world.fresh(subject), form, caller, NOW)
        code = err.value.code
        assert code == expected or (expected == "nonce_reused" and code == "duplicate_approver"), (expected, code)
        assert [e.type for e in err.value.events] == ["ApprovalRefused"], expected
        data = err.value.events[0].data
        assert data["code"] == code and data["reason"] == err.value.message and data["kind"] == subject.kind
    # a signed form whose expiry was edited afterwards is a forgery (bad signature), audited once
    forged = world.form("approver-2", subject)
    forged["expiresAt"] = to_rfc3339(NOW + timedelta(minutes=30), "auto")
    with pytest.raises(DomainError) as err:
        world.service.record_approval(world.fresh(subject), forged, "approver-2", NOW)
    assert err.value.code == "bad_signature" and len(err.value.events) == 1
    assert len(world.fresh(subject).approvals) == 1


def test_a_replayed_nonce_on_another_subject_is_refused_and_audited(world: World) -> None:
    a, b = open_upgrade(world, "rep-a"), open_upgrade(world, "rep-b")
    form = world.form("approver-1", a)
    world.service.record_approval(a, form, "approver-1", NOW)
    replay = world.form("approver-1", b, nonce=form["nonce"])
    with pytest.raises(DomainError) as err:
        world.service.record_approval(b, replay, "approver-1", NOW)
    assert err.value.code == "nonce_reused"
    assert [e.type for e in err.value.events] == ["ApprovalRefused"]


def test_an_approval_on_a_closed_subject_is_audited(world: World) -> None:
    up = open_upgrade(world)
    for a in ("approver-1", "approver-2", "approver-3"):
        approve(world, up, a)
    with pytest.raises(DomainError) as err:
        approve(world, up, "approver-4")
    assert err.value.code == "conflict" and [e.type for e in err.value.events] == ["ApprovalRefused"]


def test_two_identical_refusals_are_two_distinct_audit_events(world: World) -> None:
    up = open_upgrade(world)
    form = world.form("approver-2", up, expires_at=NOW + timedelta(days=30))
    ids = set()
    for moment in (NOW, NOW + timedelta(seconds=1)):
        with pytest.raises(DomainError) as err:
            world.service.record_approval(world.fresh(up), form, "approver-2", moment)
        ids.add(err.value.events[0].event_id)
    assert len(ids) == 2


def test_a_decision_on_an_unknown_subject_is_refused_and_audited(world: World) -> None:
    up = open_upgrade(world)
    form = world.form("approver-1", up)
    with pytest.raises(DomainError) as err:
        world.service.decide("upgrade", "no-such-upgrade", form, "approver-1", NOW)
    assert err.value.code == "not_found" and err.value.http_status == 404
    assert [(e.type, e.subject) for e in err.value.events] == [("ApprovalRefused", "no-such-upgrade")]
    assert world.service.decide("upgrade", up.upgrade_id, form, "approver-1", NOW).outcome == "waiting"


class _GoneExecutions:
    """Step Functions after the waiting execution died (timed out, or a local cloud restart)."""

    def __init__(self) -> None:
        self.tried: list[str] = []

    def start(self, name: str, payload: dict[str, Any]) -> str:
        raise AssertionError("not started here")

    def resume(self, token: str, output: dict[str, Any]) -> None:
        from hallmark.ports import TokenNotWaiting

        self.tried.append(token)
        raise TokenNotWaiting("InvalidToken")

    def fail(self, token: str, error: str, cause: str) -> None:
        self.resume(token, {})


class _Audit:
    def __init__(self) -> None:
        self.types: list[str] = []

    def emit(self, *, chain: str, type: str, actor: str, subject: str, data: dict[str, Any],
             event_id: str | None = None) -> str:
        self.types.append(type)
        return event_id or str(len(self.types))


def test_a_decision_whose_execution_is_gone_is_a_409_execution_lost(world: World) -> None:
    from hallmark.governance.steps import GovernanceSteps

    upgrade = open_upgrade(world)
    approve(world, upgrade, "approver-1")
    approve(world, upgrade, "approver-2")
    third = approve(world, upgrade, "approver-3")
    executions, audit = _GoneExecutions(), _Audit()
    steps = GovernanceSteps(world.service, None, None, None, audit, None, executions,  # type: ignore[arg-type]
                            lambda: NOW)
    with pytest.raises(DomainError) as err:
        steps.settle(third)
    assert executions.tried == ["tok-1"]
    assert (err.value.code, err.value.http_status) == ("execution_lost", 409)
    assert err.value.details["subjectId"] == upgrade.subject_id and "submit the package again" in err.value.details[
        "action"]
    assert audit.types == ["ApprovalRecorded", "UpgradeApplied"]  # the decision itself is recorded
