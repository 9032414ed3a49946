"""Deployments that deploy, end to end on the local cloud (the real deployment ASL, moto's Lambda):
published + bronze -> staging live at 100 %; v2 canary 10 % -> alarm -> rolled back; v3 promoted;
drift detected and reverted; refusals that create nothing in Lambda; one deployment per function
and environment; an unratified emergency release's deployment rolled back by governance."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from hallmark.deploy.models import TERMINAL, code_sha256_b64, function_name
from hallmark_tools.driver import Driver
from hallmark_tools.localcloud.cloud import LocalCloud
from hallmark_tools.scenarios.deployment import Deployer

RATIFY_S = 40
ENV = {
    "DEPLOY_BAKE_SECONDS": "4",
    "AUDIT_CHECKPOINT_EVERY_SECONDS": "1",
    "RATIFICATION_WINDOW_SECONDS": str(RATIFY_S),
    "APPROVAL_TIMEOUT_SECONDS": "600",
    "DEPLOY_POLICY": json.dumps({"minTier": {"production": "silver"}}),
}


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(env=ENV, schedule_every_s=1.0) as c:
        yield c


@pytest.fixture(scope="module")
def d(cloud: LocalCloud) -> Deployer:
    return Deployer(Driver(cloud))


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def _functions(cloud: LocalCloud, name: str) -> list[str]:
    prefix = function_name(name, "")[:-1]
    fns = cloud.client("lambda").list_functions()["Functions"]
    return [f["FunctionName"] for f in fns if f["FunctionName"].startswith(prefix)]


def _events(cloud: LocalCloud, subject: str) -> list[dict[str, Any]]:
    from hallmark.adapters.runtime import audit_log

    cloud.wait_idle()
    return [e.to_wire() for e in audit_log().store.events("ceremony") if e.subject == subject]


def test_canary_lifecycle_and_drift(cloud: LocalCloud, d: Deployer) -> None:
    name = _name("svc")
    lam = cloud.client("lambda")
    # v1: published, crowned bronze, deployed to staging -> live at 100 % at once
    d.release(name, "1.0.0", "bronze")
    first = d.wait(d.deploy(name, "1.0.0", "staging"))
    assert first["stage"] == "live", first
    assert [s["stage"] for s in first["stages"]] == ["requested", "admitted", "deploying", "live"]
    fn = first["functionName"]
    assert d.alias(first) == {"version": first["functionVersion"], "weights": {}}
    signed = code_sha256_b64(first["signedSha256"])
    assert d.code_sha256(fn, first["functionVersion"]) == signed == first["codeSha256"]
    cfg = lam.get_function_configuration(FunctionName=fn, Qualifier=first["functionVersion"])
    assert cfg["MemorySize"] == 512 and cfg["EphemeralStorage"]["Size"] == 1024
    assert cfg["Environment"]["Variables"]["HALLMARK_TIER"] == "bronze"
    assert cfg["Environment"]["Variables"]["HALLMARK_MANIFEST_SIGNATURE_ID"] == first["manifestSignatureId"]
    tags = lam.list_tags(Resource=cfg["FunctionArn"].rsplit(":", 1)[0])["Tags"]
    assert tags["hallmark:managed"] == "true" and tags["hallmark:tier"] == "bronze"
    assert lam.get_function_concurrency(FunctionName=fn)["ReservedConcurrentExecutions"] == 1
    group = cloud.client("logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{fn}")["logGroups"][0]
    assert group["retentionInDays"] == 7
    alarms = cloud.client("cloudwatch").describe_alarms(AlarmNames=first["alarms"])["MetricAlarms"]
    assert [a["AlarmName"].rsplit("-", 1)[1] for a in alarms] == ["errors"]
    assert alarms[0]["AlarmActions"] == [json.loads(json.dumps(cloud.resources["DEPLOY_ALARM_TOPIC_ARN"]))]

    # v2: canary 10 % -> its alarm fires during the bake -> rolled back, the alias on v1 again
    d.release(name, "1.1.0", "bronze", greeting="hullo")
    canary = d.wait(d.deploy(name, "1.1.0", "staging"), ("canary", *TERMINAL))
    assert canary["stage"] == "canary", canary
    assert d.alias(canary) == {"version": first["functionVersion"], "weights": {canary["functionVersion"]: 0.1}}
    d.set_alarms(canary, "ALARM")
    rolled = d.wait(canary["deploymentId"])
    assert rolled["stage"] == "rolled_back", rolled
    assert d.alias(rolled) == {"version": first["functionVersion"], "weights": {}}
    assert "DeploymentRolledBack" in [e["type"] for e in _events(cloud, canary["deploymentId"])]

    # v3: canary, alarms quiet -> promoted to 100 %; a second request meanwhile is refused 409
    d.release(name, "1.2.0", "bronze", greeting="hello again")
    key = uuid.uuid4().hex
    resp = d.request(name, "1.2.0", "staging", key=key)
    assert resp.status == 202 and resp.json()["statusUrl"] == f"/deployments/{resp.json()['deploymentId']}"
    third = resp.json()["deploymentId"]
    again = d.request(name, "1.2.0", "staging", key=key)
    assert again.status == 202 and again.json()["deploymentId"] == third  # Idempotency-Key honoured
    busy = d.request(name, "1.2.0", "staging")
    assert busy.status == 409 and busy.json()["error"]["details"]["runningDeploymentId"] == third
    promoted = d.wait(third)
    assert promoted["stage"] == "live" and "canary" in [s["stage"] for s in promoted["stages"]], promoted
    assert d.alias(promoted) == {"version": promoted["functionVersion"], "weights": {}}

    # someone updates the code outside Hallmark -> drift detected, audited, reverted (staging: revert)
    tampered = d.tamper_code(fn)
    assert tampered != signed
    deadline = time.monotonic() + 60
    while "DeploymentReverted" not in [e["type"] for e in _events(cloud, third)]:
        assert time.monotonic() < deadline, "the drift watch did not revert"
        time.sleep(0.3)
    drifted = next(e for e in _events(cloud, third) if e["type"] == "DeploymentDrifted")
    assert any(x["field"] == "codeSha256 ($LATEST)" and x["live"] == tampered for x in drifted["data"]["differences"])
    assert d.code_sha256(fn) == code_sha256_b64(promoted["signedSha256"])
    listed = d.driver.ok("GET", f"/deployments?package={name}&environment=staging&limit=2", "auditor")
    assert [x["deploymentId"] for x in listed["items"]] == [third, canary["deploymentId"]]
    rest = d.driver.ok("GET", f"/deployments?package={name}&environment=staging&limit=2&nextToken="
                       f"{quote(listed['nextToken'], safe='')}", "auditor")
    assert [x["deploymentId"] for x in rest["items"]] == [first["deploymentId"]] and rest["nextToken"] is None
    other = d.driver.call("GET", f"/deployments?environment=production&nextToken={quote(listed['nextToken'], safe='')}",
                          "auditor")
    assert other.status == 400 and other.json()["error"]["code"] == "invalid_next_token"  # another filter


def _refused(cloud: LocalCloud, d: Deployer, name: str, version: str, env: str, reason: str) -> None:
    doc = d.wait(d.deploy(name, version, env))
    assert doc["stage"] == "refused" and doc["stages"][-1]["reason"] == reason, doc
    assert _functions(cloud, name) == []  # nothing created in Lambda
    refused = [e for e in _events(cloud, doc["deploymentId"]) if e["type"] == "DeploymentRefused"]
    assert refused and refused[0]["data"]["reason"] == reason



def test_an_alarm_that_fires_and_clears_during_the_bake_rolls_back(cloud: LocalCloud, d: Deployer) -> None:
    name = _name("flap")
    d.release(name, "1.0.0", "bronze")
    first = d.wait(d.deploy(name, "1.0.0", "staging"))
    d.release(name, "1.1.0", "bronze", greeting="hullo")
    canary = d.wait(d.deploy(name, "1.1.0", "staging"), ("canary", *TERMINAL))
    assert canary["stage"] == "canary", canary
    d.set_alarms(canary, "ALARM")
    d.set_alarms(canary, "OK")  # cleared long before the bake ends
    rolled = d.wait(canary["deploymentId"])
    assert rolled["stage"] == "rolled_back" and rolled["stages"][-1]["reason"] == "alarm_during_bake", rolled
    assert d.alias(rolled) == {"version": first["functionVersion"], "weights": {}}
    event = next(e for e in _events(cloud, canary["deploymentId"]) if e["type"] == "DeploymentRolledBack")
    assert event["data"]["reason"] == "alarm_during_bake" and event["data"]["breachedDuringBake"] == canary["alarms"]
    states = cloud.client("cloudwatch").describe_alarms(AlarmNames=canary["alarms"])["MetricAlarms"]
    assert {a["StateValue"] for a in states} == {"OK"}

def test_tampered_manifest_is_refused(cloud: LocalCloud, d: Deployer) -> None:
    name = _name("tmf")
    doc = d.release(name, "1.0.0")
    s3, ddb = cloud.client("s3"), cloud.client("dynamodb")
    ref = doc["manifest"]["repository"]
    env = json.loads(s3.get_object(Bucket=ref["bucket"], Key=ref["key"])["Body"].read())
    payload = json.loads(base64.b64decode(env["payload"]))
    payload["predicate"]["impact"] = "LOW" if payload["predicate"]["impact"] != "LOW" else "MEDIUM"
    env["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    s3.put_object(Bucket=ref["bucket"], Key=ref["key"] + ".tampered", Body=json.dumps(env).encode())
    table = cloud.resources["TABLE_STATE"]
    key = {"pk": {"S": f"package#{doc['packageId']}"}, "sk": {"S": "DOC"}}
    item = ddb.get_item(TableName=table, Key=key)["Item"]
    stored = json.loads(item["doc"]["S"])
    stored["manifest"]["repository"]["key"] = ref["key"] + ".tampered"
    ddb.update_item(TableName=table, Key=key, UpdateExpression="SET doc = :d",
                    ExpressionAttributeValues={":d": {"S": json.dumps(stored, sort_keys=True)}})
    _refused(cloud, d, name, "1.0.0", "staging", "manifest_invalid")


def test_missing_inclusion_proof_is_refused(cloud: LocalCloud, d: Deployer, monkeypatch: pytest.MonkeyPatch) -> None:
    from hallmark.adapters import runtime

    name = _name("nip")
    d.release(name, "1.0.0")
    evidence = runtime.deployment_steps().evidence
    original = evidence.bundle_of

    def without_proof(package: dict[str, Any]) -> dict[str, Any]:
        bundle: dict[str, Any] = original(package)
        for item in bundle["audit"]["events"]:
            if item["event"]["type"] == "ManifestSigned":
                item["proof"] = None
        return bundle

    monkeypatch.setattr(evidence, "bundle_of", without_proof)
    _refused(cloud, d, name, "1.0.0", "staging", "inclusion_proof_missing")


def test_bytes_swapped_after_signing_are_refused(cloud: LocalCloud, d: Deployer) -> None:
    from hallmark_tools import samples

    name = _name("swp")
    doc = d.release(name, "1.0.0")
    pinned_key = f"sha256/{doc['meta']['sha256']}"
    cloud.client("s3").put_object(Bucket=cloud.resources["BUCKET_PACKAGES"], Key=pinned_key,
                                  Body=samples.lambda_package(name, "evil"))
    _refused(cloud, d, name, "1.0.0", "staging", "artifact_mismatch")


def test_tier_below_minimum_and_no_tier_are_refused(cloud: LocalCloud, d: Deployer) -> None:
    name = _name("low")
    d.release(name, "1.0.0", "bronze")
    _refused(cloud, d, name, "1.0.0", "production", "tier_below_minimum")  # this cloud: production >= silver
    other = _name("none")
    d.publish(other, "1.0.0")  # never crowned
    _refused(cloud, d, other, "1.0.0", "staging", "tier_unverified")


def test_unratified_emergency_release_is_revoked(cloud: LocalCloud, d: Deployer) -> None:
    from hallmark_tools.driver import Approvers

    Approvers(d.driver)  # registered (an emergency release needs a reachable threshold), never asked
    name = _name("hot")
    d.release(name, "1.0.0")
    base = d.wait(d.deploy(name, "1.0.0", "staging"))
    assert base["stage"] == "live"
    emergency = d.publish(name, "1.0.1", impact="CRITICAL", emergency=True, role="superadmin")
    d.crown(emergency["packageId"])
    hot = d.wait(d.deploy(name, "1.0.1", "staging"))
    assert hot["stage"] == "live" and d.alias(hot)["version"] == hot["functionVersion"], hot
    # nobody ratifies: governance rolls the release back, and with it the running code
    d.driver.wait_package(emergency["packageId"], ("RolledBack",), timeout=RATIFY_S + 60)
    revoked = d.wait(hot["deploymentId"], ("rolled_back",), timeout=30)
    assert revoked["stages"][-1]["reason"].startswith("governance rolled back"), revoked
    assert d.alias(hot) == {"version": base["functionVersion"], "weights": {}}
    assert d.code_sha256(hot["functionName"]) == code_sha256_b64(base["signedSha256"])
