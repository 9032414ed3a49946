"""Deployment-specific infrastructure (issue 24): what the deployment flow's functions may do to
the functions they deploy, the operators' topic the deployed functions' alarms notify, and the
optional code signing config.

- The deployer's permissions reach only Hallmark-managed functions: the ``hallmark-app-*`` name
  prefix on every Lambda action, and creating or tagging one also needs the request to carry the
  ``hallmark:managed=true`` tag. It may pass only the per-environment execution roles (context
  ``deployExecutionRoles``: ``{"staging": "<role arn>", ...}``; an environment not named gets a
  role created here with nothing but log delivery), and only to Lambda.
- Alarms and the drift alarm go to the app's one alarm topic (``hallmark-alarms``, core stack:
  ``cdk.alarms.AlarmTopic``), referenced by its fixed ARN; its key by its fixed alias.
- Context ``signerProfileVersionArn``: a Lambda code signing config in ``Enforce`` mode, a second
  lock that today makes every deployment fail (the pipeline does not sign with AWS Signer: see
  docs/deployments.md "The second lock"); once releases are Signer-signed it is a lock next to
  the CodeSha256 assertion (creating a function then requires it).
"""

from __future__ import annotations

import json

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk.refs import ALARM_TOPIC_KEY_ALIAS, alarm_topic_arn
from hallmark.deploy.models import ENVIRONMENTS, MANAGED_PREFIX, MANAGED_TAG

_COLON = ArnFormat.COLON_RESOURCE_NAME
LAMBDA_ACTIONS = [
    "lambda:GetFunction", "lambda:GetFunctionConfiguration", "lambda:UpdateFunctionCode",
    "lambda:UpdateFunctionConfiguration", "lambda:PublishVersion", "lambda:DeleteFunction", "lambda:GetAlias",
    "lambda:CreateAlias", "lambda:UpdateAlias", "lambda:DeleteAlias", "lambda:PutFunctionConcurrency",
    "lambda:PutProvisionedConcurrencyConfig", "lambda:ListTags",
]


