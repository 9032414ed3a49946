"""Dispatch: what calls the handlers besides the API. The SQS event-source mappings (a pump
thread receives batches and invokes the queue's function, deleting what succeeded and making
what failed visible again after ``retry_delay_s``), the scheduled rules (every
``schedule_every_s``), and EventBridge rule targets (functions invoked asynchronously, with
Lambda's retries; state machines started with a name derived from the event)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
import traceback
import uuid
from typing import TYPE_CHECKING, Any

from moto.utilities.arns import parse_arn

from hallmark_tools.localcloud import shapes
from hallmark_tools.localcloud.environments import HandlerError, Throttled
from hallmark_tools.topology import Function, env_name

if TYPE_CHECKING:
    from hallmark_tools.localcloud.cloud import LocalCloud

REGION = "us-east-1"
ACCOUNT = shapes.ACCOUNT


def pump_loop(cloud: LocalCloud) -> None:
    sqs = cloud.client("sqs")
    mappings = [(fn, fn.queue) for fn in cloud.topology.functions if fn.queue]
    scheduled = [r for r in cloud.topology.rules if r.schedule and r.target.kind == "function"]
    next_tick = time.monotonic() + cloud.schedule_every_s
    while not cloud._stop.is_set():
        busy = False
        if scheduled and time.monotonic() >= next_tick:
            next_tick = time.monotonic() + cloud.schedule_every_s
            for rule in scheduled:
                _tick(cloud, rule.name, rule.target.name)
        for fn, trig in mappings:
            assert trig is not None
            try:
                busy |= _deliver_batch(cloud, sqs, fn, trig.queue, trig.batch_size)
            except Exception:  # the pump must survive anything a handler does
                if not cloud.quiet:
                    traceback.print_exc()
        if not busy:
            cloud._stop.wait(0.02)

def _tick(cloud: LocalCloud, rule: str, function: str) -> None:
    event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
             "account": ACCOUNT, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "region": REGION,
             "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/hallmark-{rule}"], "detail": {}}
    try:
        cloud.invoke(function, event)
    except HandlerError:
        if not cloud.quiet:
            traceback.print_exc()

def _deliver_batch(cloud: LocalCloud, sqs: Any, fn: Function, queue: str, batch_size: int) -> bool:
    url = cloud.resources[env_name("queue", queue)]
    msgs = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=min(batch_size, 10), AttributeNames=["All"], WaitTimeSeconds=0
    ).get("Messages", [])
    if not msgs:
        return False
    with cloud._inflight_lock:
        cloud._inflight += 1
    try:
        chaos = cloud.chaos
        # a message chaos poisoned fails every delivery, before the handler, until SQS dead-letters it
        poisoned = {m["MessageId"] for m in msgs if m["MessageId"] in cloud.poisoned}
        live = [m for m in msgs if m["MessageId"] not in poisoned]
        event = {"Records": [shapes.sqs_record(m, cloud.arns[("queue", queue)], REGION) for m in live]}
        try:
            if not live:
                raise HandlerError("ChaosError", "injected: a poisoned message")
            if chaos is not None and chaos.roll("queue_error"):
                raise HandlerError("ChaosError", "injected before the handler ran")
            result = cloud.invoke(fn.name, event, source="sqs") or {}
            if chaos is not None and chaos.roll("queue_late"):
                raise HandlerError("Sandbox.Timedout", "injected: the handler ran, its result is discarded")
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
            if chaos is not None and chaos.roll("queue_duplicate"):
                with contextlib.suppress(HandlerError):  # the same records once more: at least once
                    cloud.invoke(fn.name, event, source="sqs")
            if chaos is not None and chaos.roll("queue_dead_letter"):
                for m in live:  # a second copy of each, which will fail until it is dead-lettered
                    if m["MessageId"] not in failed:
                        cloud.poisoned.add(_send_copy(sqs, url, m))
            failed |= poisoned
        except HandlerError:
            failed = {m["MessageId"] for m in msgs}
        for m in msgs:
            if m["MessageId"] in failed:
                sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=cloud.retry_delay_s
                )
        done = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)
                if m["MessageId"] not in failed]
        if done:  # one call for the batch, as the event-source mapping deletes
            sqs.delete_message_batch(QueueUrl=url, Entries=done)
    finally:
        with cloud._inflight_lock:
            cloud._inflight -= 1
    return True


def _send_copy(sqs: Any, url: str, message: dict[str, Any]) -> str:
    """Send ``message`` again (FIFO: same group, a deduplication id of its own); the copy's id."""
    request: dict[str, Any] = {"QueueUrl": url, "MessageBody": message["Body"]}
    if url.endswith(".fifo"):
        attributes = message.get("Attributes", {})
        request["MessageGroupId"] = attributes["MessageGroupId"]
        original = attributes.get("MessageDeduplicationId") or message["MessageId"]
        request["MessageDeduplicationId"] = hashlib.sha256(f"{original}.chaos".encode()).hexdigest()
    return str(sqs.send_message(**request)["MessageId"])


def deliver_rule_target(cloud: LocalCloud, target: dict[str, Any], event: dict[str, Any]) -> None:
    arn = parse_arn(target["Arn"])
    payload = shapes.normalize_eventbridge(event)
    if arn.service == "lambda":
        name = arn.resource_id

        def run() -> None:
            attempt = throttles = 0
            chaos = cloud.chaos
            while attempt < 3 and not cloud._stop.is_set():  # async invoke: Lambda retries twice
                try:
                    if chaos is not None and chaos.roll("event_error"):
                        raise HandlerError("ChaosError", "injected before the handler ran")
                    cloud.invoke(name, payload, source="events")
                    if chaos is not None and chaos.roll("event_duplicate"):
                        with contextlib.suppress(HandlerError):  # EventBridge is at least once
                            cloud.invoke(name, payload, source="events")
                    return
                except Throttled:
                    # Lambda keeps a throttled async event queued and retries it (up to 6 h):
                    # a throttle is no attempt
                    throttles += 1
                    time.sleep(min(1.0, 0.02 * throttles))
                except HandlerError:
                    attempt += 1
                    time.sleep(0.05 * attempt)

        threading.Thread(target=run, daemon=True).start()
    elif arn.service == "states":
        # A name derived from the event keeps a redelivered event from starting a second
        # execution (moto reuses one event id for every S3 notification, so hash it all).
        name = str(uuid.uuid5(uuid.NAMESPACE_URL, json.dumps(payload, sort_keys=True)))
        sfn = cloud.client("stepfunctions")
        sfn.start_execution(stateMachineArn=target["Arn"], name=name, input=json.dumps(payload))
        if cloud.chaos is not None and cloud.chaos.roll("event_duplicate"):
            with contextlib.suppress(Exception):  # the same name: ExecutionAlreadyExists or a no-op
                sfn.start_execution(stateMachineArn=target["Arn"], name=name, input=json.dumps(payload))
