"""Ceremonies: tiers, witnesses, blessing, climbing, lapse, provenance, deployment plans."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from hallmark._domain import Caller
from hallmark.ceremony import (
    ArtifactProvenance,
    Ceremony,
    CeremonyService,
    WitnessRegistry,
    ceremony_payload,
    plan_deployment,
    verify_attestation,
)
from hallmark.errors import DomainError
from hallmark.signing import b64encode, public_pem_of, sign_p256
from tests.fakes.ceremony import InMemoryCeremonyRepository, InMemoryWitnessRepository

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ROOT = Caller("root", frozenset({"superadmin"}))
WITNESSES = [f"w{i}" for i in range(1, 7)]


class TestSigner:
    """A ``Signer`` with a key generated at test time (KMS in production)."""

    __test__ = False

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())

    @property
    def key_id(self) -> str:
        return "test-proof-key"

    def sign(self, message: bytes) -> bytes:
        return sign_p256(self._key, message)

    def public_key_pem(self) -> bytes:
        return public_pem_of(self._key).encode()


@dataclass
class World:
    keys: dict[str, ec.EllipticCurvePrivateKey]
    repo: InMemoryCeremonyRepository
    service: CeremonyService
    signer: TestSigner

    def sig(self, witness: str, ceremony: Ceremony) -> str:
        return b64encode(sign_p256(self.keys[witness], ceremony_payload(ceremony)))

    def witness(self, ceremony: Ceremony, witness: str, now: datetime = NOW) -> Any:
        return self.service.add_witness(self.fresh(ceremony), witness, self.sig(witness, ceremony), now)

    def fresh(self, ceremony: Ceremony) -> Ceremony:
        return self.service.load(ceremony.ceremony_id)

    def seed(self, artifact: str, tier: Any) -> None:
        self.repo.set_artifact(ArtifactProvenance(artifact_id=artifact, tier=tier, ceremony_id="seed",
                                                  signature_id="seed", awarded_at=NOW))


@pytest.fixture()
def world() -> World:
    keys = {w: ec.generate_private_key(ec.SECP256R1()) for w in WITNESSES}
    registry = WitnessRegistry(InMemoryWitnessRepository())
    for w in WITNESSES:
        registry.register(ROOT, w, public_pem_of(keys[w]), NOW)
    repo = InMemoryCeremonyRepository()
    signer = TestSigner()
    return World(keys, repo, CeremonyService(repo, registry, signer), signer)


def start(world: World, tier: str, artifacts: list[str], initiator: str = "w1", **kw: Any) -> Ceremony:
    return world.service.initiate(initiator=initiator, tier=tier, ceremony_type="release", artifacts=artifacts,
                                  blessing="ship it", now=NOW, **kw).ceremony


ARTS = [f"art-{i}" for i in range(5)]


def test_bronze_success_is_the_initiator_alone(world: World) -> None:
    c = start(world, "bronze", ["art-0"])
    change = world.witness(c, "w1")
    assert change.ceremony.status == "Completed"
    assert [e.type for e in change.events] == ["WitnessAdded", "CeremonyCompleted", "TierAwarded"]
    record = change.ceremony.provenance.record
    assert record["witnesses"] == ["w1"] and record["tier"] == "bronze" and record["initiator"] == "w1"
    assert verify_attestation(change.ceremony.provenance, world.signer.public_key_pem())
    held = world.repo.artifact("art-0")
    assert held is not None and held.tier == "bronze"
    assert held.signature_id == change.ceremony.provenance.signature_id


def test_silver_success_needs_three_distinct_witnesses(world: World) -> None:
    for a in ARTS[:3]:
        world.seed(a, "bronze")
    c = start(world, "silver", list(reversed(ARTS[:3])))
    assert world.witness(c, "w1").ceremony.status == "Gathering"
    assert world.witness(c, "w3").ceremony.status == "Gathering"
    done = world.witness(c, "w2")
    assert done.ceremony.status == "Completed"
    record = done.ceremony.provenance.record
    assert record["witnesses"] == ["w1", "w2", "w3"]  # sorted
    assert record["artifacts"] == ARTS[:3]  # sorted
    assert [e.type for e in done.events].count("TierAwarded") == 3
    assert all(world.repo.artifact(a).tier == "silver" for a in ARTS[:3])  # type: ignore[union-attr]


def test_gold_needs_five_witnesses_and_a_superadmin_blessing(world: World) -> None:
    for a in ARTS:
        world.seed(a, "silver")
    c = start(world, "gold", ARTS)
    for w in WITNESSES[:5]:
        last = world.witness(c, w)
    assert last.ceremony.status == "Gathering"  # five witnesses but no blessing yet
    assert last.ceremony.is_complete() is False
    with pytest.raises(DomainError) as err:
        world.service.bless(world.fresh(c), Caller("w2", frozenset({"approver"})), NOW)
    assert err.value.code == "forbidden"
    with pytest.raises(DomainError) as err:
        world.service.bless(world.fresh(c), Caller("w1", frozenset({"superadmin"})), NOW)
    assert err.value.code == "self_blessing"
    blessed = world.service.bless(world.fresh(c), ROOT, NOW)
    assert blessed.ceremony.status == "Completed"
    assert [e.type for e in blessed.events][:2] == ["BlessingGiven", "CeremonyCompleted"]
    assert blessed.ceremony.provenance is not None
    assert blessed.ceremony.provenance.record["blessedBy"] == "root"
    assert all(world.repo.artifact(a).tier == "gold" for a in ARTS)  # type: ignore[union-attr]


def test_blessing_first_then_fifth_witness_completes(world: World) -> None:
    for a in ARTS:
        world.seed(a, "silver")
    c = start(world, "gold", ARTS)
    world.witness(c, "w1")
    world.service.bless(world.fresh(c), ROOT, NOW)
    for w in WITNESSES[1:4]:
        assert world.witness(c, w).ceremony.status == "Gathering"
    assert world.witness(c, "w5").ceremony.status == "Completed"


def test_too_few_witnesses_leaves_it_gathering_then_lapsed(world: World) -> None:
    for a in ARTS[:3]:
        world.seed(a, "bronze")
    c = start(world, "silver", ARTS[:3])
    world.witness(c, "w1")
    world.witness(c, "w2")
    assert world.fresh(c).status == "Gathering"
    assert world.service.lapse_if_due(world.fresh(c), NOW + timedelta(days=1)).events == []
    late = NOW + timedelta(days=7)
    with pytest.raises(DomainError) as err:
        world.witness(c, "w3", late)
    assert err.value.code == "lapsed"
    lapsed = world.service.lapse_if_due(world.fresh(c), late)
    assert lapsed.ceremony.status == "Lapsed" and [e.type for e in lapsed.events] == ["CeremonyLapsed"]
    assert world.repo.artifact("art-0").tier == "bronze"  # type: ignore[union-attr]
    with pytest.raises(DomainError) as err:
        world.witness(c, "w3", NOW)
    assert err.value.code == "lapsed"


def test_too_few_artifacts(world: World) -> None:
    world.seed("art-0", "bronze")
    with pytest.raises(DomainError) as err:
        start(world, "silver", ["art-0"])
    assert err.value.code == "too_few_artifacts"


def test_duplicate_witness_refused_without_change(world: World) -> None:
    for a in ARTS[:3]:
        world.seed(a, "bronze")
    c = start(world, "silver", ARTS[:3])
    world.witness(c, "w1")
    before = world.fresh(c)
    with pytest.raises(DomainError) as err:
        world.witness(c, "w1")
    assert err.value.code == "duplicate_witness"
    assert world.fresh(c) == before


def test_forged_witness_signature(world: World) -> None:
    for a in ARTS[:3]:
        world.seed(a, "bronze")
    c = start(world, "silver", ARTS[:3])
    world.witness(c, "w1")
    before = world.fresh(c)
    forged = b64encode(sign_p256(ec.generate_private_key(ec.SECP256R1()), ceremony_payload(c)))
    other = start(world, "bronze", ["art-x"], ceremony_id="cer-other")
    for bad in (forged, world.sig("w2", other), "!!notbase64", world.sig("w3", c)):
        with pytest.raises(DomainError) as err:
            world.service.add_witness(world.fresh(c), "w2", bad, NOW)
        assert err.value.code == "bad_signature"
    assert world.fresh(c) == before


def test_initiator_is_the_first_witness(world: World) -> None:
    c = start(world, "bronze", ["art-0"])
    with pytest.raises(DomainError) as err:
        world.witness(c, "w2")
    assert err.value.code == "initiator_first"
    with pytest.raises(DomainError) as err:
        start(world, "bronze", ["art-1"], initiator="stranger")
    assert err.value.code == "unknown_witness"
    with pytest.raises(DomainError) as err:
        world.service.add_witness(world.fresh(c), "w1", world.sig("w1", c), NOW, caller_sub="w2")
    assert err.value.code == "witness_mismatch"


@pytest.mark.parametrize(
    ("held", "target", "code"),
    [(None, "silver", "tier_skip"), (None, "gold", "tier_skip"), ("bronze", "gold", "tier_skip"),
     ("bronze", "bronze", "tier_held"), ("gold", "silver", "tier_held")],
)
def test_tiers_climb_one_at_a_time(world: World, held: Any, target: str, code: str) -> None:
    if held:
        for a in ARTS:
            world.seed(a, held)
    artifacts = ARTS if target == "gold" else ARTS[:3]
    with pytest.raises(DomainError) as err:
        start(world, target, artifacts)
    assert err.value.code == code


def test_each_artifact_tier_is_checked(world: World) -> None:
    world.seed("art-0", "bronze")
    world.seed("art-1", "bronze")
    with pytest.raises(DomainError) as err:  # art-2 has no tier yet
        start(world, "silver", ARTS[:3])
    assert err.value.code == "tier_skip" and err.value.details["artifactId"] == "art-2"


def test_invalid_enums(world: World) -> None:
    with pytest.raises(DomainError) as err:
        start(world, "platinum", ["art-0"])
    assert (err.value.code, err.value.http_status) == ("invalid_tier", 400)
    with pytest.raises(DomainError) as err:
        world.service.initiate(initiator="w1", tier="bronze", ceremony_type="party", artifacts=["a"],
                               blessing="x", now=NOW)
    assert err.value.code == "invalid_input"


def test_concurrent_award_conflict_leaves_tiers_untouched(world: World) -> None:
    a = start(world, "bronze", ["art-0"], ceremony_id="cer-a")
    b = start(world, "bronze", ["art-0"], ceremony_id="cer-b")
    world.witness(a, "w1")
    with pytest.raises(DomainError) as err:
        world.witness(b, "w1")
    assert err.value.code == "conflict"
    assert world.fresh(b).status == "Gathering"
    assert world.repo.artifact("art-0").ceremony_id == "cer-a"  # type: ignore[union-attr]


# ----------------------------------------------------------------------------- deployment


def test_deployment_refused_without_verified_provenance() -> None:
    with pytest.raises(DomainError) as err:
        plan_deployment("art-0", "production", False, "gold")
    assert (err.value.code, err.value.http_status) == ("provenance_unverified", 403)
    assert [e.type for e in err.value.events] == ["DeploymentRefused"]


@pytest.mark.parametrize(
    ("tier", "env", "vcpu", "mem", "disk", "logs", "metrics"),
    [
        ("bronze", "development", "0.5", 512, 1, 7, 1),
        ("bronze", "production", "1", 1024, 2, 7, 1),
        ("silver", "staging", "1", 1024, 5, 30, 7),
        ("silver", "production", "2", 2048, 10, 30, 7),
        ("gold", "development", "2", 2048, 10, 90, 30),
        ("gold", "production", "4", 4096, 20, 90, 30),
    ],
)
def test_profiles_double_in_production(tier: str, env: str, vcpu: str, mem: int, disk: int, logs: int,
                                       metrics: int) -> None:
    planned = plan_deployment("art-0", env, True, tier, signature_id="sig-1", witnesses=["b", "a"])
    plan = planned.plan
    assert (plan.resources.vcpu, plan.resources.memory_mib, plan.resources.storage_gib) == (vcpu, mem, disk)
    assert (plan.monitoring.log_retention_days, plan.monitoring.metric_retention_days) == (logs, metrics)
    assert plan.annotations["hallmark.io/provenance-signature"] == "sig-1"
    assert plan.annotations["hallmark.io/witnesses"] == "a,b"
    assert [e.type for e in planned.events] == ["DeploymentPlanned"]


def test_service_plans_only_what_verifies(world: World) -> None:
    c = start(world, "bronze", ["art-0"])
    world.witness(c, "w1")
    planned = world.service.plan_deployment("art-0", "production")
    assert planned.plan.tier == "bronze" and planned.plan.resources.cpu_millis == 1000
    with pytest.raises(DomainError) as err:  # never awarded
        world.service.plan_deployment("art-unknown", "staging")
    assert err.value.code == "provenance_unverified"
    # tamper with the stored record: the signature no longer verifies
    stored = world.fresh(c)
    assert stored.provenance is not None
    bad = stored.provenance.model_copy(update={"record": {**stored.provenance.record, "tier": "gold"}})
    assert not verify_attestation(bad, world.signer.public_key_pem())
    world.repo._ceremonies[c.ceremony_id] = stored.model_copy(update={"provenance": bad})
    with pytest.raises(DomainError) as err:
        world.service.plan_deployment("art-0", "staging")
    assert err.value.code == "provenance_unverified"