class DeploymentInfra(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, deployers: list[lambda_.Function]) -> None:
        super().__init__(scope, construct_id)
        from cdk.hallmark_stack import acknowledge

        stack = Stack.of(self)
        # the one alarm topic of the app (``hallmark-alarms``, core stack), by its fixed ARN: a
        # stable cross-stack reference (no export); its key is named by its fixed alias
        self.topic = sns.Topic.from_topic_arn(self, "AlarmTopic", alarm_topic_arn(stack))
        named = self.node.try_get_context("deployExecutionRoles") or {}
        if isinstance(named, str):
            named = json.loads(named)
        self.execution_roles: dict[str, str] = {}
        for env in ENVIRONMENTS:
            if env in named:
                self.execution_roles[env] = str(named[env])
                continue
            role = iam.Role(self, f"{env.title()}ExecutionRole",
                            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),  # type: ignore[arg-type]
                            description=f"Hallmark-deployed functions in {env}: log delivery only")
            role.add_to_policy(iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[stack.format_arn(service="logs", resource="log-group",
                                            resource_name=f"/aws/lambda/{MANAGED_PREFIX}{env}*",
                                            arn_format=_COLON)]))
            acknowledge(role, "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:"
                        f"log-group:/aws/lambda/{MANAGED_PREFIX}{env}*]",
                        "The deployed functions' own log groups, named by the managed prefix.")
            self.execution_roles[env] = role.role_arn
        signer = self.node.try_get_context("signerProfileVersionArn")
        self.code_signing: lambda_.CfnCodeSigningConfig | None = None
        if signer:
            self.code_signing = lambda_.CfnCodeSigningConfig(
                self, "CodeSigning",
                allowed_publishers=lambda_.CfnCodeSigningConfig.AllowedPublishersProperty(
                    signing_profile_version_arns=[signer]),
                code_signing_policies=lambda_.CfnCodeSigningConfig.CodeSigningPoliciesProperty(
                    untrusted_artifact_on_deployment="Enforce"),
                description="Hallmark deployments: only code signed by the operator's AWS Signer profile")
        for fn in deployers:
            self._grant(stack, fn)

    def _grant(self, stack: Stack, fn: lambda_.Function) -> None:
        from cdk.hallmark_stack import acknowledge

        managed = stack.format_arn(service="lambda", resource="function", resource_name=f"{MANAGED_PREFIX}*",
                                   arn_format=_COLON)
        fn.add_to_role_policy(iam.PolicyStatement(actions=LAMBDA_ACTIONS, resources=[managed, f"{managed}:*"]))
        create = iam.PolicyStatement(actions=["lambda:CreateFunction", "lambda:TagResource"],
                                     resources=[managed], conditions={
                                         "StringEquals": {f"aws:RequestTag/{MANAGED_TAG}": "true"}})
        if self.code_signing is not None:
            create.add_condition("StringEquals", {f"aws:RequestTag/{MANAGED_TAG}": "true",
                                                  "lambda:CodeSigningConfigArn": self.code_signing.attr_code_signing_config_arn})
        fn.add_to_role_policy(create)
        fn.add_to_role_policy(iam.PolicyStatement(
            actions=["iam:PassRole"], resources=list(self.execution_roles.values()),
            conditions={"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}))
        groups = stack.format_arn(service="logs", resource="log-group", resource_name=f"/aws/lambda/{MANAGED_PREFIX}*",
                                  arn_format=_COLON)
        fn.add_to_role_policy(iam.PolicyStatement(actions=["logs:CreateLogGroup", "logs:PutRetentionPolicy"],
                                                  resources=[groups]))
        alarms = stack.format_arn(service="cloudwatch", resource="alarm", resource_name=f"{MANAGED_PREFIX}*",
                                  arn_format=_COLON)
        fn.add_to_role_policy(iam.PolicyStatement(
            actions=["cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarmHistory"], resources=[alarms]))
        # DescribeAlarms and PutMetricData have no resource-level permissions
        fn.add_to_role_policy(iam.PolicyStatement(actions=["cloudwatch:DescribeAlarms"], resources=["*"]))
        fn.add_to_role_policy(iam.PolicyStatement(actions=["cloudwatch:PutMetricData"], resources=["*"],
                                                  conditions={"StringEquals": {"cloudwatch:namespace": "Hallmark"}}))
        # exact actions (grant_publish would add the kms:GenerateDataKey* wildcard)
        fn.add_to_role_policy(iam.PolicyStatement(actions=["sns:Publish"], resources=[self.topic.topic_arn]))
        # publishing to the encrypted topic: its key (in the core stack), named by its alias, only via SNS
        fn.add_to_role_policy(iam.PolicyStatement(
            actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=["*"],
            conditions={"ForAnyValue:StringEquals": {"kms:ResourceAliases": ALARM_TOPIC_KEY_ALIAS},
                        "StringEquals": {"kms:ViaService": f"sns.{stack.region}.amazonaws.com"}}))
        fn.add_environment("DEPLOY_EXECUTION_ROLES", stack.to_json_string(self.execution_roles))
        fn.add_environment("DEPLOY_ALARM_TOPIC_ARN", self.topic.topic_arn)
        if self.code_signing is not None:
            fn.add_environment("DEPLOY_CODE_SIGNING_CONFIG_ARN", self.code_signing.attr_code_signing_config_arn)
        for resource in (f"{MANAGED_PREFIX}*", f"{MANAGED_PREFIX}*:*"):
            acknowledge(fn, "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:lambda:<AWS::Region>:<AWS::AccountId>:"
                        f"function:{resource}]",
                        "The deployer manages every Hallmark-managed function (name prefix), with their versions.")
        for what in ("logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/lambda/", "cloudwatch:<AWS::Region>:"
                     "<AWS::AccountId>:alarm:"):
            acknowledge(fn, f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:{what}{MANAGED_PREFIX}*]",
                        "The managed functions' log groups and alarms, named by the managed prefix.")
        acknowledge(fn, "AwsSolutions-IAM5[Resource::*]",
                    "cloudwatch:DescribeAlarms and PutMetricData (namespace-conditioned) have no resource-level "
                    "permissions; the alarm topic's key (another stack's) is named by its alias "
                    "(kms:ResourceAliases) and used only via SNS.")



_COLON = ArnFormat.COLON_RESOURCE_NAME
