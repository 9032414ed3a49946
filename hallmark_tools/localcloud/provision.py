"""Provisioning: the declared topology created on moto (keys, tables, buckets, queues with their
dead-letter queues, the bus, functions, state machines with their ASL rendered, rules), and the
GPU runner's Batch resources (``localcloud.batch``)."""

from __future__ import annotations

import io
import json
import re
import zipfile
from typing import TYPE_CHECKING, Any

from hallmark_tools.localcloud import batch, shapes
from hallmark_tools.topology import BUS_NAME, Topology, env_name, resolve_pattern

if TYPE_CHECKING:
    from hallmark_tools.localcloud.cloud import LocalCloud

ROOT = batch.ROOT
REGION = "us-east-1"
ACCOUNT = shapes.ACCOUNT


def physical_name(topology: Topology, kind: str, name: str) -> str:
    base = f"hallmark-{name}"
    if kind == "queue" and any(q.fifo and name in (q.name, q.dlq_name) for q in topology.queues):
        return base + ".fifo"
    return base

def provision(cloud: LocalCloud) -> None:
    t = cloud.topology
    iam, kms, ddb, s3, sqs, events, sfn, lam = (
        cloud.client(s) for s in ("iam", "kms", "dynamodb", "s3", "sqs", "events", "stepfunctions", "lambda")
    )
    role = iam.create_role(
        RoleName="hallmark-local",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    for key in t.keys:
        spec = {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"} if key.signing else {}
        meta = kms.create_key(Description=f"hallmark {key.name}", **spec)["KeyMetadata"]
        if cloud.state is not None:
            meta = cloud.state.adopt_key(key.name, meta)  # the saved key's id, ARN and material
        kms.create_alias(AliasName=f"alias/hallmark-{key.name}", TargetKeyId=meta["KeyId"])
        cloud.resources[env_name("key", key.name)] = meta["Arn"]
        cloud.arns[("key", key.name)] = meta["Arn"]
    for table in t.tables:
        attrs = [{"AttributeName": table.partition_key, "AttributeType": "S"}]
        schema = [{"AttributeName": table.partition_key, "KeyType": "HASH"}]
        if table.sort_key:
            attrs.append({"AttributeName": table.sort_key, "AttributeType": "S"})
            schema.append({"AttributeName": table.sort_key, "KeyType": "RANGE"})
        name = physical_name(t, "table", table.name)
        desc = ddb.create_table(
            TableName=name, AttributeDefinitions=attrs, KeySchema=schema, BillingMode="PAY_PER_REQUEST"
        )["TableDescription"]
        if table.ttl_attribute:
            ddb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
            )
        cloud.resources[env_name("table", table.name)] = name
        cloud.arns[("table", table.name)] = desc["TableArn"]
    for bucket in t.buckets:
        name = f"hallmark-{bucket.name}-{ACCOUNT}"
        s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=bucket.object_lock)
        if bucket.versioned or bucket.object_lock:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        if bucket.eventbridge:
            s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
            )
        cloud.resources[env_name("bucket", bucket.name)] = name
        cloud.arns[("bucket", bucket.name)] = f"arn:aws:s3:::{name}"
    for queue in t.queues:
        fifo_attrs: dict[str, str] = {"FifoQueue": "true"} if queue.fifo else {}
        dlq_url = sqs.create_queue(
            QueueName=physical_name(t, "queue", queue.dlq_name), Attributes=fifo_attrs
        )["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        queue_attrs: dict[str, str] = {
            **fifo_attrs,
            "VisibilityTimeout": str(queue.visibility_timeout),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": queue.max_receive_count}
            ),
        }
        if queue.fifo and queue.content_based_dedup:
            queue_attrs["ContentBasedDeduplication"] = "true"
        url = sqs.create_queue(QueueName=physical_name(t, "queue", queue.name), Attributes=queue_attrs)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        cloud.resources[env_name("queue", queue.name)] = url
        cloud.resources[env_name("queue", queue.dlq_name)] = dlq_url
        cloud.arns[("queue", queue.name)] = arn
        cloud.arns[("queue", queue.dlq_name)] = dlq_arn
    events.create_event_bus(Name=BUS_NAME)
    cloud.resources[env_name("bus", BUS_NAME)] = BUS_NAME
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("app.py", "def handler(event, context):\n    return event\n")
    for fn in t.functions:
        arn = lam.create_function(
            FunctionName=fn.name,
            Runtime="python3.12",
            Role=role,
            Handler=fn.handler,
            Code={"ZipFile": zipped.getvalue()},
            Timeout=fn.timeout,
            MemorySize=fn.memory,
        )["FunctionArn"]
        cloud.arns[("function", fn.name)] = arn
    for sm in t.state_machines:
        cloud.arns[("state_machine", sm.name)] = (
            f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:hallmark-{sm.name}"
        )
        cloud.resources[env_name("state_machine", sm.name)] = cloud.arns[("state_machine", sm.name)]
    for sm in t.state_machines:
        sfn.create_state_machine(
            name=f"hallmark-{sm.name}", definition=render_asl(cloud, sm.name), roleArn=role, type="STANDARD"
        )
    for rule in t.rules:
        bus = BUS_NAME if rule.bus == "hallmark" else "default"
        if rule.schedule:
            events.put_rule(Name=f"hallmark-{rule.name}", EventBusName=bus, ScheduleExpression=rule.schedule)
        else:
            pattern = resolve_pattern(rule.pattern, lambda kind, name: cloud.resources[env_name(kind, name)])
            events.put_rule(Name=f"hallmark-{rule.name}", EventBusName=bus, EventPattern=json.dumps(pattern))
        target: dict[str, Any] = {"Id": "1", "Arn": cloud.arns[(rule.target.kind, rule.target.name)]}
        if rule.target.message_group:
            target["SqsParameters"] = {"MessageGroupId": rule.target.message_group}
        events.put_targets(Rule=f"hallmark-{rule.name}", EventBusName=bus, Targets=[target])
    if any(sm.name == "scoring" for sm in t.state_machines):
        cloud.resources.update(batch.provision(cloud))
    if any(sm.name == "deployment" for sm in t.state_machines):
        from hallmark_tools.localcloud import deployments

        cloud.resources.update(deployments.provision(iam, cloud.client("sns")))


def render_asl(cloud: LocalCloud, name: str) -> str:
    sm = next(s for s in cloud.topology.state_machines if s.name == name)
    text = (ROOT / "statemachines" / sm.asl).read_text()
    for placeholder, (kind, value) in sm.substitutions.items():
        if kind == "literal":
            resolved = value
        elif kind == "queue":
            resolved = cloud.resources[env_name("queue", value)]
        elif kind == "table":
            resolved = cloud.resources[env_name("table", value)]
        else:
            resolved = cloud.arns[(kind, value)]
        text = text.replace("${" + placeholder + "}", resolved)
    leftover = re.findall(r"\$\{(\w+)\}", text)
    if leftover:
        raise ValueError(f"{sm.asl}: unresolved substitutions {leftover}")
    return text
