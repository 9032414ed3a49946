"""The GPU runner of signal scoring (DESIGN.md flow 5): AWS Batch on GPU instances.

- a VPC of isolated subnets (no NAT, no internet): the S3 gateway endpoint and interface endpoints
  for ECR, CloudWatch Logs and the ECS agent are all a job needs; flow logs on;
- a managed EC2 compute environment of g5/g6 instances on Spot (price-capacity optimised, scaling
  from 0 vCPUs), on the ECS GPU-optimised AMI;
- the job queue and the job definition (1 GPU, 4 vCPUs, 15 GiB; retried on a Spot reclaim, not on
  a failure of the job itself) under the fixed names the state machine submits to
  (``hallmark_tools.topology.scoring.JOB_QUEUE`` / ``JOB_DEFINITION``); the container image is
  built from ``gpu_batch/Dockerfile`` (CUDA 12 + cuDNN 9 + onnxruntime-gpu) as a CDK asset;
- the job role: read/write on the scoring bucket, nothing else;
- the scoring state machine's permissions for ``batch:submitJob.sync`` (submit, describe,
  terminate; the managed rule Step Functions uses to follow the job).

The job refuses a model whose sha256 is not the signed digest the state machine passes
(``MODEL_DIGEST``), whatever the image holds.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Acknowledgment, Duration, IgnoreMode, RemovalPolicy, Size, Stack, Validations
from aws_cdk import aws_batch as batch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct, IConstruct

from hallmark_tools.topology.scoring import GPU_INSTANCE_CLASSES, JOB_DEFINITION, JOB_QUEUE

ROOT = Path(__file__).resolve().parents[1]
# The image needs only the domain layer and the job: everything else stays out of the build context.
INTERFACE_ENDPOINTS = (("EcrApi", ec2.InterfaceVpcEndpointAwsService.ECR),
                       ("EcrDocker", ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER),
                       ("Logs", ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS),
                       ("Ecs", ec2.InterfaceVpcEndpointAwsService.ECS),
                       ("EcsAgent", ec2.InterfaceVpcEndpointAwsService.ECS_AGENT),
                       ("EcsTelemetry", ec2.InterfaceVpcEndpointAwsService.ECS_TELEMETRY))
"""What a job in isolated subnets needs to pull its image, log and talk to the ECS agent."""
IMAGE_CONTEXT_EXCLUDE = ["**", "!gpu_batch/**", "!layers/hallmark/python/**", "**/__pycache__", "**/*.pyc"]


def _ack(scope: IConstruct, rule: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


class ScoringBatch(Construct):
    def __init__(self, scope: Construct, cid: str, *, bucket: s3.IBucket, state_machine: sfn.StateMachine,
                 max_vcpus: int = 256) -> None:
        super().__init__(scope, cid)
        stack = Stack.of(self)

        # ------------------------------------------------------------ network
        # Default: isolated subnets, no internet; six interface endpoints (about $88/month idle,
        # docs/operating-costs.md). `-c scoringBatchNetwork=public`: public subnets behind an
        # internet gateway (no NAT), the S3 gateway endpoint only; no inbound rule either way.
        public = self.node.try_get_context("scoringBatchNetwork") == "public"
        if self.node.try_get_context("scoringBatchNetwork") not in (None, "isolated", "public"):
            raise SystemExit("scoringBatchNetwork must be 'isolated' (default) or 'public'")
        subnet_type = ec2.SubnetType.PUBLIC if public else ec2.SubnetType.PRIVATE_ISOLATED
        self.vpc = ec2.Vpc(
            self, "Vpc",
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[ec2.SubnetConfiguration(name="jobs", subnet_type=subnet_type, cidr_mask=20)],
            gateway_endpoints={"S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)},
        )
        flow_logs = logs.LogGroup(self, "FlowLogs", retention=logs.RetentionDays.THREE_MONTHS,
                                  removal_policy=RemovalPolicy.RETAIN)
        self.vpc.add_flow_log("FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
                              traffic_type=ec2.FlowLogTrafficType.ALL)
        group = ec2.SecurityGroup(self, "JobsSecurityGroup", vpc=self.vpc, allow_all_outbound=True,
                                  description="Hallmark GPU scoring jobs: no inbound; outbound to the VPC endpoints"
                                  if not public else "Hallmark GPU scoring jobs: no inbound; outbound HTTPS to AWS")
        if not public:
            endpoints = ec2.SecurityGroup(self, "EndpointsSecurityGroup", vpc=self.vpc, allow_all_outbound=False,
                                          description="VPC interface endpoints: HTTPS from the scoring jobs only")
            endpoints.add_ingress_rule(group, ec2.Port.tcp(443), "HTTPS from the scoring jobs")
            for name, service in INTERFACE_ENDPOINTS:
                self.vpc.add_interface_endpoint(name, service=service, private_dns_enabled=True, open=False,
                                                security_groups=[endpoints])

        # ------------------------------------------------------------ compute
        self.compute_environment = batch.ManagedEc2EcsComputeEnvironment(
            self, "GpuSpot",
            vpc=self.vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=subnet_type),
            security_groups=[group],
            instance_classes=[ec2.InstanceClass(c.upper()) for c in GPU_INSTANCE_CLASSES],
            use_optimal_instance_classes=False,
            spot=True,
            allocation_strategy=batch.AllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED,
            images=[batch.EcsMachineImage(image_type=batch.EcsMachineImageType.ECS_AL2_NVIDIA)],
            minv_cpus=0,
            maxv_cpus=max_vcpus,
            update_to_latest_image_version=True,
        )
        self.job_queue = batch.JobQueue(
            self, "Queue",
            job_queue_name=JOB_QUEUE,
            priority=1,
            compute_environments=[batch.OrderedComputeEnvironment(compute_environment=self.compute_environment,
                                                                  order=1)],
        )

        # ------------------------------------------------------------ the job
        self.job_role = iam.Role(self, "JobRole", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
                                 description="Hallmark EVI scoring job: the scoring bucket only")
        bucket.grant_read_write(self.job_role)
        job_logs = logs.LogGroup(self, "JobLogs", retention=logs.RetentionDays.THREE_MONTHS,
                                 removal_policy=RemovalPolicy.RETAIN)
        image = ecs.ContainerImage.from_asset(str(ROOT), file="gpu_batch/Dockerfile", exclude=IMAGE_CONTEXT_EXCLUDE,
                                              ignore_mode=IgnoreMode.DOCKER)
        container = batch.EcsEc2ContainerDefinition(
            self, "Container",
            image=image,
            gpu=1,
            cpu=4,
            memory=Size.gibibytes(15),
            job_role=self.job_role,
            environment={"BUCKET": bucket.bucket_name, "CORPUS_KEY": "corpus/current.npy"},
            logging=ecs.LogDriver.aws_logs(stream_prefix="evi", log_group=job_logs),
        )
        self.job_definition = batch.EcsJobDefinition(
            self, "JobDefinition",
            job_definition_name=JOB_DEFINITION,
            container=container,
            retry_attempts=3,
            retry_strategies=[batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.SPOT_INSTANCE_RECLAIMED),
                              batch.RetryStrategy.of(batch.Action.EXIT, batch.Reason.NON_ZERO_EXIT_CODE)],
            timeout=Duration.hours(1),
            propagate_tags=True,
        )

        # ------------------------------------------------------------ submitJob.sync from the state machine
        job_definitions = stack.format_arn(service="batch", resource="job-definition",
                                           resource_name=f"{JOB_DEFINITION}*")
        state_machine.add_to_role_policy(iam.PolicyStatement(
            actions=["batch:SubmitJob", "batch:TagResource"],
            resources=[self.job_queue.job_queue_arn, job_definitions]))
        state_machine.add_to_role_policy(iam.PolicyStatement(
            actions=["batch:DescribeJobs", "batch:TerminateJob"], resources=["*"]))
        state_machine.add_to_role_policy(iam.PolicyStatement(
            actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
            resources=[stack.format_arn(service="events", resource="rule",
                                        resource_name="StepFunctionsGetEventsForBatchJobsRule")]))

        # ------------------------------------------------------------ cdk-nag, with the reasons
        _ack(state_machine, "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:batch:<AWS::Region>:<AWS::AccountId>:"
             f"job-definition/{JOB_DEFINITION}*]",
             "Submitting by name runs the latest revision of the one scoring job definition.")
        _ack(state_machine, "AwsSolutions-IAM5[Resource::*]",
             "batch:DescribeJobs/TerminateJob (submitJob.sync) have no resource-level permissions.")
        _ack(self.job_role, f"AwsSolutions-IAM5[Resource::<{stack.get_logical_id(bucket.node.default_child)}.Arn>/*]",  # type: ignore[arg-type]
             "The job reads batches and the model and writes envelopes and the corpus: objects of the scoring bucket.")
        for action in ("s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:DeleteObject*", "s3:Abort*"):
            _ack(self.job_role, f"AwsSolutions-IAM5[Action::{action}]",
                 "CDK's least-privilege bucket grant, scoped to the scoring bucket.")
        _ack(container.execution_role, "AwsSolutions-IAM5[Resource::*]",
             "ecr:GetAuthorizationToken (pulling the job image) has no resource-level permissions.")
        _ack(self.compute_environment, "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
             "service-role/AmazonEC2ContainerServiceforEC2Role]",
             "The AWS-managed instance policy the ECS agent on Batch instances needs (register, pull, log).")
        _ack(self.compute_environment, "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
             "service-role/AWSBatchServiceRole]",
             "The AWS-managed service policy with which Batch manages the compute environment.")
