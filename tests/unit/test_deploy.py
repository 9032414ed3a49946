"""The deployment domain on fakes: admission from the public keys, the pinned bytes and their
CodeSha256, the tier profile, canary judgement, drift, revocation, the one-at-a-time lock."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from hallmark.deploy.admission import Admitted, AwaitingCheckpoint, Refusal, admission_failure
from hallmark.deploy.models import (
    LAMBDA_MAX_EPHEMERAL_MIB,
    Policy,
    code_sha256_b64,
    function_name,
    tier_profile,
)
from hallmark.deploy.steps import DeploymentSteps
from hallmark.errors import Conflict
from hallmark.release.validators.lambda_package import LambdaPackageError, lambda_spec
from hallmark_tools import samples
from tests.fakes.deploy import NOW, FakeEvidence, FakeLambda, FakeMonitoring, RecordingAudit, SignedRelease
from tests.fakes.docstore import InMemoryDocStore

ROLES = {e: f"arn:aws:iam::123456789012:role/hallmark-app-{e}-execution" for e in ("development", "staging",
                                                                                   "production")}


class World:
    def __init__(self, policy: Policy | None = None) -> None:
        self.evidence = FakeEvidence()
        self.objects: dict[str, bytes] = {}
        self.lam = FakeLambda(self.objects)
        self.mon = FakeMonitoring()
        self.audit = RecordingAudit()
        self.steps = DeploymentSteps(InMemoryDocStore(), self.audit, self.evidence, self.lam, self.mon,
                                     policy or Policy(bake_seconds=1), ROLES, lambda: NOW)

    def release(self, name: str, version: str, tier: str | None = "bronze", greeting: str = "hi") -> SignedRelease:
        rel = self.evidence.add(SignedRelease(name, version, samples.lambda_package(name, greeting), tier))
        self.objects[f"sha256/{rel.sha256}"] = rel.artifact
        return rel

    def run(self, name: str, version: str, env: str = "staging", *, alarm: bool = False,
            flapped: bool = False, history_error: str | None = None) -> dict[str, Any]:
        doc, _ = self.steps.request(name, version, env, "sam")
        dep = doc["deploymentId"]
        if not self.steps.admit(dep)["admitted"] or not self.steps.release(dep)["ok"]:
            return self.steps.get(dep)
        self.steps.profile(dep)
        if self.steps.shift(dep)["canary"]:
            if alarm:
                for n in self.steps.get(dep)["alarms"]:
                    self.mon.states[n] = "ALARM"
            if flapped:  # ALARM then OK again within the bake: only the history shows it
                self.mon.breached.update(self.steps.get(dep)["alarms"])
            self.mon.history_error = history_error
            self.steps.judge(dep)
            self.mon.history_error = None
        return self.steps.get(dep)


def test_tier_profiles_double_in_production_and_cap_storage() -> None:
    bronze, gold = tier_profile("bronze", "staging"), tier_profile("gold", "production")
    assert (bronze.memory_mib, bronze.ephemeral_mib, bronze.replicas, bronze.concurrency) == (512, 1024, 1, "reserved")
    assert (bronze.log_retention_days, bronze.alarms) == (7, ("errors",))
    assert (gold.memory_mib, gold.ephemeral_mib, gold.replicas, gold.concurrency) == (4096, 10240, 3, "provisioned")
    assert gold.ephemeral_capped and "capped" in gold.to_json_dict()["ephemeralStorageCap"]
    assert gold.ephemeral_mib == LAMBDA_MAX_EPHEMERAL_MIB and gold.alarms[-1] == "error_anomaly"
    silver = tier_profile("silver", "production")
    assert (silver.memory_mib, silver.ephemeral_mib, silver.log_retention_days) == (2048, 10240, 30)
    assert not silver.ephemeral_capped


def test_policy_defaults_and_refuses_nonsense() -> None:
    p = Policy.from_json(None)
    assert p.tier_allowed("bronze", "production") and p.tier_allowed("bronze", "staging")
    assert not Policy.from_json('{"minTier": {"production": "gold"}}').tier_allowed("silver", "production")
    for bad in ('{"minTier": {"moon": "gold"}}', '{"drift": {"staging": "ignore"}}', '{"canaryWeight": 2}',
                '{"extra": 1}'):
        with pytest.raises(ValueError):
            Policy.from_json(bad)


def test_function_names_carry_the_managed_prefix_within_lambda_limits() -> None:
    assert function_name("greeter.fn", "staging") == "hallmark-app-greeter-fn-staging"
    assert len(function_name("x" * 200, "production")) <= 64
    assert code_sha256_b64("00" * 32) == "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


def test_lambda_package_declaration_is_checked() -> None:
    assert lambda_spec(samples.lambda_package("f")).handler == "app.handler"
    for bad, why in ((samples.lambda_package("f", runtime="python2.7"), "not allowed"),
                     (samples.lambda_package("f", handler="missing.handler"), "not in the zip"),
                     (samples.lambda_package("f", handler="no dots"), "<module>.<function>"),
                     (samples.clean_package("f"), ".zip"),
                     (samples.zip_bytes({"app.py": b""}), "hallmark.toml")):
        with pytest.raises(LambdaPackageError, match=why):
            lambda_spec(bad)


def test_admission_verifies_the_evidence_and_names_each_refusal() -> None:
    rel = SignedRelease("svc", "1.0.0", samples.lambda_package("svc"))
    ok = admission_failure(rel.evidence(), "production", Policy())
    assert isinstance(ok, Admitted) and ok.tier == "bronze" and ok.signed_sha256 == rel.sha256
    swapped = admission_failure(rel.evidence(samples.lambda_package("svc", "evil")), "staging", Policy())
    assert isinstance(swapped, Refusal) and swapped.reason == "artifact_mismatch"
    ev = rel.evidence()
    ev.bundle["manifest"]["envelope"]["payload"] = ev.bundle["manifest"]["envelope"]["payload"][:-4] + "AAA="
    tampered = admission_failure(ev, "staging", Policy())
    assert isinstance(tampered, Refusal) and tampered.reason == "manifest_invalid"
    ev = rel.evidence()
    next(i for i in ev.bundle["audit"]["events"] if i["event"]["type"] == "ManifestSigned")["proof"] = None
    assert admission_failure(ev, "staging", Policy()).reason == "inclusion_proof_missing"  # type: ignore[union-attr]
    ev = rel.evidence()
    item = next(i for i in ev.bundle["audit"]["events"] if i["event"]["type"] == "ManifestSigned")
    item["proof"]["checkpoint"]["merkleRoot"] = "1" * 64
    assert admission_failure(ev, "staging", Policy()).reason == "inclusion_proof_invalid"  # type: ignore[union-attr]
    strict = Policy.from_json('{"minTier": {"production": "silver"}}')
    assert admission_failure(rel.evidence(), "production", strict).reason == "tier_below_minimum"  # type: ignore[union-attr]
    untiered = SignedRelease("svc", "1.0.1", samples.lambda_package("svc"), tier=None)
    assert admission_failure(untiered.evidence(), "staging", Policy()).reason == "tier_unverified"  # type: ignore[union-attr]
    forged = rel.evidence()
    assert forged.attestation is not None
    gold = forged.attestation.model_copy(update={"record": {**forged.attestation.record, "tier": "gold"}})
    forged = replace(forged, attestation=gold)
    assert admission_failure(forged, "staging", Policy()).reason == "tier_unverified"  # type: ignore[union-attr]
    library = SignedRelease("lib", "1.0.0", samples.lambda_package("lib"), package_type="library")
    assert admission_failure(library.evidence(), "staging", Policy()).reason == "not_a_lambda_package"  # type: ignore[union-attr]


def test_admission_waits_while_the_manifest_entry_is_not_checkpointed() -> None:
    rel = SignedRelease("svc", "1.0.0", samples.lambda_package("svc"))
    rel.log.append("release", "late", NOW, "ValidationPassed", "system", rel.package_id, {})
    ev = rel.evidence()
    ev.bundle["audit"]["events"] = [i for i in ev.bundle["audit"]["events"] if i["event"]["type"] != "ManifestSigned"]
    with pytest.raises(AwaitingCheckpoint):
        admission_failure(ev, "staging", Policy())


def test_first_deployment_goes_live_at_once_then_a_canary_rolls_back_on_alarm() -> None:
    w = World()
    v1 = w.release("svc", "1.0.0")
    first = w.run("svc", "1.0.0")
    fn = first["functionName"]
    assert first["stage"] == "live" and w.lam.alias(fn, "staging").version == "1"  # type: ignore[union-attr]
    assert w.lam.fns[fn].spec.environment["HALLMARK_TIER"] == "bronze"
    assert w.lam.fns[fn].versions["1"].code_sha256 == code_sha256_b64(v1.sha256)
    assert w.lam.reserved[fn] == 1 and w.mon.retention[fn] == 7
    w.release("svc", "1.0.1")
    second = w.run("svc", "1.0.1", alarm=True)
    assert second["stage"] == "rolled_back" and w.lam.alias(fn, "staging").version == "1"  # type: ignore[union-attr]
    assert "route 1 ('2', 0.1)" in w.lam.calls
    assert w.audit.types(second["deploymentId"])[-2:] == ["DeploymentCanaryStarted", "DeploymentRolledBack"]
    w.release("svc", "1.0.2")
    third = w.run("svc", "1.0.2")
    assert third["stage"] == "live"
    assert w.lam.alias(fn, "staging").version == "3"  # type: ignore[union-attr]


def test_an_alarm_that_fired_and_cleared_during_the_bake_rolls_the_canary_back() -> None:
    w = World()
    w.release("svc", "1.0.0")
    fn = w.run("svc", "1.0.0")["functionName"]
    w.release("svc", "1.0.1")
    flapped = w.run("svc", "1.0.1", flapped=True)
    assert all(w.mon.states[n] != "ALARM" for n in flapped["alarms"])  # OK again at the bake's end
    assert flapped["stage"] == "rolled_back" and w.lam.alias(fn, "staging").version == "1"  # type: ignore[union-attr]
    event = w.audit.events[-1]
    assert event["type"] == "DeploymentRolledBack" and event["data"]["reason"] == "alarm_during_bake"
    assert event["data"]["breachedDuringBake"] == flapped["alarms"]
    assert event["data"]["bakeStartedAt"] == flapped["bakeStartedAt"]


def test_an_unreadable_alarm_history_fails_the_canary_closed() -> None:
    w = World()
    w.release("svc", "1.0.0")
    fn = w.run("svc", "1.0.0")["functionName"]
    w.release("svc", "1.0.1")
    doc = w.run("svc", "1.0.1", history_error="AccessDenied")
    assert doc["stage"] == "rolled_back" and w.lam.alias(fn, "staging").version == "1"  # type: ignore[union-attr]
    assert doc["stages"][-1]["reason"] == "alarm_history_unreadable" and "AccessDenied" in doc["stages"][-1]["detail"]
    assert w.audit.events[-1]["data"]["reason"] == "alarm_history_unreadable"


def test_production_records_the_skipped_provisioned_concurrency() -> None:
    w = World()
    w.release("svc", "1.0.0")
    doc = w.run("svc", "1.0.0", "production")
    assert doc["skipped"] == [{"call": "PutProvisionedConcurrencyConfig", "reason": "not implemented by this fake"}]
    assert doc["profile"]["memoryMiB"] == 1024


def test_a_code_sha256_mismatch_deletes_the_version_before_any_traffic() -> None:
    w = World()
    w.release("svc", "1.0.0")
    w.lam.publish_sha = "not-the-signed-one"
    doc = w.run("svc", "1.0.0")
    assert doc["stage"] == "failed" and doc["stages"][-1]["reason"] == "code_mismatch"
    assert "delete_version 1" in w.lam.calls and not any(c.startswith("route") for c in w.lam.calls)
    assert "DeploymentCodeMismatch" in w.audit.types(doc["deploymentId"])


def test_refusal_creates_nothing_and_frees_the_lock() -> None:
    w = World(Policy.from_json('{"minTier": {"production": "gold"}}', 1))
    w.release("svc", "1.0.0")
    doc = w.run("svc", "1.0.0", "production")
    assert doc["stage"] == "refused" and w.lam.calls == []
    assert w.audit.types(doc["deploymentId"]) == ["DeploymentRefused"]
    again, created = w.steps.request("svc", "1.0.0", "production", "sam")
    assert created and again["deploymentId"] != doc["deploymentId"]


def test_one_deployment_per_function_and_environment_and_idempotency_keys() -> None:
    w = World()
    w.release("svc", "1.0.0")
    first, created = w.steps.request("svc", "1.0.0", "staging", "sam", "key-1")
    assert created
    replay, created = w.steps.request("svc", "1.0.0", "staging", "sam", "key-1")
    assert not created and replay["deploymentId"] == first["deploymentId"]
    with pytest.raises(Conflict) as busy:
        w.steps.request("svc", "1.0.0", "staging", "sam")
    assert busy.value.code == "deployment_in_progress"
    assert busy.value.details["runningDeploymentId"] == first["deploymentId"]
    w.steps.request("svc", "1.0.0", "production", "sam")  # another environment is another function


def test_drift_is_detected_and_reverted_by_policy() -> None:
    w = World()
    rel = w.release("svc", "1.0.0")
    doc = w.run("svc", "1.0.0")
    fn = doc["functionName"]
    assert w.steps.drift() == []
    w.objects["oob"] = b"someone else's code"
    w.lam.fns[fn].code, w.lam.fns[fn].sha = replace(w.lam.fns[fn].code, key="oob"), "b3V0LW9mLWJhbmQ="
    w.lam.fns[fn].layers = ("arn:aws:lambda:us-east-1:1:layer:x:1",)
    found = w.steps.drift()
    assert [x["field"] for x in found[0]["differences"]] == ["codeSha256 ($LATEST)", "layers ($LATEST)"]
    assert w.lam.fns[fn].sha == code_sha256_b64(rel.sha256) and w.lam.fns[fn].layers == ()
    assert w.audit.types(doc["deploymentId"])[-2:] == ["DeploymentDrifted", "DeploymentReverted"]
    assert w.mon.notified and w.steps.drift() == []


def test_drift_only_alarms_where_the_policy_says_so() -> None:
    w = World()
    w.release("svc", "1.0.0")
    doc = w.run("svc", "1.0.0", "development")
    w.lam.route(doc["functionName"], "development", "1", ("1", 0.5))
    assert w.steps.drift()[0]["action"] == "alarm"
    assert w.lam.alias(doc["functionName"], "development").weights == {"1": 0.5}  # type: ignore[union-attr]


def test_revocation_restores_the_last_good_version_or_removes_the_alias() -> None:
    w = World()
    w.release("svc", "1.0.0")
    base = w.run("svc", "1.0.0")
    hot_rel = w.release("svc", "1.0.1")
    hot = w.run("svc", "1.0.1")
    assert hot["stage"] == "live"
    [out] = w.steps.revoke(hot_rel.package_id, "governance rolled back up-x")
    assert out["restored"] == base["deploymentId"]
    assert w.lam.alias(hot["functionName"], "staging").version == base["functionVersion"]  # type: ignore[union-attr]
    assert w.steps.get(hot["deploymentId"])["stage"] == "rolled_back"
    only = w.release("solo", "1.0.0")
    solo = w.run("solo", "1.0.0")
    w.steps.revoke(only.package_id, "governance rolled back up-y")
    assert w.lam.alias(solo["functionName"], "staging") is None and "remove_alias" in w.lam.calls
