"""Cross-stack references, explicit and stable.

Every resource a stack declares is exported once under a fixed name, ``hallmark-<kind>-<name>-<attr>``
(whether or not another stack uses it yet), and another stack reads it with ``Fn::ImportValue`` of
that name, never through CDK's automatic exports (whose names follow logical ids and which CDK
removes when the last consumer goes, the "deadly embrace" of two-step deploys). Names that are
fixed by the topology (the bus, state machines, queues, function roles, the alarm topic) are not
exported at all: a consumer builds their ARN itself.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Arn, ArnFormat, CfnOutput, Fn, Stack
from aws_cdk import aws_dynamodb as ddb
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import IConstruct

from hallmark_tools.topology import BUS_NAME

ALARM_TOPIC = "hallmark-alarms"
ALARM_TOPIC_KEY_ALIAS = f"alias/{ALARM_TOPIC}"  # the alarm topic's KMS key, for grants in other stacks


DLQ_ALARMS = ("depth", "age")
EXECUTION_ALARMS = ("failed", "timed-out")


def dlq_alarm_name(queue: str, what: str) -> str:
    return f"hallmark-{queue}-dlq-{what}"


def execution_alarm_name(state_machine: str, what: str) -> str:
    return f"hallmark-{state_machine}-executions-{what}"


def export_name(kind: str, name: str, attr: str) -> str:
    return f"hallmark-{kind}-{name}-{attr}".replace("_", "-")


def cid(name: str) -> str:
    return "".join(p.title() for p in name.replace("-", "_").split("_"))


def role_name(stack: Stack, function: str) -> str:
    """A function's role name: fixed, so a key or bucket policy in another stack can name it."""
    return f"hallmark-{function}-{stack.region}"


def role_arn(stack: Stack, function: str) -> str:
    return stack.format_arn(service="iam", region="", resource="role", resource_name=role_name(stack, function))


def state_machine_arn(stack: Stack, name: str) -> str:
    return stack.format_arn(service="states", resource="stateMachine", resource_name=f"hallmark-{name}",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME)


def alarm_topic_arn(stack: Stack) -> str:
    return stack.format_arn(service="sns", resource=ALARM_TOPIC, resource_name=None)


def alarm_arn(stack: Stack, alarm_name: str) -> str:
    return Arn.format({"service": "cloudwatch", "resource": "alarm", "resource_name": alarm_name,
                       "arn_format": ArnFormat.COLON_RESOURCE_NAME}, stack)  # type: ignore[arg-type]


class Registry:
    """Who declares what, and each stack's view of a resource (its own construct, or an import)."""

    def __init__(self) -> None:
        self.owner: dict[tuple[str, str], Stack] = {}
        self.constructs: dict[tuple[str, str], Any] = {}
        self.values: dict[tuple[str, str, str], str] = {}
        self._imports: dict[tuple[str, str, str], Any] = {}
        self.bus_owner: Stack | None = None

    def declare(self, stack: Stack, kind: str, name: str, construct: Any, attrs: dict[str, str]) -> None:
        """``construct`` belongs to ``stack``: export each attribute under its fixed name."""
        if (kind, name) in self.owner:
            raise ValueError(f"{kind} {name} declared twice")
        self.owner[(kind, name)] = stack
        self.constructs[(kind, name)] = construct
        for attr, value in attrs.items():
            self.values[(kind, name, attr)] = value
            CfnOutput(stack, f"Export{cid(kind)}{cid(name)}{cid(attr)}", value=value,
                      export_name=export_name(kind, name, attr))

    def _depend(self, consumer: Stack, owner: Stack) -> None:
        if owner is not consumer and owner not in consumer.dependencies:
            consumer.add_dependency(owner, "reads its exports (cdk/refs.py)")

    def value(self, consumer: Stack, kind: str, name: str, attr: str) -> str:
        owner = self.owner[(kind, name)]
        if owner is consumer:
            return self.values[(kind, name, attr)]
        self._depend(consumer, owner)
        return Fn.import_value(export_name(kind, name, attr))

    def construct(self, consumer: Stack, kind: str, name: str) -> Any:
        """The resource as ``consumer`` may grant on it: its own construct, or one import per stack."""
        if self.owner[(kind, name)] is consumer:
            return self.constructs[(kind, name)]
        memo = (consumer.stack_name, kind, name)
        if memo in self._imports:
            return self._imports[memo]
        arn = self.value(consumer, kind, name, "arn")
        scope_id = f"Imported{cid(kind)}{cid(name)}"
        imported: IConstruct
        if kind == "table":
            imported = ddb.Table.from_table_attributes(consumer, scope_id, table_arn=arn)
        elif kind == "bucket":
            imported = s3.Bucket.from_bucket_attributes(consumer, scope_id, bucket_arn=arn,
                                                        bucket_name=self.value(consumer, kind, name, "name"))
        elif kind == "key":
            imported = kms.Key.from_key_arn(consumer, scope_id, arn)
        elif kind == "queue":
            imported = sqs.Queue.from_queue_attributes(consumer, scope_id, queue_arn=arn,
                                                       queue_url=self.value(consumer, kind, name, "url"))
        elif kind == "function":
            imported = lambda_.Function.from_function_attributes(consumer, scope_id, function_arn=arn,
                                                                 same_environment=True)
        else:
            raise ValueError(f"no import for {kind}")
        self._imports[memo] = imported
        return imported

    def bus(self, consumer: Stack) -> events.IEventBus:
        assert self.bus_owner is not None, "the core stack declares the bus first"
        if self.bus_owner is consumer:
            return self.constructs[("bus", BUS_NAME)]  # type: ignore[no-any-return]
        memo = (consumer.stack_name, "bus", BUS_NAME)
        if memo not in self._imports:
            self._depend(consumer, self.bus_owner)
            self._imports[memo] = events.EventBus.from_event_bus_name(consumer, "ImportedBus", BUS_NAME)
        return self._imports[memo]  # type: ignore[no-any-return]
