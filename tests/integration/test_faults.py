"""Faults on the local cloud (issue 9, item 5): KMS throttled or unavailable, DynamoDB conditional
failures and throttling, an audit writer that crashes mid-batch. The flow retries, dead-letters
after the limit, and after a redrive ends exactly as if no fault had happened: the release chain
holds each of the package's events once (the same events a fault-free release makes), and the
exported chain verifies with the audit public key alone.

Faults are injected with ``LocalCloud.inject_error`` (a botocore ``before-call``/``after-call``
hook on the handlers' boto3 session), narrowed to one package so nothing else is disturbed.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from hallmark.audit.replay import verify_export
from hallmark_tools import samples
from hallmark_tools.driver import Driver
from hallmark_tools.export import export_keys
from hallmark_tools.localcloud.cloud import LocalCloud
from hallmark_tools.ops import redrive
from hallmark_tools.topology import env_name


class Needles:
    """Which calls a fault applies to: those whose parameters mention one of these strings."""

    def __init__(self, *needles: str) -> None:
        self.needles = set(needles)

    def __call__(self, params: dict[str, Any]) -> bool:
        text = json.dumps(params, default=str)
        return any(n in text for n in self.needles)


def _package_doc_writes(needles: Needles) -> Callable[[dict[str, Any]], bool]:
    """The versioned (conditional) writes of the package documents ``needles`` names."""

    def matches(params: dict[str, Any]) -> bool:
        return "version = :v" in str(params.get("ConditionExpression", "")) and needles(params)

    return matches


def _submit(driver: Driver, name: str, needles: Needles | None = None) -> str:
    """POST /packages, then the presigned upload; the package id joins ``needles`` before the
    upload starts the execution, so a fault can target every step of this one package."""
    body = samples.clean_package(name)
    created = driver.ok("POST", "/packages", "submitter", samples.submission(name, "1.0.0", body))
    if needles is not None:
        needles.needles.add(created["packageId"])
    resp = requests.put(created["uploadUrl"], data=body, headers=created["uploadHeaders"], timeout=30)
    assert resp.status_code < 300, resp.text[:300]
    return str(created["packageId"])


def _events(subject: str) -> list[dict[str, Any]]:
    from hallmark.adapters.runtime import audit_log

    lines, _ = audit_log().export("release")
    return [e for e in map(json.loads, lines) if e["subject"] == subject]


def _assert_chain_verifies(cloud: LocalCloud, tmp_path: Path) -> None:
    from hallmark.adapters.runtime import audit_log

    log = audit_log()
    log.checkpoint_now("release")
    events, checkpoints = log.export("release")
    pem = export_keys(tmp_path / "keys", cloud.client("kms"))["audit"].read_bytes()
    report = verify_export(events, checkpoints, pem)
    assert report.ok, report
    seqs = [json.loads(e)["seq"] for e in events]
    assert seqs == list(range(1, len(seqs) + 1))
    ids = [json.loads(e)["id"] for e in events]
    assert len(ids) == len(set(ids)), "an event id appears twice on the chain"


def _assert_as_if_no_fault(subject: str, baseline: Counter[str]) -> None:
    events = _events(subject)
    assert Counter(e["type"] for e in events) == baseline, [e["type"] for e in events]
    assert len({e["id"] for e in events}) == len(events)


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _execution(cloud: LocalCloud, package_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """The package's release execution, once it has ended (found by its input: the upload event,
    so also when the first step fails before the package records the execution)."""
    sfn = cloud.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while True:
        for listed in cloud.executions("release"):
            desc = sfn.describe_execution(executionArn=listed["executionArn"])
            if package_id in desc.get("input", ""):
                return cloud.wait_execution(listed["executionArn"], timeout=max(1.0, deadline - time.monotonic()))
        assert time.monotonic() < deadline, f"no release execution for {package_id}"
        time.sleep(0.1)


def _task_failures(cloud: LocalCloud, execution_arn: str) -> int:
    history = cloud.client("stepfunctions").get_execution_history(executionArn=execution_arn, maxResults=1000)
    return sum(1 for e in history["events"] if e["type"] == "TaskFailed")


@pytest.fixture(scope="module")
def baseline(shared_cloud: LocalCloud, driver: Driver) -> Counter[str]:
    """The release events of a package released with no fault at all."""
    pid = _submit(driver, "fault-baseline")
    assert driver.wait_package(pid, timeout=60)["status"] == "Published"
    shared_cloud.wait_idle(timeout=30)
    counts = Counter(e["type"] for e in _events(pid))
    assert counts["ManifestSigned"] == 1 and counts["PackagePublished"] == 1, counts
    return counts


def test_kms_sign_throttled_is_retried_and_the_release_publishes(
        shared_cloud: LocalCloud, driver: Driver, baseline: Counter[str], tmp_path: Path) -> None:
    key = shared_cloud.resources[env_name("key", "manifest")]
    with shared_cloud.inject_error("kms", "Sign", "ThrottlingException", times=2,
                                   when=lambda p: p.get("KeyId") == key) as fault:
        pid = _submit(driver, "fault-kms-throttle")
        execution = _execution(shared_cloud, pid)
    assert fault.injected == 2
    assert execution["status"] == "SUCCEEDED", execution
    assert _task_failures(shared_cloud, execution["executionArn"]) == 2  # Step Functions Retry, twice
    assert driver.package(pid)["status"] == "Published"
    shared_cloud.wait_idle(timeout=30)
    _assert_as_if_no_fault(pid, baseline)
    _assert_chain_verifies(shared_cloud, tmp_path)


def test_kms_unavailable_is_retried_and_the_release_publishes(
        shared_cloud: LocalCloud, driver: Driver, baseline: Counter[str]) -> None:
    key = shared_cloud.resources[env_name("key", "manifest")]
    with shared_cloud.inject_error("kms", "Sign", "KMSInternalException", status=500, times=1,
                                   when=lambda p: p.get("KeyId") == key) as fault:
        pid = _submit(driver, "fault-kms-down")
        execution = _execution(shared_cloud, pid)
    assert fault.injected == 1
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    assert driver.package(pid)["status"] == "Published"


def test_conditional_check_failed_on_the_state_doc_is_retried(
        shared_cloud: LocalCloud, driver: Driver, baseline: Counter[str], tmp_path: Path) -> None:
    """Writes that lose a race on the package document (its version condition): the step re-reads
    and retries in-process (hallmark.docstore.update, 5 attempts), then raises Conflict, which
    the state machine retries; the retried step succeeds."""
    needles = Needles()
    with shared_cloud.inject_error("dynamodb", "PutItem", "ConditionalCheckFailedException", times=6,
                                   when=_package_doc_writes(needles)) as fault:
        pid = _submit(driver, "fault-ddb-race", needles)
        execution = _execution(shared_cloud, pid)
    assert fault.injected == 6
    assert execution["status"] == "SUCCEEDED", execution
    assert _task_failures(shared_cloud, execution["executionArn"]) == 1  # 5 in-step attempts, then one Retry
    assert driver.package(pid)["status"] == "Published"
    shared_cloud.wait_idle(timeout=30)
    _assert_as_if_no_fault(pid, baseline)
    _assert_chain_verifies(shared_cloud, tmp_path)


def test_dynamodb_throttling_in_a_release_step_is_retried(
        shared_cloud: LocalCloud, driver: Driver, baseline: Counter[str]) -> None:
    needles = Needles()
    with shared_cloud.inject_error("dynamodb", "PutItem", "ProvisionedThroughputExceededException", times=1,
                                   when=_package_doc_writes(needles)) as fault:
        pid = _submit(driver, "fault-ddb-throttle", needles)
        execution = _execution(shared_cloud, pid)
    assert fault.injected == 1
    assert execution["status"] == "SUCCEEDED", execution.get("cause")


def test_audit_writer_crashing_after_its_write_is_retried_without_a_duplicate(
        shared_cloud: LocalCloud, driver: Driver, baseline: Counter[str], tmp_path: Path) -> None:
    """The append commits, then the writer fails (a crash or a lost response) in the middle of its
    batch: SQS redelivers that record and the rest of the batch; the idempotent append (on the
    event id) makes no second entry."""
    needles = Needles("fault-writer-crash")
    with shared_cloud.inject_error("dynamodb", "TransactWriteItems", "InternalServerError", status=500,
                                   times=3, after_call=True, when=needles) as fault:
        pid = _submit(driver, "fault-writer-crash", needles)
        assert driver.wait_package(pid, timeout=30)["status"] == "Published"
        shared_cloud.wait_idle(timeout=30)
    assert fault.injected == 3
    assert shared_cloud.queue_depth("audit-dlq") == 0
    _assert_as_if_no_fault(pid, baseline)
    _assert_chain_verifies(shared_cloud, tmp_path)


def test_audit_writer_failing_dead_letters_after_the_limit_and_a_redrive_appends_each_event_once(
        shared_cloud: LocalCloud, driver: Driver, baseline: Counter[str], tmp_path: Path) -> None:
    """The writer's DynamoDB transaction is throttled for every event of one package: each message
    is received max_receive_count times, then lands in the audit DLQ; the release itself is
    unaffected. Redriven once the fault is gone, every event is appended exactly once."""
    sqs = shared_cloud.client("sqs")
    dlq_url = shared_cloud.resources[env_name("queue", "audit-dlq")]
    source_url = shared_cloud.resources[env_name("queue", "audit")]
    assert shared_cloud.queue_depth("audit-dlq") == 0
    needles = Needles("fault-dead-letter")
    expected = sum(baseline.values())
    with shared_cloud.inject_error("dynamodb", "TransactWriteItems", "ProvisionedThroughputExceededException",
                                   times=None, when=needles) as fault:
        pid = _submit(driver, "fault-dead-letter", needles)
        assert driver.wait_package(pid, timeout=30)["status"] == "Published"
        _wait(lambda: shared_cloud.queue_depth("audit-dlq") == expected, 30, f"{expected} messages in the DLQ")
        shared_cloud.wait_idle(timeout=30)
    # The FIFO batch processor stops at a batch's first failure (the rest of the batch is failed
    # unattempted), so every message was received max_receive_count (5) times, not always written.
    assert fault.injected >= 1
    assert _events(pid) == []  # nothing of this package on the chain yet ...
    _assert_chain_verifies(shared_cloud, tmp_path / "before")  # ... and the rest of it intact

    dead = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, AttributeNames=["All"],
                               VisibilityTimeout=0)["Messages"]
    assert {m["Attributes"]["MessageGroupId"] for m in dead} == {"release"}
    assert all(int(m["Attributes"]["ApproximateReceiveCount"]) > 5 for m in dead)
    assert {json.loads(m["Body"])["subject"] for m in dead} == {pid}

    assert redrive(sqs, dlq_url, source_url) == expected
    shared_cloud.wait_idle(timeout=30)
    assert shared_cloud.queue_depth("audit-dlq") == 0
    _assert_as_if_no_fault(pid, baseline)
    _assert_chain_verifies(shared_cloud, tmp_path / "after")
    # A second redrive of an empty DLQ moves nothing and changes nothing.
    assert redrive(sqs, dlq_url, source_url) == 0
    _assert_as_if_no_fault(pid, baseline)


def test_redrive_keeps_group_and_order_and_a_repeated_send_is_deduplicated(shared_cloud: LocalCloud) -> None:
    """redrive() on its own: FIFO order within a group, attributes kept, and a message redriven
    twice (a crash between send and delete) is dropped by SQS the second time."""
    sqs = shared_cloud.client("sqs")
    src = sqs.create_queue(QueueName="redrive-src.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    dlq = sqs.create_queue(QueueName="redrive-dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    for i in range(13):
        sqs.send_message(QueueUrl=dlq, MessageBody=f"m{i}", MessageGroupId="g1" if i % 2 else "g0",
                         MessageDeduplicationId=f"d{i}",
                         MessageAttributes={"n": {"DataType": "Number", "StringValue": str(i)}})
    assert redrive(sqs, dlq, src, limit=5) == 5
    assert redrive(sqs, dlq, src) == 8
    got: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=src, MaxNumberOfMessages=10, AttributeNames=["All"],
                                       MessageAttributeNames=["All"]).get("Messages", []):
        got += batch
        for m in batch:
            sqs.delete_message(QueueUrl=src, ReceiptHandle=m["ReceiptHandle"])
    assert sorted(m["Body"] for m in got) == sorted(f"m{i}" for i in range(13))
    for group, parity in (("g0", 0), ("g1", 1)):
        bodies = [m["Body"] for m in got if m["Attributes"]["MessageGroupId"] == group]
        assert bodies == [f"m{i}" for i in range(13) if i % 2 == parity]
    assert all(m["MessageAttributes"]["n"]["StringValue"] == m["Body"][1:] for m in got)
    assert {m["Attributes"]["MessageDeduplicationId"] for m in got} == {f"d{i}.r" for i in range(13)}
