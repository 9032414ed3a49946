"""SLO alarms and the operations dashboard (seed 004 SLOs; DESIGN.md "operators")."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cdk.refs import (
    DLQ_ALARMS,
    EXECUTION_ALARMS,
    Registry,
    alarm_arn,
    cid,
    dlq_alarm_name,
    execution_alarm_name,
    state_machine_arn,
)
from hallmark_tools.topology import Topology

NAMESPACE = "Hallmark"
VALIDATORS = ("static", "archive_safety", "security", "compliance", "attribution", "smoke")


def _slo(scope: Construct, cid: str, name: str, description: str, metric: cw.IMetric, threshold: float) -> cw.Alarm:
    return cw.Alarm(
        scope, cid, alarm_name=name, alarm_description=description, metric=metric, threshold=threshold,
        comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD, evaluation_periods=3,
        datapoints_to_alarm=2, treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
    )


def _p95(metric: str, service: str, period: Duration) -> cw.Metric:
    """A Powertools EMF metric (dimension ``service``: the emitting function) at p95."""
    return cw.Metric(namespace=NAMESPACE, metric_name=metric, statistic="p95", period=period,
                     dimensions_map={"service": service})


class Observability(Construct):
    """One alarm per SLO, plus the DLQ alarms made with the queues, on one dashboard."""

    def __init__(self, scope: Construct, construct_id: str, *, http_api: apigw.HttpApi, topology: Topology,
                 refs: Registry) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        functions = {f.name for f in topology.functions}
        release = (sfn.StateMachine.from_state_machine_arn(self, "Release", state_machine_arn(stack, "release"))
                   if any(s.name == "release" for s in topology.state_machines) else None)
        sealed_smoke: lambda_.IFunction | None = (
            lambda_.Function.from_function_name(self, "Smoke", refs.value(stack, "function", "validate_smoke", "name"))
            if "validate_smoke" in functions else None)
        # the alarms the concern stacks make, by their fixed names
        names = [*(dlq_alarm_name(q.name, w) for q in topology.queues for w in DLQ_ALARMS),
                 *(execution_alarm_name(m.name, w) for m in topology.state_machines for w in EXECUTION_ALARMS)]
        dlq_alarms = [cw.Alarm.from_alarm_arn(self, f"Imported{cid(n)}", alarm_arn(stack, n)) for n in names]
        period = Duration.minutes(5)
        validation: dict[str, cw.IMetric] = {
            v: cw.Metric(namespace=NAMESPACE, metric_name="release.validation_duration_seconds", statistic="p95",
                         period=period, dimensions_map={"service": f"validate_{v}", "validator": v})
            for v in VALIDATORS
        }
        if sealed_smoke is not None:
            # the sealed smoke function has no permission to deliver logs or EMF metrics: its SLO is
            # read from Lambda's own Duration metric (milliseconds -> seconds by math expression)
            validation["smoke"] = cw.MathExpression(
                expression="duration / 1000", period=period, label="smoke p95 (s)",
                using_metrics={"duration": sealed_smoke.metric_duration(statistic="p95", period=period)})
        sign = _p95("release.manifest_sign_latency_seconds", "release_sign", period)
        e2e = _p95("release.submit_to_publish_seconds", "listing_create", period)
        publish = _p95("release.publish_latency_seconds", "repo_writer", period)
        provenance = _p95("ceremony.provenance_sign_latency_seconds", "ceremony_sign", period)
        pending = cw.Metric(namespace=NAMESPACE, metric_name="governance.multisig_pending_total", statistic="Sum",
                            period=period, dimensions_map={"service": "governance_request"})
        api_p95 = http_api.metric_latency(statistic="p95", period=period)
        self.alarms = [
            *(_slo(self, f"Validation{v.title().replace('_', '')}P95", f"hallmark-slo-validation-{v}-p95",
                   f"SLO: {v} validation p95 < 30 s (docs/runbooks/manifest_issues.md)", m, 30)
              for v, m in validation.items()),
            _slo(self, "ManifestSignP95", "hallmark-slo-manifest-sign-p95",
                 "SLO: manifest sign p95 < 500 ms (KMS; docs/runbooks/manifest_issues.md)", sign, 0.5),
            # emitted by listing_create: submit -> publish minus the AwaitingApproval stretches
            _slo(self, "SubmitToPublishP95", "hallmark-slo-submit-to-publish-p95",
                 "SLO: submit -> publish p95 < 30 s, approval waits not counted (hallmark.release.timing)", e2e, 30),
            _slo(self, "ApiP95", "hallmark-slo-api-p95", "SLO: API p95 < 200 ms (API Gateway Latency)", api_p95, 200),
        ]
        widgets: list[cw.IWidget] = [
            cw.GraphWidget(title="release.validation_duration_seconds p95 (s) - SLO 30 s",
                           left=list(validation.values()), width=12),
            cw.GraphWidget(title="release.manifest_sign_latency_seconds p95 (s) - SLO 0.5 s", left=[sign], width=6),
            cw.GraphWidget(title="API latency p95 (ms) - SLO 200 ms", left=[api_p95], width=6),
            cw.GraphWidget(title="release.submit_to_publish_seconds p95 (s, no approval waits) - SLO 30 s",
                           left=[e2e], width=12),
            cw.GraphWidget(title="release.publish_latency_seconds p95 (s)", left=[publish], width=12),
            cw.GraphWidget(title="ceremony.provenance_sign_latency_seconds p95 (s)", left=[provenance], width=12),
            cw.GraphWidget(title="governance.multisig_pending_total (opened - decided)", left=[pending], width=12),
        ]
        if release is not None:
            widgets.append(cw.GraphWidget(title="Releases failed / succeeded",
                                          left=[release.metric_failed(period=period), release.metric_succeeded(period=period)],
                                          width=24))
        widgets.append(cw.AlarmStatusWidget(title="SLO, DLQ and execution alarms", alarms=[*self.alarms, *dlq_alarms], width=24))
        self.dashboard = cw.Dashboard(self, "Dashboard", dashboard_name="hallmark-operations")
        for i in range(0, len(widgets), 2):
            self.dashboard.add_widgets(*widgets[i:i + 2])
