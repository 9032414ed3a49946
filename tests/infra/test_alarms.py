"""Alarms that page (issue 19, item 4): one SNS alarm topic with the subscriptions from context,
every alarm of every stack notifying it, alarms on failed and timed-out executions of every state
machine and on each dead-letter queue's depth and age, the SLOs, the five metrics on the dashboard."""

from __future__ import annotations

import json
from typing import Any

from hallmark_tools.topology import TOPOLOGY


def _alarms(template: Any) -> dict[str, dict[str, Any]]:
    return {a["Properties"]["AlarmName"]: a["Properties"]
            for a in template.find_resources("AWS::CloudWatch::Alarm").values()}


def test_one_encrypted_alarm_topic_with_the_subscriptions_from_context(template: Any) -> None:
    (topic,) = template.find_resources("AWS::SNS::Topic", {"Properties": {"TopicName": "hallmark-alarms"}}).values()
    assert "KmsMasterKeyId" in topic["Properties"]
    subs = {(s["Properties"]["Protocol"], s["Properties"]["Endpoint"])
            for s in template.find_resources("AWS::SNS::Subscription").values()}
    assert {("email", "oncall@example.com"), ("https", "https://pager.example.com/hallmark")} <= subs


def test_every_alarm_of_every_stack_pages_the_alarm_topic(templates: dict[str, Any]) -> None:
    count = 0
    for name, t in templates.items():
        for alarm, props in _alarms(t).items():
            actions = json.dumps(props.get("AlarmActions", []))
            assert ":hallmark-alarms" in actions, f"{name}: {alarm} pages nobody"
            count += 1
    assert count >= len(TOPOLOGY.queues) * 2 + len(TOPOLOGY.state_machines) * 2


def test_failed_and_timed_out_executions_of_every_state_machine_alarm(template: Any) -> None:
    alarms = _alarms(template)
    for sm in TOPOLOGY.state_machines:
        for what, metric in (("failed", "ExecutionsFailed"), ("timed-out", "ExecutionsTimedOut")):
            props = alarms[f"hallmark-{sm.name}-executions-{what}"]
            assert props["MetricName"] == metric and props["Namespace"] == "AWS/States"
            assert props["Threshold"] == 0 and props["ComparisonOperator"] == "GreaterThanThreshold"


def test_every_dead_letter_queue_alarms_on_depth_and_age(template: Any) -> None:
    alarms = _alarms(template)
    for q in TOPOLOGY.queues:
        assert alarms[f"hallmark-{q.name}-dlq-depth"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
        age = alarms[f"hallmark-{q.name}-dlq-age"]
        assert age["MetricName"] == "ApproximateAgeOfOldestMessage" and 0 < age["Threshold"] <= 24 * 3600


def test_the_slos(template: Any) -> None:
    alarms = _alarms(template)
    api = alarms["hallmark-slo-api-p95"]
    assert (api["ExtendedStatistic"], api["Threshold"], api["Namespace"]) == ("p95", 200, "AWS/ApiGateway")
    sign = alarms["hallmark-slo-manifest-sign-p95"]
    assert (sign["MetricName"], sign["Threshold"]) == ("release.manifest_sign_latency_seconds", 0.5)
    # submit -> publish: the metric listing_create emits without approval waits, not ExecutionTime
    e2e = alarms["hallmark-slo-submit-to-publish-p95"]
    assert (e2e["MetricName"], e2e["Threshold"], e2e["ExtendedStatistic"]) == (
        "release.submit_to_publish_seconds", 30, "p95")
    for v in ("static", "archive_safety", "security", "compliance", "attribution", "smoke"):
        assert alarms[f"hallmark-slo-validation-{v}-p95"]["Threshold"] == 30


def test_the_dashboard_shows_every_emitted_pipeline_metric(template: Any) -> None:
    (dash,) = template.find_resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dash["Properties"]["DashboardBody"])
    for metric in ("release.validation_duration_seconds", "release.manifest_sign_latency_seconds",
                   "release.publish_latency_seconds", "governance.multisig_pending_total",
                   "ceremony.provenance_sign_latency_seconds", "release.submit_to_publish_seconds"):
        assert metric in body, metric
