"""Alarms that page: the one SNS alarm topic (``hallmark-alarms``, in the core stack) and the
aspect that gives every CloudWatch alarm of every stack that topic as its alarm action.

Subscriptions come from context: ``-c alarmEmails=ops@example.com,oncall@example.com`` and
``-c alarmHttpsEndpoints=https://events.pagerduty.com/integration/KEY/enqueue`` (comma-separated
strings, or JSON lists in cdk.json). An e-mail subscription must be confirmed from the mail it gets.
"""

from __future__ import annotations

import jsii
from aws_cdk import IAspect, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from constructs import Construct, IConstruct

from cdk.refs import ALARM_TOPIC, ALARM_TOPIC_KEY_ALIAS, alarm_topic_arn


def context_list(scope: Construct, key: str) -> list[str]:
    value = scope.node.try_get_context(key) or []
    if isinstance(value, str):
        value = value.split(",")
    return [str(v).strip() for v in value if str(v).strip()]


class AlarmTopic(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(self, "Key", enable_key_rotation=True, description="Hallmark alarm topic",
                           alias=ALARM_TOPIC_KEY_ALIAS)
        # CloudWatch publishes alarm notifications to the encrypted topic
        self.key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"),  # type: ignore[arg-type]
                       "kms:GenerateDataKey", "kms:Decrypt")
        self.topic = sns.Topic(self, "Topic", topic_name=ALARM_TOPIC, master_key=self.key,  # type: ignore[arg-type]
                               enforce_ssl=True, display_name="Hallmark alarms")
        for email in context_list(self, "alarmEmails"):
            self.topic.add_subscription(subs.EmailSubscription(email))
        for url in context_list(self, "alarmHttpsEndpoints"):
            if not url.startswith("https://"):
                raise SystemExit(f"alarmHttpsEndpoints: {url!r} is not an https:// URL")
            self.topic.add_subscription(subs.UrlSubscription(url, protocol=sns.SubscriptionProtocol.HTTPS))


@jsii.implements(IAspect)
class PageOnAlarm:
    """Every alarm in the app notifies the alarm topic (by its fixed ARN: no cross-stack export)."""

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, cw.Alarm) and node.node.try_find_child("PagesTopic") is None:
            topic = sns.Topic.from_topic_arn(node, "PagesTopic", alarm_topic_arn(Stack.of(node)))
            node.add_alarm_action(cw_actions.SnsAction(topic))
