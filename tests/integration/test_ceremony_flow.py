"""Ceremonies on the local cloud, running the real statemachines/ceremony.asl.json: each tier's
success, too few witnesses, a duplicate witness, a forged witness signature, gold without a
blessing, a skipped tier, a lapsed deadline; provenance-aware deployment, refused for an
unverifiable or tampered provenance. Witness keys are generated here; only public keys are
registered."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hallmark.ceremony import PROVENANCE_PAYLOAD_TYPE
from hallmark.dsse import sign_envelope
from hallmark_tools.driver import Driver
from hallmark_tools.export import export_keys
from hallmark_tools.localcloud.cloud import LocalCloud
from hallmark_tools.scenarios.ceremony import Witnesses, tamper_provenance
from tests.fakes.signing import LocalSigner

WITNESS_IDS = [f"wit-{i}" for i in range(1, 7)]
SHORT_DEADLINE_S = 6  # generous: two witness calls must land before it on a loaded 2-core machine


# ----------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def witnesses(driver: Driver) -> Witnesses:
    return Witnesses(driver, WITNESS_IDS)


class Pool:
    """Artifacts already holding a tier, handed out a few at a time (keeps the module fast)."""

    def __init__(self, artifacts: list[str]) -> None:
        self.free = list(artifacts)

    def take(self, n: int) -> list[str]:
        taken, self.free = self.free[:n], self.free[n:]
        assert len(taken) == n, "the pool ran dry: make it bigger"
        return taken


def _names(prefix: str, n: int) -> list[str]:
    suffix = uuid.uuid4().hex[:6]
    return [f"{prefix}-{i}-{suffix}" for i in range(n)]


@pytest.fixture(scope="module")
def bronze(witnesses: Witnesses) -> Pool:
    artifacts = _names("bronze", 24)
    assert witnesses.run("bronze", artifacts, ["wit-6"])["status"] == "Completed"
    return Pool(artifacts)


@pytest.fixture(scope="module")
def silver(witnesses: Witnesses, bronze: Pool) -> Pool:
    artifacts = bronze.take(10)
    assert witnesses.run("silver", artifacts, ["wit-4", "wit-5", "wit-6"])["status"] == "Completed"
    return Pool(artifacts)


def _states(cloud: LocalCloud, arn: str) -> list[str]:
    events = cloud.client("stepfunctions").get_execution_history(executionArn=arn)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


def _execution(cloud: LocalCloud, ceremony_id: str) -> str:
    return str(cloud.arns[("state_machine", "ceremony")]).replace(":stateMachine:", ":execution:") + f":{ceremony_id}"


def _status(cloud: LocalCloud, ceremony_id: str) -> str:
    desc = cloud.client("stepfunctions").describe_execution(executionArn=_execution(cloud, ceremony_id))
    return str(desc["status"])


def _audit(cloud: LocalCloud, *subjects: str) -> list[tuple[str, str, dict[str, Any]]]:
    """The ceremony chain's events of ``subjects``, read with the privacy vault (the chain names
    witnesses by pseudonym: docs/privacy.md)."""
    from hallmark.adapters import runtime
    from hallmark.adapters.runtime import audit_log
    from hallmark.privacy.names import named, names_of

    cloud.wait_idle()
    events = [e.to_wire() for e in audit_log().store.events("ceremony")]
    names = names_of(runtime.subjects(), events)
    return [(e["type"], e["subject"], dict(e["data"])) for e in (named(ev, names) for ev in events)
            if e["subject"] in subjects]


def _tier(driver: Driver, artifact: str) -> str | None:
    resp = driver.call("GET", f"/artifacts/{artifact}", "auditor")
    return str(resp.json()["tier"]) if resp.status == 200 else None


def _error(resp: Any) -> tuple[int, str]:
    return resp.status, resp.json()["error"]["code"]


# ----------------------------------------------------------------------------- successes


def test_bronze_success_signs_a_dsse_provenance_anyone_can_verify(shared_cloud: LocalCloud, driver: Driver,
                                                                   witnesses: Witnesses, tmp_path: Path) -> None:
    artifact = _names("solo", 1)[0]
    opened = witnesses.open("wit-1", "bronze", [artifact], blessing="first light")
    assert opened.status == 201, opened.body
    ceremony = opened.json()
    assert ceremony["status"] == "Gathering" and ceremony["requiredWitnesses"] == 1
    assert ceremony["executionArn"] == _execution(shared_cloud, ceremony["ceremonyId"])
    assert witnesses.witness("wit-1", ceremony).status == 201
    done = witnesses.wait(ceremony["ceremonyId"])
    assert done["status"] == "Completed" and done["awarded"] == [artifact]
    assert shared_cloud.wait_execution(ceremony["executionArn"])["status"] == "SUCCEEDED"
    assert _states(shared_cloud, ceremony["executionArn"]) == [
        "Wait for witnesses", "Sign provenance", "Award tiers", "Completed"]

    held = driver.ok("GET", f"/artifacts/{artifact}", "auditor")
    assert held["tier"] == "bronze" and held["ceremonyId"] == ceremony["ceremonyId"]
    assert held["verification"] == {"verified": True, "reason": None}
    prov = driver.ok("GET", f"/provenance/{held['signatureId']}", "auditor")
    record, envelope = prov["record"], prov["envelope"]
    assert {k: record[k] for k in ("initiator", "tier", "witnesses", "artifacts", "blessing")} == {
        "initiator": "wit-1", "tier": "bronze", "witnesses": ["wit-1"], "artifacts": [artifact],
        "blessing": "first light"}
    assert record["timestamp"] == ceremony["createdAt"]
    assert prov["verification"]["verified"] and envelope["payloadType"] == PROVENANCE_PAYLOAD_TYPE

    # An independent verifier: the exported proof public key, DSSE PAE by hand, cryptography.
    pem = export_keys(tmp_path, shared_cloud.client("kms"))["proof"].read_bytes()
    assert pem.decode() == prov["verification"]["publicKeyPem"]
    payload = base64.b64decode(envelope["payload"])
    assert payload == rfc8785.dumps(record)
    ptype = envelope["payloadType"].encode()
    pae = b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(payload), payload)
    key = serialization.load_pem_public_key(pem)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(base64.b64decode(envelope["signatures"][0]["sig"]), pae, ec.ECDSA(hashes.SHA256()))
    assert held["signatureId"] == f"provenance-bronze-{hashlib.sha256(pae).hexdigest()}"
    with pytest.raises(InvalidSignature):
        key.verify(base64.b64decode(envelope["signatures"][0]["sig"]), pae.replace(b"bronze", b"silver"),
                   ec.ECDSA(hashes.SHA256()))

    assert [t for t, _s, _d in _audit(shared_cloud, ceremony["ceremonyId"], artifact)] == [
        "CeremonyInitiated", "WitnessAdded", "CeremonyCompleted", "TierAwarded"]


def test_silver_success_needs_three_distinct_witnesses(shared_cloud: LocalCloud, driver: Driver,
                                                       witnesses: Witnesses, bronze: Pool) -> None:
    artifacts = bronze.take(3)
    opened = witnesses.open("wit-2", "silver", list(reversed(artifacts)), kind="milestone")
    assert opened.status == 201, opened.body
    ceremony = opened.json()
    for w in ("wit-2", "wit-5"):
        resp = witnesses.witness(w, ceremony)
        assert resp.status == 201 and resp.json()["ceremony"]["status"] == "Gathering"
    assert _status(shared_cloud, ceremony["ceremonyId"]) == "RUNNING"
    assert {_tier(driver, a) for a in artifacts} == {"bronze"}
    last = witnesses.witness("wit-1", ceremony)
    assert last.status == 201 and last.json()["ceremony"]["status"] in ("Witnessed", "Signed", "Completed")
    done = witnesses.wait(ceremony["ceremonyId"])
    record = done["provenance"]["record"]
    assert record["witnesses"] == ["wit-1", "wit-2", "wit-5"]  # sorted
    assert record["artifacts"] == sorted(artifacts)
    assert {_tier(driver, a) for a in artifacts} == {"silver"}
    assert shared_cloud.wait_execution(ceremony["executionArn"])["status"] == "SUCCEEDED"
    events = _audit(shared_cloud, ceremony["ceremonyId"], *artifacts)
    assert [t for t, _s, _d in events].count("WitnessAdded") == 3
    assert sorted(s for t, s, d in events if t == "TierAwarded" and d["ceremonyId"] == ceremony["ceremonyId"]) \
        == sorted(artifacts)


def test_gold_success_needs_five_witnesses_and_a_superadmin_blessing(shared_cloud: LocalCloud, driver: Driver,
                                                                     witnesses: Witnesses, silver: Pool) -> None:
    artifacts = silver.take(5)
    ceremony = witnesses.open("wit-1", "gold", artifacts, kind="collaboration").json()
    assert ceremony["requiresBlessing"] is True
    for w in WITNESS_IDS[:4]:
        assert witnesses.witness(w, ceremony).status == 201
    blessed = driver.call("POST", f"/ceremonies/{ceremony['ceremonyId']}/blessing", "superadmin")
    assert blessed.status == 201 and blessed.json()["ceremony"]["status"] == "Gathering"
    assert witnesses.witness("wit-5", ceremony).status == 201
    done = witnesses.wait(ceremony["ceremonyId"])
    assert done["status"] == "Completed"
    assert done["provenance"]["record"]["blessedBy"] == "root-admin"
    assert done["provenance"]["record"]["witnesses"] == WITNESS_IDS[:5]
    assert {_tier(driver, a) for a in artifacts} == {"gold"}
    plan = driver.ok("POST", "/deployment-plans", "submitter", {"artifactId": artifacts[0], "environment": "production"})
    assert (plan["resources"]["vcpu"], plan["resources"]["memoryMib"], plan["resources"]["storageGib"]) == ("4", 4096, 20)
    assert (plan["monitoring"]["logRetentionDays"], plan["monitoring"]["metricRetentionDays"]) == (90, 30)
    types = [t for t, _s, _d in _audit(shared_cloud, ceremony["ceremonyId"])]
    assert types == ["CeremonyInitiated", *["WitnessAdded"] * 4, "BlessingGiven", "WitnessAdded",
                     "CeremonyCompleted"]


# ----------------------------------------------------------------------------- refusals


def test_requirements_are_checked_at_initiation(shared_cloud: LocalCloud, driver: Driver,
                                                witnesses: Witnesses, bronze: Pool, silver: Pool) -> None:
    before = len(shared_cloud.executions("ceremony"))
    fresh = _names("fresh", 5)
    assert _error(witnesses.open("wit-1", "silver", bronze.free[:2])) == (422, "too_few_artifacts")
    assert _error(witnesses.open("wit-1", "gold", silver.free[:4])) == (422, "too_few_artifacts")
    assert _error(witnesses.open("wit-1", "platinum", fresh[:1])) == (400, "invalid_request")
    resp = driver.call("POST", "/ceremonies", body={"tier": "bronze", "type": "party", "artifacts": fresh[:1],
                                                    "blessing": "x"}, token=witnesses.token("wit-1"))
    assert _error(resp) == (400, "invalid_request")
    resp = driver.call("POST", "/ceremonies", body={"tier": "bronze", "type": "release", "artifacts": fresh[:1],
                                                    "blessing": "x"}, token=shared_cloud.token("submitter", "mallory"))
    assert _error(resp) == (403, "unknown_witness")
    assert driver.call("POST", "/ceremonies", body={"tier": "bronze"}).status == 401
    assert len(shared_cloud.executions("ceremony")) == before  # nothing was opened


def test_skipping_a_tier_is_refused(shared_cloud: LocalCloud, witnesses: Witnesses, bronze: Pool) -> None:
    before = len(shared_cloud.executions("ceremony"))
    fresh = _names("fresh", 5)
    resp = witnesses.open("wit-1", "silver", fresh[:3])
    assert _error(resp) == (409, "tier_skip") and resp.json()["error"]["details"]["requires"] == "bronze"
    assert _error(witnesses.open("wit-1", "gold", fresh)) == (409, "tier_skip")
    assert _error(witnesses.open("wit-1", "gold", bronze.free[:5])) == (409, "tier_skip")
    assert _error(witnesses.open("wit-1", "bronze", bronze.free[:1])) == (409, "tier_held")
    assert len(shared_cloud.executions("ceremony")) == before


def test_duplicate_witness_is_refused_without_change(shared_cloud: LocalCloud, witnesses: Witnesses,
                                                     bronze: Pool) -> None:
    ceremony = witnesses.open("wit-3", "silver", bronze.take(3)).json()
    assert _error(witnesses.witness("wit-1", ceremony)) == (409, "initiator_first")
    assert witnesses.witness("wit-3", ceremony).status == 201
    before = witnesses.ceremony(ceremony["ceremonyId"])
    dup = witnesses.witness("wit-3", ceremony)
    assert _error(dup) == (409, "duplicate_witness")
    assert witnesses.ceremony(ceremony["ceremonyId"]) == before
    assert witnesses.witness("wit-4", ceremony).status == 201
    assert _error(witnesses.witness("wit-4", ceremony)) == (409, "duplicate_witness")
    assert witnesses.ceremony(ceremony["ceremonyId"])["status"] == "Gathering"
    assert witnesses.witness("wit-1", ceremony).status == 201  # the third distinct witness completes it
    assert witnesses.wait(ceremony["ceremonyId"])["status"] == "Completed"
    added = [d["witnessId"] for t, _s, d in _audit(shared_cloud, ceremony["ceremonyId"]) if t == "WitnessAdded"]
    assert added == ["wit-3", "wit-4", "wit-1"]


def test_forged_witness_signatures_are_refused(shared_cloud: LocalCloud, driver: Driver, witnesses: Witnesses,
                                               bronze: Pool) -> None:
    ceremony = witnesses.open("wit-1", "silver", bronze.take(3)).json()
    other = witnesses.open("wit-1", "bronze", _names("other", 1), deadline_s=SHORT_DEADLINE_S).json()
    assert witnesses.witness("wit-1", ceremony).status == 201
    before = witnesses.ceremony(ceremony["ceremonyId"])
    stranger = ec.generate_private_key(ec.SECP256R1())
    payload = base64.b64decode(ceremony["signingPayload"])
    forged = base64.b64encode(stranger.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
    cases = {
        "an unregistered key": witnesses.witness("wit-2", ceremony, signature=forged),
        "another witness's key": witnesses.witness("wit-2", ceremony, key_of="wit-3"),
        "another ceremony's statement": witnesses.witness("wit-2", ceremony,
                                                          signature=witnesses.signature("wit-2", other)),
        "not base64": witnesses.witness("wit-2", ceremony, signature="!!not-base64!!"),
    }
    for why, resp in cases.items():
        assert _error(resp) == (422, "bad_signature"), why
    impersonation = driver.call("POST", f"/ceremonies/{ceremony['ceremonyId']}/witnesses",
                                body={"signature": witnesses.signature("wit-3", ceremony), "witnessId": "wit-3"},
                                token=witnesses.token("wit-2"))
    assert _error(impersonation) == (403, "witness_mismatch")
    unregistered = driver.call("POST", f"/ceremonies/{ceremony['ceremonyId']}/witnesses",
                               body={"signature": forged}, token=shared_cloud.token("submitter", "mallory"))
    assert _error(unregistered) == (403, "unknown_witness")
    assert witnesses.ceremony(ceremony["ceremonyId"]) == before
    assert not [d for t, _s, d in _audit(shared_cloud, ceremony["ceremonyId"])
                if t == "WitnessAdded" and d["witnessId"] != "wit-1"]
    for w in ("wit-2", "wit-3"):
        assert witnesses.witness(w, ceremony).status == 201
    assert witnesses.wait(ceremony["ceremonyId"])["status"] == "Completed"
    assert witnesses.wait(other["ceremonyId"])["status"] == "Lapsed"


def test_gold_without_blessing_lapses(shared_cloud: LocalCloud, driver: Driver, witnesses: Witnesses,
                                      silver: Pool) -> None:
    artifacts = silver.take(5)
    ceremony = witnesses.open("wit-2", "gold", artifacts, deadline_s=SHORT_DEADLINE_S + 1).json()
    for w in ["wit-2", "wit-1", "wit-3", "wit-4", "wit-5"]:
        resp = witnesses.witness(w, ceremony)
        assert resp.status == 201 and resp.json()["resumed"] is False
    assert witnesses.ceremony(ceremony["ceremonyId"])["status"] == "Gathering"  # five witnesses, no blessing
    path = f"/ceremonies/{ceremony['ceremonyId']}/blessing"
    assert _error(driver.call("POST", path, "submitter")) == (403, "forbidden")
    self_blessing = driver.call("POST", path, token=shared_cloud.token("superadmin", "wit-2", ["superadmin"]))
    assert _error(self_blessing) == (403, "self_blessing")
    done = witnesses.wait(ceremony["ceremonyId"])
    assert done["status"] == "Lapsed" and done["provenance"] is None
    execution = shared_cloud.wait_execution(ceremony["executionArn"])
    assert execution["status"] == "FAILED" and execution.get("error") == "Lapsed"
    assert {_tier(driver, a) for a in artifacts} == {"silver"}
    lapsed = [d for t, _s, d in _audit(shared_cloud, ceremony["ceremonyId"]) if t == "CeremonyLapsed"]
    assert lapsed == [{"tier": "gold", "witnesses": 5, "required": 5, "blessed": False}]
    assert _error(driver.call("POST", path, "superadmin")) == (409, "lapsed")


def test_too_few_witnesses_keeps_waiting_then_lapses(shared_cloud: LocalCloud, driver: Driver,
                                                     witnesses: Witnesses, bronze: Pool) -> None:
    artifacts = bronze.take(3)
    ceremony = witnesses.open("wit-1", "silver", artifacts, deadline_s=SHORT_DEADLINE_S).json()
    for w in ("wit-1", "wit-2"):
        assert witnesses.witness(w, ceremony).status == 201
    assert witnesses.ceremony(ceremony["ceremonyId"])["status"] == "Gathering"
    assert _status(shared_cloud, ceremony["ceremonyId"]) == "RUNNING"
    assert witnesses.wait(ceremony["ceremonyId"])["status"] == "Lapsed"
    assert shared_cloud.wait_execution(ceremony["executionArn"])["status"] == "FAILED"
    assert _states(shared_cloud, ceremony["executionArn"]) == [
        "Wait for witnesses", "Mark lapsed", "Lapsed or witnessed in time?", "Lapsed"]
    assert {_tier(driver, a) for a in artifacts} == {"bronze"}
    lapsed = [d for t, _s, d in _audit(shared_cloud, ceremony["ceremonyId"]) if t == "CeremonyLapsed"]
    assert lapsed == [{"tier": "silver", "witnesses": 2, "required": 3, "blessed": False}]


def test_a_lapsed_deadline_ends_the_ceremony(shared_cloud: LocalCloud, driver: Driver, witnesses: Witnesses) -> None:
    artifact = _names("late", 1)[0]
    ceremony = witnesses.open("wit-1", "bronze", [artifact], deadline_s=1).json()
    execution = shared_cloud.wait_execution(ceremony["executionArn"], timeout=15)
    assert execution["status"] == "FAILED" and execution.get("error") == "Lapsed"
    assert witnesses.ceremony(ceremony["ceremonyId"])["status"] == "Lapsed"
    assert _error(witnesses.witness("wit-1", ceremony)) == (409, "lapsed")
    assert _tier(driver, artifact) is None
    assert [t for t, _s, _d in _audit(shared_cloud, ceremony["ceremonyId"])] == ["CeremonyInitiated",
                                                                                  "CeremonyLapsed"]


# ----------------------------------------------------------------------------- deployment


def test_deployment_plans_carry_the_tier_profile_and_signature(driver: Driver, witnesses: Witnesses,
                                                               bronze: Pool) -> None:
    artifact = bronze.take(1)[0]
    signature_id = driver.ok("GET", f"/artifacts/{artifact}", "auditor")["signatureId"]
    expected = {"development": ("0.5", 512, 1), "staging": ("0.5", 512, 1), "production": ("1", 1024, 2)}
    for env, (vcpu, mem, disk) in expected.items():
        plan = driver.ok("POST", "/deployment-plans", "submitter", {"artifactId": artifact, "environment": env})
        assert (plan["resources"]["vcpu"], plan["resources"]["memoryMib"], plan["resources"]["storageGib"]) == (
            vcpu, mem, disk)
        assert (plan["monitoring"]["logRetentionDays"], plan["monitoring"]["metricRetentionDays"]) == (7, 1)
        assert plan["annotations"]["hallmark.io/provenance-signature"] == signature_id
        assert plan["annotations"]["hallmark.io/tier"] == "bronze"
        assert driver.ok("GET", f"/deployment-plans/{plan['deploymentId']}", "auditor")["tier"] == "bronze"
    assert _error(driver.call("POST", "/deployment-plans", "submitter", {"artifactId": artifact, "environment": "moon"})) \
        == (400, "invalid_request")
    assert driver.call("POST", "/deployment-plans", "auditor", {"artifactId": artifact, "environment": "staging"}).status \
        == 403


def _refusal(cloud: LocalCloud, driver: Driver, artifact: str, reason: str) -> None:
    resp = driver.call("POST", "/deployment-plans", "submitter", {"artifactId": artifact, "environment": "production"})
    assert _error(resp) == (403, "provenance_unverified"), resp.body
    assert resp.json()["error"]["details"]["reason"] == reason
    refused = [d for t, _s, d in _audit(cloud, artifact) if t == "DeploymentRefused"]
    assert refused and refused[-1]["detail"] == reason and refused[-1]["environment"] == "production"


def test_deployment_refused_for_tampered_provenance(shared_cloud: LocalCloud, driver: Driver,
                                                    witnesses: Witnesses) -> None:
    record_art, envelope_art = _names("tamper", 2)
    for artifact in (record_art, envelope_art):
        assert witnesses.run("bronze", [artifact], ["wit-5"])["status"] == "Completed"
        assert driver.call("POST", "/deployment-plans", "submitter",
                           {"artifactId": artifact, "environment": "production"}).status == 201
    # 1. the stored record gains a witness who never signed: it no longer matches the envelope
    sig = driver.ok("GET", f"/artifacts/{record_art}", "auditor")["signatureId"]
    tamper_provenance(shared_cloud, sig, {"witnesses": ["mallory", "wit-5"]})
    _refusal(shared_cloud, driver, record_art, "record_mismatch")
    verification = driver.ok("GET", f"/provenance/{sig}", "auditor")["verification"]
    assert (verification["verified"], verification["reason"]) == (False, "record_mismatch")
    # 2. record and envelope payload rewritten together: the KMS signature no longer verifies
    sig = driver.ok("GET", f"/artifacts/{envelope_art}", "auditor")["signatureId"]
    table, name = shared_cloud.client("dynamodb"), shared_cloud.resources["TABLE_STATE"]
    key = {"pk": {"S": f"provenance#{sig}"}, "sk": {"S": "DOC"}}
    doc = json.loads(table.get_item(TableName=name, Key=key)["Item"]["doc"]["S"])
    doc["record"]["blessing"] = "rewritten"
    doc["envelope"]["payload"] = base64.b64encode(rfc8785.dumps(doc["record"])).decode()
    table.update_item(TableName=name, Key=key, UpdateExpression="SET doc = :d",
                      ExpressionAttributeValues={":d": {"S": json.dumps(doc)}})
    _refusal(shared_cloud, driver, envelope_art, "envelope_invalid")


def test_deployment_refused_for_unverifiable_provenance(shared_cloud: LocalCloud, driver: Driver) -> None:
    # never through a ceremony: nothing to verify
    _refusal(shared_cloud, driver, _names("unknown", 1)[0], "no_provenance")
    # a self-consistent provenance signed with a key that is not the proof KMS key
    artifact = _names("forged", 1)[0]

    record = {"ceremonyId": "cer-forged", "tier": "gold", "initiator": "mallory", "witnesses": ["mallory"],
              "artifacts": [artifact], "blessing": "trust me", "timestamp": "2026-11-22T00:00:00Z"}
    payload = rfc8785.dumps(record)
    envelope = sign_envelope(payload, PROVENANCE_PAYLOAD_TYPE, LocalSigner.generate("attacker"))
    ptype = PROVENANCE_PAYLOAD_TYPE.encode()
    pae = b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(payload), payload)
    sig = f"provenance-gold-{hashlib.sha256(pae).hexdigest()}"
    attestation = {"record": record, "keyId": "attacker", "signature": envelope["signatures"][0]["sig"],
                   "signatureId": sig, "payloadType": PROVENANCE_PAYLOAD_TYPE, "envelope": envelope}
    held = {"artifactId": artifact, "tier": "gold", "ceremonyId": "cer-forged", "signatureId": sig,
            "awardedAt": "2026-11-22T00:00:00Z", "version": 1}
    table, name = shared_cloud.client("dynamodb"), shared_cloud.resources["TABLE_STATE"]
    table.put_item(TableName=name, Item={"pk": {"S": f"provenance#{sig}"}, "sk": {"S": "DOC"},
                                         "kind": {"S": "provenance"}, "ceremonyId": {"S": "cer-forged"},
                                         "doc": {"S": json.dumps(attestation)}})
    table.put_item(TableName=name, Item={"pk": {"S": f"artifact-tier#{artifact}"}, "sk": {"S": "DOC"},
                                         "kind": {"S": "artifact"}, "tier": {"S": "gold"}, "version": {"N": "1"},
                                         "doc": {"S": json.dumps(held)}})
    held = driver.ok("GET", f"/artifacts/{artifact}", "auditor")  # the table says gold, nothing vouches for it
    assert held["tier"] == "gold" and held["verification"] == {"verified": False, "reason": "envelope_invalid"}
    _refusal(shared_cloud, driver, artifact, "envelope_invalid")


def test_registry_and_roles(shared_cloud: LocalCloud, driver: Driver, witnesses: Witnesses) -> None:
    pem = witnesses.driver.ok("GET", "/witnesses/wit-1", "auditor")["publicKeyPem"]
    assert "BEGIN PUBLIC KEY" in pem and "PRIVATE" not in pem
    body = {"witnessId": "wit-new", "publicKeyPem": pem}
    assert _error(driver.call("POST", "/witnesses", "submitter", body)) == (403, "forbidden")
    assert _error(driver.call("POST", "/witnesses", "superadmin", {**body, "witnessId": "wit-1"})) == (409, "conflict")
    bad = driver.call("POST", "/witnesses", "superadmin", {**body, "publicKeyPem": "x" * 120})
    assert _error(bad) == (400, "invalid_input")
    assert driver.call("GET", "/witnesses/nobody", "auditor").status == 404
    assert driver.call("GET", "/ceremonies/cer-nope", "auditor").status == 404
    assert driver.call("GET", "/provenance/provenance-gold-nope", "auditor").status == 404
    registered = [t for t, s, _d in _audit(shared_cloud, *WITNESS_IDS) if t == "WitnessRegistered"]
    assert len(registered) == len(WITNESS_IDS)
