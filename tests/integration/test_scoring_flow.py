"""Signal scoring on the local cloud, running the real statemachines/scoring.asl.json: the model
released through the release pipeline and registered from its signed manifest, events put on the
bus, rejected / deduped / batched, each branch of the runner Choice taken (the CPU Lambda and the
AWS Batch job, run in-process by the local Batch stand-in), briefs, webhooks verified with the
standardwebhooks library's own verifier (with retries and the DLQ), a tampered model refused."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from hallmark.adapters.dynamo_scoring import DynamoDedupe
from hallmark_tools import samples
from hallmark_tools.driver import Driver
from hallmark_tools.localcloud.cloud import LocalCloud
from hallmark_tools.scenarios.scoring import (
    Synth,
    WebhookReceiver,
    audit_events,
    flush,
    invalid_events,
    put_events,
    rejects,
    release_model,
    seed_corpus,
    wait_batch,
    wait_ingested,
)
from hallmark_tools.topology.scoring import JOB_DEFINITION

GPU_STATE = "Score on GPU (AWS Batch)"
CPU_STATE = "Score on CPU (Lambda)"


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    # batches are sealed only when a test flushes them; the thresholds are set per test
    env = {"SCORING_BATCH_MAX_EVENTS": "100000", "SCORING_BATCH_MAX_AGE_S": "3600"}
    with LocalCloud(env=env) as c:
        yield c


@pytest.fixture(scope="module")
def driver(cloud: LocalCloud) -> Driver:
    return Driver(cloud)


@pytest.fixture(scope="module")
def synth() -> Synth:
    return Synth(seed=11, clusters=20, per_cluster=50)


@pytest.fixture(scope="module")
def model(cloud: LocalCloud, driver: Driver, synth: Synth) -> dict[str, Any]:
    seed_corpus(cloud, synth.corpus())  # 1,000 reference vectors
    return release_model(driver)


def threshold(driver: Driver, value: int) -> None:
    driver.ok("PUT", "/scoring/config", "superadmin", {"gpuThreshold": value})


def score(cloud: LocalCloud, driver: Driver, events: list[dict[str, Any]], timeout: float = 120) -> dict[str, Any]:
    put_events(cloud, events)
    wait_ingested(cloud)
    [sealed] = flush(driver)
    return wait_batch(driver, sealed["batchId"], timeout=timeout)


def states_entered(cloud: LocalCloud, arn: str) -> list[str]:
    history = cloud.client("stepfunctions").get_execution_history(executionArn=arn, maxResults=1000)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]


def test_the_model_is_registered_from_its_signed_release(driver: Driver, model: dict[str, Any]) -> None:
    package = driver.package(model["packageId"])
    assert package["status"] == "Published"
    assert model["manifestSignatureId"] == package["manifest"]["signatureId"]
    assert model["manifestRef"] == package["manifest"]["repository"]
    assert driver.ok("GET", "/scoring/model", "auditor")["modelDigest"] == model["modelDigest"]


def test_a_package_that_is_not_a_model_is_refused(driver: Driver, model: dict[str, Any]) -> None:
    pid = driver.submit(samples.clean_package("not-a-model"), name="not-a-model", version="1.0.0")
    assert driver.wait_package(pid)["status"] == "Published"
    resp = driver.call("POST", "/scoring/model", "superadmin", {"packageId": pid})
    assert resp.status == 422 and resp.json()["error"]["code"] == "model_provenance", resp.body
    assert driver.call("POST", "/scoring/model", "superadmin", {"packageId": "nope"}).status == 404
    assert driver.call("POST", "/scoring/model", "submitter", {"packageId": pid}).status == 403
    assert driver.ok("GET", "/scoring/model", "auditor")["modelDigest"] == model["modelDigest"]  # unchanged


def test_schema_rejections_go_to_the_rejects_queue_with_their_reason(cloud: LocalCloud, synth: Synth,
                                                                     model: dict[str, Any]) -> None:
    bad = invalid_events(synth)
    put_events(cloud, bad.values())
    wait_ingested(cloud)
    got = {r["reason"].split(":")[0]: r for r in rejects(cloud)}
    assert set(got) == {"$.event_id", "$.timestamp", "$.domain", "$.source", "$.payload.embeddings"}
    for field, r in got.items():
        assert r["attributes"]["reason"]["StringValue"] == r["reason"]
        sent = json.loads(r["event"])["detail"]
        assert sent in bad.values(), field  # the event as the producer sent it


def test_cpu_branch_small_batch(cloud: LocalCloud, driver: Driver, synth: Synth, model: dict[str, Any]) -> None:
    threshold(driver, 10**12)
    events = synth.mix(40)
    dup = dict(events[0], event_id=str(uuid.uuid4()))
    doc = score(cloud, driver, [*events, dup])
    assert doc["status"] == "Routed", doc
    assert (doc["events"], doc["duplicates"], doc["runner"]) == (40, 1, "cpu")
    assert doc["scores"]["runner"] == "cpu-lambda" and doc["scores"]["scored"] == 40
    assert doc["corpusSize"] == 1000 and doc["work"] == 40 * 1000
    entered = states_entered(cloud, doc["executionArn"])
    assert entered[:3] == ["Plan batch", "Choose runner", CPU_STATE] and GPU_STATE not in entered
    assert entered[-2:] == ["Route bands", "Scored"]
    assert cloud.wait_execution(doc["executionArn"])["status"] == "SUCCEEDED"
    table = boto3.resource("dynamodb", region_name="us-east-1").Table(cloud.resources["TABLE_SCORING"])
    held = DynamoDedupe(table).support(events[0]["metadata"]["content_hash"])
    assert held is not None and held["supportCount"] == 2 and held["eventId"] == events[0]["event_id"]


def test_gpu_branch_large_batch_runs_the_batch_job(cloud: LocalCloud, driver: Driver, synth: Synth,
                                                   model: dict[str, Any]) -> None:
    threshold(driver, 1000)
    doc = score(cloud, driver, synth.mix(60))
    assert doc["status"] == "Routed", doc
    assert doc["runner"] == "gpu" and doc["work"] > 1000 and doc["scores"]["runner"] == "gpu-batch"
    entered = states_entered(cloud, doc["executionArn"])
    assert entered[:3] == ["Plan batch", "Choose runner", GPU_STATE] and CPU_STATE not in entered
    batch = cloud.client("batch")
    [job] = batch.describe_jobs(jobs=[doc["scores"]["jobId"]])["jobs"]
    assert job["status"] == "SUCCEEDED" and job["jobName"] == f"evi-{doc['batchId']}"
    env = {e["name"]: e["value"] for e in job["container"]["environment"]}
    assert env["BATCH_KEY"] == doc["batchKey"] and env["MODEL_DIGEST"] == model["modelDigest"]
    assert env["BUCKET"] == cloud.resources["BUCKET_SCORING"]  # from the job definition
    [definition] = batch.describe_job_definitions(jobDefinitionName=JOB_DEFINITION, status="ACTIVE")["jobDefinitions"]
    assert {"type": "GPU", "value": "1"} in definition["containerProperties"]["resourceRequirements"]
    envelopes = cloud.client("s3").get_object(Bucket=cloud.resources["BUCKET_SCORING"],
                                              Key=doc["scores"]["outputKey"])["Body"].read().decode().splitlines()
    assert len(envelopes) == 60


@pytest.mark.parametrize("branch", ["gpu", "cpu"])
def test_the_int8_mode_is_an_option_of_both_runners(cloud: LocalCloud, driver: Driver, synth: Synth,
                                                    model: dict[str, Any], branch: str) -> None:
    """Off by default; from int8MinBatch events on, a runner on the CPU loads the release's int8
    candidate model too, and BatchScored audits it; the local Batch stand-in runs on the CPU, so
    it takes the int8 path as well, and passes both variants to the job."""
    assert model["gpuModelDigest"] and model["candidateModelDigest"]
    threshold(driver, 1000 if branch == "gpu" else 10**12)
    driver.ok("PUT", "/scoring/config", "superadmin", {"int8MinBatch": 30})
    try:
        doc = score(cloud, driver, synth.mix(30))
    finally:
        driver.ok("PUT", "/scoring/config", "superadmin", {"int8MinBatch": 0})
    assert doc["status"] == "Routed" and doc["runner"] == branch, doc
    assert (doc["scores"]["mode"], doc["scores"]["modelDigest"]) == ("int8", model["modelDigest"])
    [scored] = [e for e in audit_events(driver) if e["type"] == "BatchScored" and e["subject"] == doc["batchId"]]
    assert scored["data"]["mode"] == "int8" and scored["data"]["candidateModelDigest"] == model["candidateModelDigest"]
    if branch == "gpu":
        [job] = cloud.client("batch").describe_jobs(jobs=[doc["scores"]["jobId"]])["jobs"]
        env = {e["name"]: e["value"] for e in job["container"]["environment"]}
        assert env["GPU_MODEL_DIGEST"] == model["gpuModelDigest"] and env["INT8_MIN_BATCH"] == "30"
        assert env["CANDIDATE_MODEL_DIGEST"] == model["candidateModelDigest"]
    below = score(cloud, driver, synth.mix(30))  # int8MinBatch 0 again: exact
    assert below["scores"]["mode"] == "exact"


def test_the_choice_is_on_batch_size_times_corpus_rows(cloud: LocalCloud, driver: Driver, synth: Synth,
                                                       model: dict[str, Any]) -> None:
    rows = driver.ok("GET", "/scoring/batches?limit=1", "auditor")["items"][0]["scores"]["corpusRowsAfter"]
    threshold(driver, 20 * rows)  # 20 events: work == threshold -> CPU; 21 events -> GPU
    at = score(cloud, driver, synth.mix(20))
    assert (at["work"], at["runner"]) == (20 * rows, "cpu")
    threshold(driver, 21 * (rows + 20) - 1)
    above = score(cloud, driver, synth.mix(21))
    assert (above["work"], above["runner"]) == (21 * (rows + 20), "gpu")


def test_instant_webhooks_retried_then_delivered_and_verified(cloud: LocalCloud, driver: Driver, synth: Synth,
                                                              model: dict[str, Any]) -> None:
    threshold(driver, 10**12)
    receiver = WebhookReceiver(fail_first=2).start()
    sub = driver.ok("POST", "/webhooks", "superadmin", {"url": receiver.url, "bands": ["instant"]})
    receiver.secret = sub["secret"]
    try:
        doc = score(cloud, driver, [synth.event("instant") for _ in range(3)] + synth.mix(10))
        instant = doc["scores"]["bands"]["instant"]
        assert instant >= 3 and doc["routing"]["webhooks"] == instant
        got = receiver.wait(instant)
        assert receiver.attempts == instant + 2  # two refused attempts, retried
        assert all(r.verified and r.payload["type"] == "evi.instant" for r in got)
        ids = {r.headers["webhook-id"] for r in got}
        assert len(ids) == instant
        cloud.wait_idle()
        delivered = [e for e in audit_events(driver) if e["type"] == "WebhookDelivered"
                     and e["data"]["batchId"] == doc["batchId"]]
        assert {e["data"]["webhookId"] for e in delivered} == ids
        assert max(e["data"]["attempt"] for e in delivered) >= 2
        assert all(e["data"]["modelDigest"] == model["modelDigest"] for e in delivered)
        listed = driver.ok("GET", "/webhooks", "superadmin")["items"]
        assert sub["subscriberId"] in {s["subscriberId"] for s in listed}
        assert not any("secret" in k.lower() for s in listed for k in s)
    finally:
        driver.ok("DELETE", f"/webhooks/{sub['subscriberId']}", "superadmin")
        receiver.stop()


def test_a_webhook_never_accepted_lands_in_the_dlq(cloud: LocalCloud, driver: Driver, synth: Synth,
                                                   model: dict[str, Any]) -> None:
    threshold(driver, 10**12)
    receiver = WebhookReceiver(fail_first=10**6).start()
    sub = driver.ok("POST", "/webhooks", "superadmin", {"url": receiver.url, "bands": ["instant"]})
    receiver.secret = sub["secret"]
    try:
        doc = score(cloud, driver, [synth.event("instant")])
        assert doc["routing"]["webhooks"] == 1
        cloud.wait_idle(timeout=60)
        assert cloud.queue_depth("webhooks-dlq") == 1
        assert receiver.attempts == 6  # the queue's maxReceiveCount
        assert receiver.verified() == []
    finally:
        driver.ok("DELETE", f"/webhooks/{sub['subscriberId']}", "superadmin")
        receiver.stop()


def test_briefs_listed_with_filters(cloud: LocalCloud, driver: Driver, synth: Synth, model: dict[str, Any]) -> None:
    threshold(driver, 10**12)
    started = int(time.time() * 1000)
    doc = score(cloud, driver, [synth.event("same_day") for _ in range(30)] + [synth.event("weekly") for _ in range(10)])
    assert doc["routing"]["briefs"] >= 2
    recent = driver.ok("GET", f"/briefs?since={started}&limit=200", "auditor")["items"]
    assert {b["batchId"] for b in recent} == {doc["batchId"]}
    assert sum(len(b["brief"]["event_ids"]) for b in recent) == 40 - doc["scores"]["bands"].get("archive", 0) \
        - doc["scores"]["bands"].get("instant", 0)
    for domain in ("ai", "crypto"):
        items = driver.ok("GET", f"/briefs?domain={domain}&since={started}", "auditor")["items"]
        assert all(b["domain"] == domain for b in items)
    high = driver.ok("GET", "/briefs?impact_level=high&limit=200", "auditor")["items"]
    assert all(b["brief"]["impact_level"] == "high" for b in high)
    one = recent[0]
    assert driver.ok("GET", f"/briefs/{one['brief']['brief_id']}", "auditor") == one
    assert driver.call("GET", "/briefs?since=yesterday", "auditor").status == 400
    assert driver.call("GET", "/briefs?domain=finance", "auditor").status == 400
    assert driver.call("GET", "/briefs/nope", "auditor").status == 404


def test_feedback_on_briefs_and_envelopes(cloud: LocalCloud, driver: Driver, synth: Synth,
                                          model: dict[str, Any]) -> None:
    """Verdicts through both routes: stored with what scored the item (its weights version), one per
    caller and item (a repeat: 200, unchanged), audited FeedbackRecorded; bad bodies: 400/404."""
    threshold(driver, 10**12)
    doc = score(cloud, driver, [synth.event("same_day") for _ in range(12)])
    batch_id = doc["batchId"]
    assert doc["scores"]["weightsVersion"] == "w-0" and doc["scores"]["canary"] is False
    brief = next(b for b in driver.ok("GET", "/briefs?since=0&limit=200", "auditor")["items"]
                 if b["batchId"] == batch_id)
    brief_id, event_id = brief["brief"]["brief_id"], brief["brief"]["event_ids"][0]
    first = driver.call("POST", f"/briefs/{brief_id}/feedback", "auditor", {"verdict": "useful"})
    assert first.status == 201, first.body
    assert first.json()["weightsVersion"] == "w-0" and first.json()["caller"]
    again = driver.call("POST", f"/briefs/{brief_id}/feedback", "auditor", {"verdict": "useful"})
    assert again.status == 200 and again.json()["at"] == first.json()["at"]
    env = driver.call("POST", f"/scoring/envelopes/{event_id}/feedback", "auditor",
                      {"verdict": "wrong_band", "band": "instant", "batchId": batch_id})
    assert env.status == 201, env.body
    assert env.json()["scoredBand"] == brief["band"] and len(env.json()["scores"]) == 5
    for path, body, status in [
        (f"/scoring/envelopes/{event_id}/feedback", {"verdict": "wrong_band", "batchId": batch_id}, 400),
        (f"/scoring/envelopes/{event_id}/feedback", {"verdict": "useful"}, 400),
        (f"/scoring/envelopes/{event_id}/feedback", {"verdict": "useful", "batchId": "nope"}, 404),
        (f"/briefs/{brief_id}/feedback", {"verdict": "great"}, 400),
        ("/briefs/nope/feedback", {"verdict": "useful"}, 404),
    ]:
        assert driver.call("POST", path, "auditor", body).status == status, (path, body)
    cloud.wait_idle(timeout=30)
    recorded = [e for e in audit_events(driver) if e["type"] == "FeedbackRecorded"]
    assert {e["subject"] for e in recorded} >= {brief_id, event_id}
    weights = driver.ok("GET", "/scoring/weights", "auditor")
    assert weights["active"]["version"] == "w-0" and weights["canary"] is None


@pytest.mark.parametrize("gpu", [False, True], ids=["cpu", "gpu"])
def test_a_tampered_model_file_is_refused(cloud: LocalCloud, driver: Driver, synth: Synth, model: dict[str, Any],
                                          gpu: bool) -> None:
    threshold(driver, 0 if gpu else 10**12)
    s3, bucket = cloud.client("s3"), cloud.resources["BUCKET_SCORING"]
    genuine = s3.get_object(Bucket=bucket, Key=model["modelKey"])["Body"].read()
    s3.put_object(Bucket=bucket, Key=model["modelKey"], Body=genuine[:-1] + bytes([genuine[-1] ^ 1]))
    try:
        doc = score(cloud, driver, synth.mix(10))
    finally:
        s3.put_object(Bucket=bucket, Key=model["modelKey"], Body=genuine)
    assert doc["status"] == "Failed" and doc["runner"] == ("gpu" if gpu else "cpu")
    assert "ModelDigestMismatch" in (doc["error"]["message"] if gpu else doc["error"]["error"]), doc["error"]
    assert model["modelDigest"] in doc["error"]["message"]
    execution = cloud.wait_execution(doc["executionArn"])
    assert execution["status"] == "FAILED" and execution.get("error") == "BatchFailed"
    assert "Scoring failed" in states_entered(cloud, doc["executionArn"])
    lease = cloud.client("dynamodb").get_item(TableName=cloud.resources["TABLE_STATE"],
                                              Key={"pk": {"S": "scoring-lease#corpus"}, "sk": {"S": "DOC"}})
    assert json.loads(lease["Item"]["doc"]["S"])["holder"] is None  # released for the next batch


def test_every_scored_batch_is_audited_with_its_digests(cloud: LocalCloud, driver: Driver,
                                                        model: dict[str, Any]) -> None:
    cloud.wait_idle()
    events = audit_events(driver)
    batches = [d for d in driver.ok("GET", "/scoring/batches", "auditor")["items"] if d["status"] == "Routed"]
    assert batches
    for b in batches:
        # the batch's own steps (a reader's FeedbackRecorded names the batch too, not its digests)
        mine = [e for e in events if e["data"].get("batchId") == b["batchId"] and e["type"] != "FeedbackRecorded"]
        kinds = {e["type"] for e in mine}
        assert {"EventsIngested", "BatchScored"} <= kinds, (b["batchId"], kinds)
        for e in mine:
            assert e["chain"] == "scoring"
            assert e["data"]["batchDigest"] == b["batchDigest"] and e["data"]["modelDigest"] == model["modelDigest"]
    assert {"EventsIngested", "BatchScored", "BriefCreated", "WebhookDelivered"} <= {e["type"] for e in events}


def test_a_second_execution_of_a_finished_batch_changes_nothing(cloud: LocalCloud, driver: Driver,
                                                                model: dict[str, Any]) -> None:
    done = next(d for d in driver.ok("GET", "/scoring/batches", "auditor")["items"] if d["status"] == "Routed")
    sfn = cloud.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=cloud.arns[("state_machine", "scoring")], name=f"again-{uuid.uuid4()}",
                              input=json.dumps({"batchId": done["batchId"]}))["executionArn"]
    assert cloud.wait_execution(arn)["status"] == "SUCCEEDED"
    assert states_entered(cloud, arn) == ["Plan batch", "Already scored"]
    assert driver.ok("GET", f"/scoring/batches/{done['batchId']}", "auditor") == done
