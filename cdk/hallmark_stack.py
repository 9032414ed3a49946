"""A Hallmark concern stack, synthesized from its share of the one declared topology
(hallmark_tools.topology): signing keys, storage, messaging, the function layers and functions,
workflows (Step Functions from the ASL files), rules. The HTTP API is cdk/api_stack.py. Every cdk-nag acknowledgment
carries its reason where it is made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsii
from aws_cdk import (
    Acknowledgment,
    BundlingOptions,
    DockerImage,
    Duration,
    ILocalBundling,
    RemovalPolicy,
    Stack,
    Validations,
)
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_dynamodb as ddb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cdk.alarms import AlarmTopic
from cdk.deployment import DeploymentInfra
from cdk.refs import (
    Registry,
    dlq_alarm_name,
    execution_alarm_name,
    export_name,
    role_arn,
    role_name,
    state_machine_arn,
)
from cdk.scoring_batch import ScoringBatch
from hallmark.release.steps import PIN_PREFIX
from hallmark_tools.layers import REQUIREMENTS, layers_for
from hallmark_tools.topology import BUS_NAME, Access, Topology, env_for, resolve_pattern
from hallmark_tools.topology.deployment import DEPLOYERS

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = lambda_.Runtime.PYTHON_3_13
DLQ_MAX_AGE_S = 3600
"""A dead-lettered message nobody redrove within this long pages (besides the depth alarm)."""


def acknowledge(scope: Construct, rule: str, reason: str) -> None:
    """A cdk-nag acknowledgment with its reason; on a function it covers the function's role too
    (the roles are the stack's own constructs, with fixed names, not the function's children)."""
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))
    if isinstance(scope, lambda_.Function) and isinstance(scope.role, Construct) and scope.role.node.scope is not scope:
        Validations.of(scope.role).acknowledge(Acknowledgment(id=rule, reason=reason))


@jsii.implements(ILocalBundling)
class PipLayerBundler:
    """Builds the dependency layer with pip for the Lambda platform, without Docker."""

    def __init__(self, requirements: Path) -> None:
        self.requirements = requirements

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_: Any) -> bool:
        import subprocess
        import sys

        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile",
             "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_28_x86_64", "--only-binary=:all:", "--python-version", "3.13",
             "--implementation", "cp", "-t", f"{output_dir}/python", "-r", str(self.requirements)],
            check=True,
        )
        return True


class ConcernStack(Stack):
    """The resources of one or more topology concerns (``own``), reading the other stacks'
    resources through ``refs`` (explicit, fixed-name exports; see cdk/refs.py)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topology: Topology,
        own: Topology,
        refs: Registry,
        owns_bus: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.topology = topology
        self.own = own
        self.refs = refs
        self.functions: dict[str, lambda_.Function] = {}
        self.queues: dict[str, sqs.Queue] = {}
        self.dlqs: dict[str, sqs.Queue] = {}
        self.state_machines: dict[str, sfn.StateMachine] = {}
        self.buckets: dict[str, s3.Bucket] = {}
        self.tables: dict[str, ddb.Table] = {}
        self.keys: dict[str, kms.Key] = {}
        self.alarms: list[cw.Alarm] = []

        if owns_bus:
            self.bus = events.EventBus(self, "Bus", event_bus_name=BUS_NAME)
            refs.bus_owner = self
            refs.constructs[("bus", BUS_NAME)] = self.bus
            self.alarm_topic = AlarmTopic(self, "Alarms")
        self._keys()
        self._storage()
        self._messaging()
        self._functions()
        self._workflows()
        self._rules()
        deployers = [self.functions[n] for n in DEPLOYERS if n in self.functions]
        if deployers:
            self.deployment = DeploymentInfra(self, "Deployment", deployers=deployers)
        if "scoring" in self.state_machines:
            self.scoring_batch = ScoringBatch(self, "ScoringBatch", bucket=self._construct("bucket", "scoring"),
                                              state_machine=self.state_machines["scoring"])

    def _value(self, kind: str, name: str, attr: str) -> str:
        return self.refs.value(self, kind, name, attr)

    def _construct(self, kind: str, name: str) -> Any:
        return self.refs.construct(self, kind, name)

    # ------------------------------------------------------------ signing keys
    def _keys(self) -> None:
        for key in self.own.keys:
            k = kms.Key(
                self, f"{key.name.title()}Key",
                alias=f"alias/hallmark-{key.name}",
                description=f"Hallmark {key.name} key",
                key_spec=kms.KeySpec.ECC_NIST_P256 if key.signing else kms.KeySpec.SYMMETRIC_DEFAULT,
                key_usage=kms.KeyUsage.SIGN_VERIFY if key.signing else kms.KeyUsage.ENCRYPT_DECRYPT,
                enable_key_rotation=not key.signing,
                removal_policy=RemovalPolicy.RETAIN,
            )
            self.keys[key.name] = k
            self.refs.declare(self, "key", key.name, k, {"arn": k.key_arn})
            signers = [f.name for f in self.topology.functions
                       if any(a.kind == "key" and a.name == key.name and "sign" in a.modes for a in f.access)]
            if signers:
                # Only the signer roles (wherever their stack) may ever call kms:Sign with this key:
                # an explicit Deny for everyone else. The roles have fixed names (cdk/refs.py).
                k.add_to_resource_policy(iam.PolicyStatement(
                    sid="OnlySignerRolesMaySign",
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=["kms:Sign"],
                    resources=["*"],
                    conditions={"ArnNotEquals": {"aws:PrincipalArn": [role_arn(self, f) for f in signers]}},
                ))

    # ------------------------------------------------------------ storage
    def _storage(self) -> None:
        if self.own.buckets:
            self.access_logs = s3.Bucket(
                self, "AccessLogs",
                encryption=s3.BucketEncryption.S3_MANAGED,
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                enforce_ssl=True,
                versioned=True,
                # ACLs off: CDK then grants S3 log delivery (logging.s3.amazonaws.com) by bucket policy.
                object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
                removal_policy=RemovalPolicy.RETAIN,
            )
            acknowledge(self.access_logs, "AwsSolutions-S1",
                        "This is the server access log bucket itself; logging it into itself would loop.")
        for b in self.own.buckets:
            bucket = s3.Bucket(
                self, f"{b.name.title()}Bucket",
                encryption=s3.BucketEncryption.S3_MANAGED,
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                enforce_ssl=True,
                versioned=b.versioned or b.object_lock,
                object_lock_enabled=b.object_lock or None,
                object_lock_default_retention=s3.ObjectLockRetention.governance(Duration.days(365))
                if b.object_lock else None,
                event_bridge_enabled=b.eventbridge,
                server_access_logs_bucket=self.access_logs,
                server_access_logs_prefix=f"{b.name}/",
                removal_policy=RemovalPolicy.RETAIN,
            )
            self.buckets[b.name] = bucket
            self.refs.declare(self, "bucket", b.name, bucket, {"name": bucket.bucket_name, "arn": bucket.bucket_arn})
        for t in self.own.tables:
            table = ddb.Table(
                self, f"{t.name.title().replace('_', '')}Table",
                partition_key=ddb.Attribute(name=t.partition_key, type=ddb.AttributeType.STRING),
                sort_key=ddb.Attribute(name=t.sort_key, type=ddb.AttributeType.STRING) if t.sort_key else None,
                billing_mode=ddb.BillingMode.PAY_PER_REQUEST,
                point_in_time_recovery_specification=ddb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=True),
                encryption=ddb.TableEncryption.AWS_MANAGED,
                time_to_live_attribute=t.ttl_attribute,
                removal_policy=RemovalPolicy.RETAIN,
            )
            self.tables[t.name] = table
            self.refs.declare(self, "table", t.name, table, {"name": table.table_name, "arn": table.table_arn})

    # ------------------------------------------------------------ messaging
    def _messaging(self) -> None:
        for q in self.own.queues:
            suffix = ".fifo" if q.fifo else ""
            dlq = sqs.Queue(
                self, f"{q.name.title().replace('_', '')}Dlq",
                queue_name=f"hallmark-{q.dlq_name}{suffix}",  # stable names: `hallmark ops redrive` finds them
                fifo=q.fifo or None,
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                retention_period=Duration.days(14),
            )
            acknowledge(dlq, "AwsSolutions-SQS3", "This queue is itself a dead-letter queue.")
            queue = sqs.Queue(
                self, f"{q.name.title().replace('_', '')}Queue",
                queue_name=f"hallmark-{q.name}{suffix}",
                fifo=q.fifo or None,
                content_based_deduplication=(q.fifo and q.content_based_dedup) or None,
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                visibility_timeout=Duration.seconds(q.visibility_timeout),
                dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=q.max_receive_count),
            )
            self.queues[q.name] = queue
            self.dlqs[q.name] = dlq
            self.refs.declare(self, "queue", q.name, queue, {"url": queue.queue_url, "arn": queue.queue_arn})
            self.refs.declare(self, "queue", q.dlq_name, dlq, {"url": dlq.queue_url, "arn": dlq.queue_arn})
            for what, metric, threshold, why in (
                ("depth", dlq.metric_approximate_number_of_messages_visible(period=Duration.minutes(1)), 0,
                 "Messages in"),
                ("age", dlq.metric_approximate_age_of_oldest_message(period=Duration.minutes(5), statistic="Maximum"),
                 DLQ_MAX_AGE_S, f"A message older than {DLQ_MAX_AGE_S // 3600} h waits in"),
            ):
                self.alarms.append(cw.Alarm(
                    self, f"{_cid(q.name)}Dlq{what.title()}",
                    alarm_name=dlq_alarm_name(q.name, what),
                    alarm_description=f"{why} the {q.name} dead-letter queue: see docs/runbooks/publish_retries.md",
                    metric=metric,
                    threshold=threshold,
                    comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                    evaluation_periods=1,
                    treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                ))

    # ------------------------------------------------------------ functions
    def _functions(self) -> None:
        if not self.own.functions:
            return
        self.layer = lambda_.LayerVersion(
            self, "HallmarkLayer",
            code=lambda_.Code.from_asset(str(ROOT / "layers" / "hallmark"), exclude=["**/__pycache__", "requirements.txt", "**/*.so"]),  # pure Python: the replay kernel is a CLI speed-up
            compatible_runtimes=[RUNTIME],
            description="The hallmark domain library (runtime code only)",
        )
        needed = {name: layers_for(fn.code_dir) for name, fn in ((f.name, f) for f in self.own.functions)}
        self.deps_layers: dict[str, lambda_.LayerVersion] = {}
        for layer in sorted({x for v in needed.values() for x in v}):
            requirements = REQUIREMENTS[layer]
            self.deps_layers[layer] = lambda_.LayerVersion(
                self, "DependenciesLayer" if layer == "lean" else f"{_cid(layer)}DependenciesLayer",
                code=lambda_.Code.from_asset(
                    str(requirements.parent),
                    exclude=["python"],  # only requirements.txt: the lean layer's folder holds the domain code
                    bundling=BundlingOptions(
                        image=DockerImage.from_registry("public.ecr.aws/sam/build-python3.13"),
                        command=["bash", "-c", "pip install -r requirements.txt -t /asset-output/python"],
                        local=PipLayerBundler(requirements),
                    ),
                ),
                compatible_runtimes=[RUNTIME],
                description="Third-party runtime dependencies of every function" if layer == "lean"
                else f"The {layer} functions' own dependencies (hallmark_tools/layers.py)",
            )
        for fn in self.own.functions:
            log_group = logs.LogGroup(
                self, f"{_cid(fn.name)}Logs",
                retention=logs.RetentionDays.THREE_MONTHS,
                removal_policy=RemovalPolicy.RETAIN,
            )
            env = env_for(fn, self._physical, self.topology.functions)  # the local cloud gives the same
            # A sealed function (the smoke runner) gets a role without one permission:
            # no managed policy, no inline statement, so no X-Ray tracing (it needs xray:Put*) and no
            # log delivery. Its credentials, which any code it runs can read, open nothing.
            sealed = fn.sealed
            role = iam.Role(
                self, f"{_cid(fn.name)}{'SealedRole' if sealed else 'Role'}",
                role_name=role_name(self, fn.name),  # fixed: key and bucket policies elsewhere name it
                assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),  # type: ignore[arg-type]
                description=f"{fn.name}: no permissions at all (DESIGN.md: sealed smoke runner)" if sealed
                else f"Hallmark function {fn.name}",
                managed_policies=None if sealed else [
                    iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AWSLambdaBasicExecutionRole")],
            )
            function = lambda_.Function(
                self, _cid(fn.name),
                description=fn.description,
                runtime=RUNTIME,
                handler=fn.handler,
                code=lambda_.Code.from_asset(str(ROOT / "functions" / fn.code_dir), exclude=["**/__pycache__"]),
                layers=[*(self.deps_layers[x] for x in needed[fn.name]), self.layer],
                memory_size=fn.memory,
                timeout=Duration.seconds(fn.timeout),
                reserved_concurrent_executions=fn.reserved_concurrency,
                tracing=lambda_.Tracing.PASS_THROUGH if sealed else lambda_.Tracing.ACTIVE,
                log_group=log_group,
                environment=env,
                role=role.without_policy_updates() if sealed else role,  # type: ignore[arg-type]
            )
            self.functions[fn.name] = function
            self.refs.declare(self, "function", fn.name, function, {"arn": function.function_arn, "name": function.function_name})
            if not sealed:
                acknowledge(role, "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
                            "The AWS-managed basic execution role only grants writing this function's own logs.")
            acknowledge(function, "AwsSolutions-L1",
                        "Python 3.13 is the newest runtime every layer dependency ships wheels for (onnxruntime has no cp314 build).")
            acknowledge(role, "AwsSolutions-IAM5[Resource::*]",
                        "X-Ray PutTraceSegments/PutTelemetryRecords have no resource-level permissions.")
            for acc in fn.access:
                self._grant(function, acc)
            if fn.queue:
                function.add_event_source(sources.SqsEventSource(
                    self.queues[fn.queue.queue],
                    batch_size=fn.queue.batch_size,
                    report_batch_item_failures=fn.queue.report_batch_item_failures,
                ))
        for child in self.node.find_all():
            if "BucketNotificationsHandler" in child.node.path and isinstance(child, iam.CfnRole):
                acknowledge(child, "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
                            "CDK's own S3 notification configurator (enables EventBridge on the packages bucket) writes only its logs.")
        if "packages" in self.buckets:
            self._pin_packages()

    def _pin_packages(self) -> None:
        """Pinned bytes (docs/release-integrity.md): only the intake step may write the
        content-addressed ``sha256/*`` keys of the packages bucket, and nothing may delete them."""
        packages = self.buckets["packages"]
        pinned = packages.arn_for_objects(f"{PIN_PREFIX}*")
        packages.add_to_resource_policy(iam.PolicyStatement(
            sid="OnlyIntakeWritesPinnedArtifacts",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["s3:PutObject", "s3:PutObjectAcl", "s3:PutObjectTagging", "s3:RestoreObject"],
            resources=[pinned],
            conditions={"ArnNotEquals": {"aws:PrincipalArn": [role_arn(self, "release_intake")]}},
        ))
        packages.add_to_resource_policy(iam.PolicyStatement(
            sid="PinnedArtifactsAreNeverDeleted",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["s3:DeleteObject", "s3:DeleteObjectVersion"],
            resources=[pinned],
        ))

    def _resource_value(self, acc: Access) -> str:
        if acc.kind == "state_machine":
            return state_machine_arn(self, acc.name)
        if acc.kind == "bus":
            return BUS_NAME
        attr = {"table": "name", "bucket": "name", "queue": "url", "key": "arn"}[acc.kind]
        return self._value(acc.kind, acc.name, attr)

    def _grant(self, fn: lambda_.Function, acc: Access) -> None:
        modes = set(acc.modes)
        if acc.kind == "table":
            table = self._construct("table", acc.name)
            if "write" in modes:
                table.grant_read_write_data(fn)
            else:
                table.grant_read_data(fn)
        elif acc.kind == "bucket":
            bucket = self._construct("bucket", acc.name)
            if "write" in modes:
                bucket.grant_read_write(fn)
            else:
                bucket.grant_read(fn)
            acknowledge(fn.role, f"AwsSolutions-IAM5[Resource::{self._nag_arn('bucket', acc.name)}/*]",  # type: ignore[arg-type]
                        "Object-level access to this function's own bucket needs the bucket/* resource.")
            for action in ("s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:DeleteObject*", "s3:Abort*"):
                acknowledge(fn.role, f"AwsSolutions-IAM5[Action::{action}]",  # type: ignore[arg-type]
                            "CDK's least-privilege bucket grant; scoped to this one bucket.")
        elif acc.kind == "queue":
            queue = self._construct("queue", acc.name)
            if "send" in modes:
                queue.grant_send_messages(fn)
            if "read" in modes:
                queue.grant_consume_messages(fn)
        elif acc.kind == "key":
            key = self._construct("key", acc.name)
            if "sign" in modes:
                key.grant(fn, "kms:Sign", "kms:GetPublicKey", "kms:DescribeKey")
            if "read" in modes:
                key.grant(fn, "kms:GetPublicKey", "kms:DescribeKey")
            # Exact actions (no GenerateDataKey*/ReEncrypt* wildcards): envelope encryption needs these.
            if "encrypt" in modes:
                key.grant(fn, "kms:GenerateDataKey", "kms:Encrypt", "kms:DescribeKey")
            if "decrypt" in modes:
                key.grant(fn, "kms:Decrypt", "kms:DescribeKey")
        elif acc.kind == "bus":
            self.refs.bus(self).grant_put_events_to(fn)
        elif acc.kind == "state_machine":
            arn = self._resource_value(acc)
            actions = []
            if "start" in modes:
                actions.append("states:StartExecution")
            if "callback" in modes:
                actions += ["states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"]
            if "read" in modes:
                actions += ["states:DescribeExecution"]
            fn.add_to_role_policy(iam.PolicyStatement(actions=actions, resources=[arn]))

    def _nag_arn(self, kind: str, name: str) -> str:
        """How cdk-nag spells the ARN of a resource in a finding: ``<LogicalId.Arn>`` for this
        stack's own, the import of its fixed export name for another stack's."""
        if self.refs.owner[(kind, name)] is self:
            return f"<{self.get_logical_id(self.refs.constructs[(kind, name)].node.default_child)}.Arn>"
        return export_name(kind, name, "arn")

    # ------------------------------------------------------------ workflows
    def _workflows(self) -> None:
        for sm in self.own.state_machines:
            subs: dict[str, str] = {}
            invoked: dict[str, lambda_.IFunction] = {}
            for placeholder, (kind, value) in sm.substitutions.items():
                if kind == "literal":
                    subs[placeholder] = value
                elif kind == "function":
                    invoked[value] = self.functions[value]
                    subs[placeholder] = self.functions[value].function_arn
                elif kind == "queue":
                    subs[placeholder] = self._value("queue", value, "url")
                elif kind == "table":
                    subs[placeholder] = self._value("table", value, "name")
            log_group = logs.LogGroup(self, f"{_cid(sm.name)}WorkflowLogs", retention=logs.RetentionDays.THREE_MONTHS,
                                      removal_policy=RemovalPolicy.RETAIN)
            machine = sfn.StateMachine(
                self, f"{_cid(sm.name)}Workflow",
                state_machine_name=f"hallmark-{sm.name}",
                definition_body=sfn.DefinitionBody.from_file(str(ROOT / "statemachines" / sm.asl)),
                definition_substitutions=subs,
                state_machine_type=sfn.StateMachineType.STANDARD,
                tracing_enabled=True,
                logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            )
            for fn in invoked.values():
                fn.grant_invoke(machine)
            for kind, value in sm.substitutions.values():
                if kind == "queue":
                    self._construct("queue", value).grant_send_messages(machine)
            acknowledge(machine, "AwsSolutions-IAM5[Resource::*]",
                        "Step Functions logging and X-Ray delivery actions do not support resource-level permissions.")
            for fn_name in invoked:
                acknowledge(machine, f"AwsSolutions-IAM5[Resource::<{self.get_logical_id(self.functions[fn_name].node.default_child)}.Arn>:*]",  # type: ignore[arg-type]
                            "Invoking any version/alias of this one function.")
            self.state_machines[sm.name] = machine
            period = Duration.minutes(5)
            for what, metric in (("failed", machine.metric_failed(period=period, statistic="Sum")),
                                 ("timed-out", machine.metric_timed_out(period=period, statistic="Sum"))):
                self.alarms.append(cw.Alarm(
                    self, f"{_cid(sm.name)}Executions{_cid(what)}",
                    alarm_name=execution_alarm_name(sm.name, what),
                    alarm_description=f"An execution of hallmark-{sm.name} {what.replace('-', ' ')}: "
                                      "see docs/runbooks/publish_retries.md",
                    metric=metric, threshold=0, comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                    evaluation_periods=1, treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                ))

    def _rules(self) -> None:
        for rule in self.own.rules:
            bus = self.refs.bus(self) if rule.bus == "hallmark" else None  # None: the default bus (S3, schedules)
            target: events.IRuleTarget
            if rule.target.kind == "function":
                target = targets.LambdaFunction(self.functions[rule.target.name], retry_attempts=2)
            elif rule.target.kind == "queue":
                target = targets.SqsQueue(self.queues[rule.target.name], message_group_id=rule.target.message_group)
            else:
                target = targets.SfnStateMachine(self.state_machines[rule.target.name])
            if rule.schedule:
                events.Rule(self, f"{_cid(rule.name)}Rule", rule_name=f"hallmark-{rule.name}",
                            schedule=events.Schedule.expression(rule.schedule), targets=[target])
                continue
            events.Rule(
                self, f"{_cid(rule.name)}Rule",
                rule_name=f"hallmark-{rule.name}",
                event_bus=bus,
                event_pattern=_pattern(resolve_pattern(rule.pattern, self._physical)),  # type: ignore[arg-type]
                targets=[target],
            )

    def _physical(self, kind: str, name: str) -> str:
        return self._resource_value(Access(kind, name, ("read",)))  # type: ignore[arg-type]


def _cid(name: str) -> str:
    return "".join(p.title() for p in name.replace("-", "_").split("_"))


def _pattern(p: dict[str, Any]) -> events.EventPattern:
    return events.EventPattern(
        source=p.get("source"),  # type: ignore[arg-type]
        detail_type=p.get("detail-type"),  # type: ignore[arg-type]
        detail=p.get("detail"),  # type: ignore[arg-type]
        resources=p.get("resources"),  # type: ignore[arg-type]
    )

