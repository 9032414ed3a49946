"""The DynamoDB ceremony and witness repositories on moto, and the staged ceremony (the steps
the state machine runs) on both them and the in-memory fakes: the same contract for both.

Covered: conditional writes (create once, versioned saves, tier conditions on awards, one
transaction or nothing), the task-token handshake (claimed once, in either order), the
provenance stored once and joined back, DSSE envelopes an independent implementation
accepts, and deployment verification refusing tampered or unverifiable provenance.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from moto import mock_aws
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey

from hallmark._domain import Caller
from hallmark.adapters.dynamo_ceremony import DynamoCeremonyRepository, DynamoWitnessRepository
from hallmark.adapters.kms_signer import KmsSigner
from hallmark.ceremony import (
    PROVENANCE_PAYLOAD_TYPE,
    ArtifactProvenance,
    Ceremony,
    CeremonyService,
    TierAward,
    Witness,
    WitnessRegistry,
    attestation_failure,
    ceremony_payload,
)
from hallmark.errors import DomainError
from hallmark.signing import b64encode, load_public_key, public_pem_of, sign_p256
from tests.fakes.ceremony import InMemoryCeremonyRepository, InMemoryWitnessRepository
from tests.fakes.signing import LocalSigner

REGION = "us-east-1"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ROOT = Caller("root", frozenset({"superadmin"}))
WITNESSES = [f"w{i}" for i in range(1, 7)]


@pytest.fixture()
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture()
def table(aws: None) -> Any:
    ddb = boto3.resource("dynamodb", region_name=REGION)
    return ddb.create_table(
        TableName="hallmark-state",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


@pytest.fixture()
def kms_signer(aws: None) -> KmsSigner:
    kms = boto3.client("kms", region_name=REGION)
    key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    return KmsSigner(kms, key)


@dataclass
class World:
    repo: Any
    service: CeremonyService
    signer: Any
    keys: dict[str, ec.EllipticCurvePrivateKey]
    dynamo: bool

    def sig(self, witness: str, ceremony: Ceremony, key_of: str | None = None) -> str:
        return b64encode(sign_p256(self.keys[key_of or witness], ceremony_payload(ceremony)))

    def witness(self, ceremony_id: str, witness: str, now: datetime = NOW) -> Any:
        return self.service.retrying(ceremony_id, lambda c: self.service.add_witness(c, witness, self.sig(witness, c),
                                                                                      now))

    def open(self, tier: str, artifacts: list[str], initiator: str = "w1", **kw: Any) -> Ceremony:
        return self.service.initiate(initiator=initiator, tier=tier, ceremony_type="release", artifacts=artifacts,
                                     blessing="ship it", now=NOW, **kw).ceremony

    def complete(self, ceremony_id: str) -> Ceremony:
        signed = self.service.retrying(ceremony_id, lambda c: self.service.sign_provenance(c, NOW))
        assert signed.ceremony.status == "Signed"
        done = self.service.retrying(ceremony_id, lambda c: self.service.award_tiers(c, NOW))
        assert done.ceremony.status == "Completed"
        return done.ceremony


def _seed(repo: Any, artifact: str, tier: Any) -> None:
    record = ArtifactProvenance(artifact_id=artifact, tier=tier, ceremony_id="seed", signature_id="seed",
                                awarded_at=NOW)
    if isinstance(repo, InMemoryCeremonyRepository):
        repo.set_artifact(record)
    else:
        repo.table.put_item(Item={"pk": f"artifact-tier#{artifact}", "sk": "DOC", "kind": "artifact", "tier": tier,
                                  "version": 1, "doc": json.dumps(record.to_json_dict())})


def _world(repo: Any, witness_repo: Any, signer: Any, dynamo: bool) -> World:
    keys = {w: ec.generate_private_key(ec.SECP256R1()) for w in WITNESSES}
    registry = WitnessRegistry(witness_repo)
    for w in WITNESSES:
        registry.register(ROOT, w, public_pem_of(keys[w]), NOW)
    service = CeremonyService(repo, registry, signer, staged=True, payload_type=PROVENANCE_PAYLOAD_TYPE)
    return World(repo, service, signer, keys, dynamo)


@pytest.fixture(params=["memory", "dynamo"])
def world(request: pytest.FixtureRequest) -> World:
    if request.param == "memory":
        return _world(InMemoryCeremonyRepository(), InMemoryWitnessRepository(), LocalSigner.generate(), False)
    table = request.getfixturevalue("table")
    signer = request.getfixturevalue("kms_signer")
    return _world(DynamoCeremonyRepository(table), DynamoWitnessRepository(table), signer, True)


@pytest.fixture()
def dynamo(table: Any, kms_signer: KmsSigner) -> World:
    return _world(DynamoCeremonyRepository(table), DynamoWitnessRepository(table), kms_signer, True)


# ----------------------------------------------------------------------------- witnesses


def test_witness_repository_conditional_writes(table: Any) -> None:
    repo = DynamoWitnessRepository(table)
    pem = public_pem_of(ec.generate_private_key(ec.SECP256R1()))
    witness = Witness(witness_id="w1", public_key_pem=pem, key_fingerprint="f", registered_at=NOW)
    repo.put(witness, expected_version=None)
    assert repo.get("w1") == witness and repo.get("nobody") is None
    with pytest.raises(DomainError) as err:
        repo.put(witness, expected_version=None)
    assert err.value.code == "conflict"
    removed = witness.model_copy(update={"active": False, "version": 2})
    with pytest.raises(DomainError):
        repo.put(removed, expected_version=5)
    repo.put(removed, expected_version=1)
    assert repo.get("w1") == removed
    item = table.get_item(Key={"pk": "witness#w1", "sk": "DOC"})["Item"]
    assert "PRIVATE" not in item["doc"] and item["version"] == 2


# ----------------------------------------------------------------------------- staged ceremony


def test_staged_bronze_witnessed_signed_completed(world: World) -> None:
    c = world.open("bronze", ["art-0"])
    assert world.repo.get(c.ceremony_id) == c
    witnessed = world.witness(c.ceremony_id, "w1")
    assert witnessed.ceremony.status == "Witnessed" and witnessed.ceremony.provenance is None
    assert [e.type for e in witnessed.events] == ["WitnessAdded"]  # completion is the state machine's
    assert world.repo.artifact("art-0") is None

    signed = world.service.retrying(c.ceremony_id, lambda x: world.service.sign_provenance(x, NOW))
    attestation = signed.ceremony.provenance
    assert attestation is not None and attestation.payload_type == PROVENANCE_PAYLOAD_TYPE
    assert [e.type for e in signed.events] == ["CeremonyCompleted"]
    assert world.repo.provenance(attestation.signature_id) == attestation
    assert world.repo.get(c.ceremony_id) == signed.ceremony
    again = world.service.sign_provenance(world.repo.get(c.ceremony_id), NOW + timedelta(minutes=1))
    assert again.ceremony == signed.ceremony and again.events == signed.events  # idempotent, same event id

    done = world.service.retrying(c.ceremony_id, lambda x: world.service.award_tiers(x, NOW))
    assert done.ceremony.status == "Completed" and done.ceremony.awarded == ("art-0",)
    assert [e.type for e in done.events] == ["TierAwarded"]
    held = world.repo.artifact("art-0")
    assert held is not None and (held.tier, held.signature_id) == ("bronze", attestation.signature_id)
    assert world.service.award_tiers(world.repo.get(c.ceremony_id), NOW).events == done.events

    # the envelope is plain DSSE: securesystemslib accepts it with the signer's public key alone
    envelope = attestation.envelope
    assert envelope is not None
    key = SSlibKey.from_crypto(load_public_key(world.signer.public_key_pem()), keyid=attestation.key_id)
    Envelope.from_dict(json.loads(json.dumps(envelope))).verify([key], 1)
    plan = world.service.plan_deployment("art-0", "production", deployment_id="dep-1").plan
    assert plan.annotations["hallmark.io/provenance-signature"] == attestation.signature_id


def test_gold_waits_for_the_blessing(world: World) -> None:
    arts = [f"g{i}" for i in range(5)]
    for a in arts:
        _seed(world.repo, a, "silver")
    c = world.open("gold", arts)
    for w in WITNESSES[:5]:
        last = world.witness(c.ceremony_id, w)
    assert last.ceremony.status == "Gathering"
    blessed = world.service.retrying(c.ceremony_id, lambda x: world.service.bless(x, ROOT, NOW))
    assert blessed.ceremony.status == "Witnessed"
    with pytest.raises(DomainError) as err:
        world.service.bless(world.repo.get(c.ceremony_id), Caller("root2", frozenset({"superadmin"})), NOW)
    assert err.value.code == "ceremony_closed"
    assert world.complete(c.ceremony_id).provenance.record["blessedBy"] == "root"  # type: ignore[union-attr]
    assert {world.repo.artifact(a).tier for a in arts} == {"gold"}  # type: ignore[union-attr]


def test_a_concurrent_witness_is_retried_not_lost(world: World) -> None:
    for a in ("a", "b", "c"):
        _seed(world.repo, a, "bronze")
    c = world.open("silver", ["a", "b", "c"])
    world.witness(c.ceremony_id, "w1")
    stale = world.repo.get(c.ceremony_id)
    world.witness(c.ceremony_id, "w2")
    with pytest.raises(DomainError) as err:  # the stale copy loses the race ...
        world.service.add_witness(stale, "w3", world.sig("w3", stale), NOW)
    assert err.value.code == "conflict"
    done = world.witness(c.ceremony_id, "w3")  # ... and a retry (reload) lands
    assert done.ceremony.witness_ids == ("w1", "w2", "w3") and done.ceremony.status == "Witnessed"


def test_mark_lapsed_only_lapses_a_gathering_ceremony(world: World) -> None:
    gathering = world.open("bronze", ["x"], deadline=NOW + timedelta(seconds=2))
    lapsed = world.service.retrying(gathering.ceremony_id, lambda c: world.service.mark_lapsed(c, NOW))
    assert lapsed.ceremony.status == "Lapsed" and [e.type for e in lapsed.events] == ["CeremonyLapsed"]
    assert world.service.mark_lapsed(world.repo.get(gathering.ceremony_id), NOW).events == lapsed.events
    witnessed = world.open("bronze", ["y"])
    world.witness(witnessed.ceremony_id, "w1")
    kept = world.service.mark_lapsed(world.repo.get(witnessed.ceremony_id), NOW + timedelta(days=8))
    assert kept.ceremony.status == "Witnessed" and kept.events == []


def test_award_skips_an_artifact_raised_meanwhile(world: World) -> None:
    first = world.open("bronze", ["shared"], ceremony_id="cer-first")
    second = world.open("bronze", ["shared"], ceremony_id="cer-second")
    for c in (first, second):
        world.witness(c.ceremony_id, "w1")
    world.complete(first.ceremony_id)
    late = world.complete(second.ceremony_id)
    assert late.awarded == ()  # the artifact already holds bronze from the first ceremony
    assert world.repo.artifact("shared").ceremony_id == "cer-first"  # type: ignore[union-attr]
    with pytest.raises(DomainError) as err:
        world.service.sign_provenance(world.open("bronze", ["z"]), NOW)
    assert err.value.code == "invalid_transition"


# ----------------------------------------------------------------------------- task tokens


@pytest.mark.parametrize("token_first", [True, False])
def test_task_token_is_claimed_once_in_either_order(world: World, token_first: bool) -> None:
    c = world.open("bronze", ["t"])
    if token_first:
        world.repo.attach_task_token(c.ceremony_id, "token-1")
        assert world.repo.claim_task_token(c.ceremony_id) is None  # still gathering
        world.witness(c.ceremony_id, "w1")  # a versioned save keeps the token
    else:
        world.witness(c.ceremony_id, "w1")
        assert world.repo.claim_task_token(c.ceremony_id) is None  # no token yet
        world.repo.attach_task_token(c.ceremony_id, "token-1")
    assert world.repo.claim_task_token(c.ceremony_id) == "token-1"
    assert world.repo.claim_task_token(c.ceremony_id) is None
    world.repo.release_task_token(c.ceremony_id)
    assert world.repo.claim_task_token(c.ceremony_id) == "token-1"
    with pytest.raises(DomainError) as err:
        world.repo.attach_task_token("cer-missing", "t")
    assert err.value.code == "not_found"


# ----------------------------------------------------------------------------- DynamoDB specifics


def test_provenance_is_stored_once_and_joined_back(dynamo: World, table: Any) -> None:
    c = dynamo.open("bronze", ["p"])
    dynamo.witness(c.ceremony_id, "w1")
    done = dynamo.complete(c.ceremony_id)
    assert done.provenance is not None
    item = table.get_item(Key={"pk": f"ceremony#{c.ceremony_id}", "sk": "DOC"})["Item"]
    assert "provenance" not in json.loads(item["doc"])
    assert item["signatureId"] == done.provenance.signature_id and item["status"] == "Completed"
    prov = table.get_item(Key={"pk": f"provenance#{done.provenance.signature_id}", "sk": "DOC"})["Item"]
    assert prov["ceremonyId"] == c.ceremony_id
    assert json.loads(prov["doc"])["envelope"]["payloadType"] == PROVENANCE_PAYLOAD_TYPE
    assert dynamo.repo.get(c.ceremony_id) == done


def test_a_failed_condition_writes_nothing(dynamo: World) -> None:
    c = dynamo.open("bronze", ["q"])
    dynamo.witness(c.ceremony_id, "w1")
    signed = dynamo.service.sign_provenance(dynamo.repo.get(c.ceremony_id), NOW).ceremony
    _seed(dynamo.repo, "q", "bronze")  # someone raised the artifact between our read and our write
    assert signed.provenance is not None
    done = signed.model_copy(update={"status": "Completed", "version": signed.version + 1})
    award = TierAward(None, ArtifactProvenance(artifact_id="q", tier="bronze", ceremony_id=c.ceremony_id,
                                               signature_id=signed.provenance.signature_id, awarded_at=NOW))
    with pytest.raises(DomainError) as err:
        dynamo.repo.save(done, expected_version=signed.version, awards=[award])
    assert err.value.code == "conflict" and err.value.details == {"artifacts": ["q"]}
    assert dynamo.repo.get(c.ceremony_id) == signed  # the ceremony did not move either
    with pytest.raises(DomainError) as err:
        dynamo.repo.save(done, expected_version=signed.version - 1)
    assert err.value.code == "conflict"
    with pytest.raises(DomainError) as err:
        dynamo.repo.create(c)
    assert err.value.code == "conflict"
    with pytest.raises(DomainError) as err:
        dynamo.repo.save(done.model_copy(update={"ceremony_id": "cer-ghost"}), expected_version=1)
    assert err.value.code == "not_found"


def _tamper(table: Any, signature_id: str, change: Any) -> None:
    key = {"pk": f"provenance#{signature_id}", "sk": "DOC"}
    doc = json.loads(table.get_item(Key=key)["Item"]["doc"])
    change(doc)
    table.update_item(Key=key, UpdateExpression="SET doc = :d", ExpressionAttributeValues={":d": json.dumps(doc)})


@pytest.mark.parametrize(("change", "reason"), [
    (lambda d: d["record"].update(tier="gold"), "record_mismatch"),
    (lambda d: d["record"]["witnesses"].append("mallory"), "record_mismatch"),
    (lambda d: d["envelope"].update(payload=d["envelope"]["payload"][:-8] + "AAAAAAA="), "envelope_invalid"),
    (lambda d: d["envelope"]["signatures"][0].update(sig=d["envelope"]["signatures"][0]["sig"][::-1]),
     "envelope_invalid"),
    (lambda d: d.update(envelope=None), "envelope_invalid"),
    (lambda d: d.update(signatureId="provenance-bronze-" + "0" * 64), "signature_mismatch"),
])
def test_deployment_refused_for_tampered_provenance(dynamo: World, table: Any, change: Any, reason: str) -> None:
    c = dynamo.open("bronze", ["d"])
    dynamo.witness(c.ceremony_id, "w1")
    done = dynamo.complete(c.ceremony_id)
    assert done.provenance is not None
    dynamo.service.plan_deployment("d", "staging")
    _tamper(table, done.provenance.signature_id, change)
    with pytest.raises(DomainError) as err:
        dynamo.service.plan_deployment("d", "staging", actor="sam", deployment_id="dep-9")
    assert (err.value.code, err.value.http_status, err.value.details["reason"]) == (
        "provenance_unverified", 403, reason)
    assert [(e.type, e.data["detail"], e.data["deploymentId"]) for e in err.value.events] == [
        ("DeploymentRefused", reason, "dep-9")]


def test_deployment_refused_when_unverifiable(dynamo: World, table: Any) -> None:
    with pytest.raises(DomainError) as err:
        dynamo.service.plan_deployment("never-witnessed", "production")
    assert err.value.details["reason"] == "no_provenance"
    c = dynamo.open("bronze", ["e"])
    dynamo.witness(c.ceremony_id, "w1")
    done = dynamo.complete(c.ceremony_id)
    assert done.provenance is not None
    table.delete_item(Key={"pk": f"provenance#{done.provenance.signature_id}", "sk": "DOC"})
    with pytest.raises(DomainError) as err:
        dynamo.service.plan_deployment("e", "production")
    assert err.value.details["reason"] == "provenance_missing"
    # a provenance signed by any other key does not verify under the proof key
    other = CeremonyService(InMemoryCeremonyRepository(), WitnessRegistry(InMemoryWitnessRepository()),
                            LocalSigner.generate(), payload_type=PROVENANCE_PAYLOAD_TYPE)
    assert other.verify(done.provenance) is False
    assert attestation_failure(done.provenance, dynamo.signer.public_key_pem()) is None
