"""What the deployment flow needs from the local cloud beyond the topology: one execution role
per environment (the role deployed functions run as; on AWS the operator names them in CDK
context) and the alarm topic (``hallmark-alarms``) the deployed functions' alarms notify.

moto 5 implements the Lambda, CloudWatch Logs and alarm calls the flow makes (create/update
function, publish_version, aliases with RoutingConfig weights, reserved concurrency, ephemeral
storage, tags, log retention, alarm state, CodeSha256 = base64 of the zip's SHA-256). It does not
implement provisioned concurrency or code signing configs: the Lambda adapter records the
provisioned-concurrency call as skipped (the deployment record says so), and no code signing
config exists locally. Deployed functions are never invoked here (moto would need Docker):
canary health is the alarms' state, which tests set with ``set_alarm_state``."""

from __future__ import annotations

import json
from typing import Any

from hallmark.deploy.models import ENVIRONMENTS

ASSUME_LAMBDA = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


#: the variables ``cdk/deployment.py`` adds to the functions in ``topology.deployment.DEPLOYERS``
DEPLOYER_ENV = ("DEPLOY_EXECUTION_ROLES", "DEPLOY_ALARM_TOPIC_ARN")


def provision(iam: Any, sns: Any) -> dict[str, str]:
    """Create the roles and the topic; returns the environment the deployment functions read."""
    roles = {env: iam.create_role(RoleName=f"hallmark-app-{env}-execution",
                                  AssumeRolePolicyDocument=ASSUME_LAMBDA)["Role"]["Arn"] for env in ENVIRONMENTS}
    topic = sns.create_topic(Name="hallmark-alarms")["TopicArn"]  # the app's one alarm topic, as on AWS
    return {"DEPLOY_EXECUTION_ROLES": json.dumps(roles, sort_keys=True), "DEPLOY_ALARM_TOPIC_ARN": topic}
