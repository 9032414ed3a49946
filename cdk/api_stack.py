"""The HTTP API stack: one API for every concern's routes, with the JWT authorizer, the throttled
stage and its access logs, and the operations dashboard with the SLO alarms.

It comes last: each route's function is imported from its concern stack by its fixed export name
(cdk/refs.py), so the other stacks never depend on this one.
"""

from __future__ import annotations

from typing import Any

import jsii
from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_logs as logs
from constructs import Construct

from cdk.hallmark_stack import acknowledge
from cdk.observability import Observability
from cdk.refs import Registry, cid
from hallmark_tools.topology import Topology
from hallmark_tools.topology.api import DEFAULT_THROTTLE, check_throttles


class ApiStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, topology: Topology, refs: Registry,
                 oidc_issuer: str, oidc_audience: list[str], **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.topology = topology
        self.refs = refs
        self._api(oidc_issuer, oidc_audience)
        self.observability = Observability(self, "Observability", http_api=self.http_api, topology=topology,
                                           refs=refs)

    def _api(self, issuer: str, audience: list[str]) -> None:
        access_logs = logs.LogGroup(self, "ApiAccessLogs", retention=logs.RetentionDays.THREE_MONTHS,
                                    removal_policy=RemovalPolicy.RETAIN)
        self.http_api = apigw.HttpApi(
            self, "HttpApi",
            api_name="hallmark",
            description="Hallmark HTTP API",
            create_default_stage=False,
        )
        stage = apigw.HttpStage(self, "DefaultStage", http_api=self.http_api, stage_name="$default", auto_deploy=True,
                                access_log_settings=_AccessLogs(apigw.LogGroupLogDestination(access_logs)),
                                throttle=apigw.ThrottleSettings(rate_limit=DEFAULT_THROTTLE.rate,
                                                                burst_limit=DEFAULT_THROTTLE.burst))
        cfn_stage = stage.node.default_child
        assert isinstance(cfn_stage, apigw.CfnStage)
        cfn_stage.route_settings = {  # per-route limits (the L2 stage has no property for them)
            key: {"ThrottlingRateLimit": t.rate, "ThrottlingBurstLimit": t.burst}
            for key, t in check_throttles(self.topology).items()
        }
        authorizer = authorizers.HttpJwtAuthorizer("JwtAuthorizer", issuer, jwt_audience=audience)
        for fn in self.topology.functions:
            if not fn.routes:
                continue
            # One integration (and one invoke permission for this API) per function, shared by its
            # routes: three resources per route would be three times the resources.
            integration = integrations.HttpLambdaIntegration(
                f"Integration{cid(fn.name)}", self.refs.construct(self, "function", fn.name),
                scope_permission_to_route=False)
            for route in fn.routes:
                self.http_api.add_routes(
                    path=route.path,
                    methods=[apigw.HttpMethod(route.method)],
                    integration=integration,
                    authorizer=None if route.public else authorizer,
                )
        for child in self.http_api.node.find_all():
            if isinstance(child, apigw.CfnRoute):
                cfn_stage.add_dependency(child)  # RouteSettings name routes: they must exist first
            if isinstance(child, apigw.CfnRoute) and "GET /health" in str(child.route_key):
                acknowledge(child, "AwsSolutions-APIG4", "The liveness probe is public by design and returns no data.")
            if isinstance(child, apigw.CfnRoute) and "GET /keys" in str(child.route_key):
                acknowledge(child, "AwsSolutions-APIG4",
                            "Public keys are public by design: outsiders verify signatures without credentials.")


@jsii.implements(apigw.IAccessLogSettings)
class _AccessLogs:
    """HTTP API access logs to a log group (the interface has no concrete class in Python)."""

    def __init__(self, destination: apigw.IAccessLogDestination) -> None:
        self._destination = destination

    @property
    def destination(self) -> apigw.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> None:
        return None

