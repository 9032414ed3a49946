"""The synthesized template: what the topology promises is in CloudFormation, safely configured."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match

from hallmark_tools.layers import layers_for
from hallmark_tools.topology import TOPOLOGY


def test_every_function_is_synthesized_with_both_layers_and_tracing(template: Any) -> None:
    fns = {k: f for k, f in template.find_resources("AWS::Lambda::Function").items()
           if "POWERTOOLS_SERVICE_NAME" in f["Properties"].get("Environment", {}).get("Variables", {})}
    services = {f["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] for f in fns.values()}
    assert services == {f.name for f in TOPOLOGY.functions}
    for f in fns.values():
        assert f["Properties"]["Runtime"] == "python3.13"
        fn = TOPOLOGY.function(f["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"])
        # the domain layer and the lean dependency layer, plus the scoring one where needed
        assert len(f["Properties"]["Layers"]) == 1 + len(layers_for(fn.code_dir))
        sealed = fn.sealed
        # X-Ray needs xray:Put* on the role; a sealed function's role has no permission at all
        assert f["Properties"]["TracingConfig"] == {"Mode": "PassThrough" if sealed else "Active"}


def test_a_sealed_function_gets_a_role_without_any_permission(template: Any) -> None:
    """The sealed smoke runner: its role can do nothing, its environment names nothing."""
    fns = {f["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]: f
           for f in template.find_resources("AWS::Lambda::Function").values()
           if "POWERTOOLS_SERVICE_NAME" in f["Properties"].get("Environment", {}).get("Variables", {})}
    assert TOPOLOGY.function("validate_smoke").sealed and not TOPOLOGY.function("validate_smoke").access
    assert [f.name for f in TOPOLOGY.functions if f.sealed] == ["validate_smoke"]
    assert TOPOLOGY.function("validate_smoke").code_dir == "smoke_runner"
    roles = template.find_resources("AWS::IAM::Role")
    policies = template.find_resources("AWS::IAM::Policy")
    for name in (f.name for f in TOPOLOGY.functions if f.sealed):
        fn = fns[name]
        role_id = fn["Properties"]["Role"]["Fn::GetAtt"][0]
        role = roles[role_id]["Properties"]
        assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
        assert not role.get("ManagedPolicyArns"), name
        assert not role.get("Policies"), name
        attached = [pid for pid, p in policies.items() if {"Ref": role_id} in p["Properties"].get("Roles", [])]
        assert attached == [], f"{name}'s role has policy statements: {attached}"
    smoke_env = fns["validate_smoke"]["Properties"]["Environment"]["Variables"]
    assert set(smoke_env) <= {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "REQUIRE_KMS"}, smoke_env
    assert not any(k.startswith(("ADVISORY_SET_", "TABLE_", "BUCKET_", "KEY_", "QUEUE_")) for k in smoke_env)
    # the other validators keep their read-only access to the packages bucket
    assert TOPOLOGY.function("validate_static").access


def test_signing_keys_are_p256_sign_verify_and_only_signers_may_sign(template: Any) -> None:
    keys = template.find_resources("AWS::KMS::Key", {"Properties": {"KeySpec": "ECC_NIST_P256"}})
    assert len(keys) == sum(1 for k in TOPOLOGY.keys if k.signing)
    for key in keys.values():
        assert key["Properties"]["KeyUsage"] == "SIGN_VERIFY"
    signed = [k for k in keys.values() if any(
        s.get("Sid") == "OnlySignerRolesMaySign" for s in k["Properties"]["KeyPolicy"]["Statement"])]
    assert signed, "a key with a signer must deny kms:Sign to everyone else"
    for key in signed:
        deny = next(s for s in key["Properties"]["KeyPolicy"]["Statement"] if s.get("Sid") == "OnlySignerRolesMaySign")
        assert deny["Effect"] == "Deny" and deny["Action"] == "kms:Sign"
        assert "ArnNotEquals" in deny["Condition"]


def test_buckets_are_encrypted_private_and_tls_only(template: Any, templates: dict[str, Any]) -> None:
    buckets = template.find_resources("AWS::S3::Bucket")
    with_buckets = [t for t in templates.values() if t.find_resources("AWS::S3::Bucket")]
    assert len(buckets) == len(TOPOLOGY.buckets) + len(with_buckets)  # + each stack's access-log bucket
    for b in buckets.values():
        props = b["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    for policy in template.find_resources("AWS::S3::BucketPolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
                   for s in statements)


def test_tables_have_point_in_time_recovery(template: Any) -> None:
    tables = template.find_resources("AWS::DynamoDB::Table")
    assert len(tables) == len(TOPOLOGY.tables)
    for t in tables.values():
        assert t["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_every_queue_has_a_dead_letter_queue_with_an_alarm(template: Any) -> None:
    for q in TOPOLOGY.queues:
        template.has_resource_properties("AWS::SQS::Queue", {
            "RedrivePolicy": {"maxReceiveCount": q.max_receive_count, "deadLetterTargetArn": Match.any_value()}})
        template.has_resource_properties("AWS::CloudWatch::Alarm", {"AlarmName": f"hallmark-{q.name}-dlq-depth"})


def test_http_api_routes_and_jwt_authorizer(template: Any) -> None:
    template.has_resource_properties("AWS::ApiGatewayV2::Authorizer", {"AuthorizerType": "JWT"})
    routes = template.find_resources("AWS::ApiGatewayV2::Route")
    keys = {r["Properties"]["RouteKey"]: r["Properties"].get("AuthorizationType", "NONE") for r in routes.values()}
    expected = {r.key: ("NONE" if r.public else "JWT") for f in TOPOLOGY.functions for r in f.routes}
    assert keys == expected


def test_event_bus_and_state_machines(template: Any) -> None:
    template.has_resource_properties("AWS::Events::EventBus", {"Name": "hallmark"})
    machines = template.find_resources("AWS::StepFunctions::StateMachine")
    assert {m["Properties"]["StateMachineName"] for m in machines.values()} == {
        f"hallmark-{s.name}" for s in TOPOLOGY.state_machines}
    for m in machines.values():
        assert m["Properties"]["StateMachineType"] == "STANDARD"
        assert m["Properties"]["TracingConfiguration"] == {"Enabled": True}


def test_slo_alarms_and_dashboard(template: Any) -> None:
    names = {a["Properties"].get("AlarmName") for a in template.find_resources("AWS::CloudWatch::Alarm").values()}
    for slo in ("hallmark-slo-manifest-sign-p95", "hallmark-slo-api-p95", "hallmark-slo-submit-to-publish-p95",
                "hallmark-slo-validation-static-p95"):
        assert slo in names
    assert any(n.endswith("-dlq-depth") for n in names if n)
    template.has_resource_properties("AWS::CloudWatch::Dashboard", {"DashboardName": "hallmark-operations"})
    # the sealed smoke function cannot deliver EMF metrics: its SLO reads Lambda's own Duration
    smoke = next(a["Properties"] for a in template.find_resources("AWS::CloudWatch::Alarm").values()
                 if a["Properties"].get("AlarmName") == "hallmark-slo-validation-smoke-p95")
    used = [m["MetricStat"]["Metric"] for m in smoke["Metrics"] if "MetricStat" in m]
    assert [(m["Namespace"], m["MetricName"]) for m in used] == [("AWS/Lambda", "Duration")]


def test_only_intake_writes_pinned_artifacts_and_nobody_deletes_them(template: Any) -> None:
    """docs/release-integrity.md: the content-addressed sha256/* keys are write-once by intake."""
    statements = [s for p in template.find_resources("AWS::S3::BucketPolicy").values()
                  for s in p["Properties"]["PolicyDocument"]["Statement"]]
    write = next(s for s in statements if s.get("Sid") == "OnlyIntakeWritesPinnedArtifacts")
    assert write["Effect"] == "Deny" and "s3:PutObject" in write["Action"]
    assert "sha256/*" in str(write["Resource"])
    intake_role = [v for v in write["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]]
    # the intake role by its fixed name (it lives in another stack than the bucket: cdk/refs.py)
    assert len(intake_role) == 1 and ":role/hallmark-release_intake-" in str(intake_role[0])
    names = [r["Properties"].get("RoleName") for r in template.find_resources("AWS::IAM::Role").values()]
    assert {"Fn::Join": ["", ["hallmark-release_intake-", {"Ref": "AWS::Region"}]]} in names
    delete = next(s for s in statements if s.get("Sid") == "PinnedArtifactsAreNeverDeleted")
    assert delete["Effect"] == "Deny" and "Condition" not in delete
    assert set(delete["Action"]) == {"s3:DeleteObject", "s3:DeleteObjectVersion"}


def test_http_api_stage_is_throttled_by_default_and_per_route(template: Any) -> None:
    """Issue 17: the stage had no throttling. A default bucket on every route, tighter ones on the
    routes that start work or move money, each a declared route."""
    from hallmark_tools.topology.api import DEFAULT_THROTTLE, ROUTE_THROTTLES

    stages = template.find_resources("AWS::ApiGatewayV2::Stage")
    assert len(stages) == 1
    (stage,) = stages.values()
    props = stage["Properties"]
    assert props["DefaultRouteSettings"]["ThrottlingRateLimit"] == DEFAULT_THROTTLE.rate
    assert props["DefaultRouteSettings"]["ThrottlingBurstLimit"] == DEFAULT_THROTTLE.burst
    settings = props["RouteSettings"]
    for key in ("POST /packages", "POST /listings/{listingId}/checkout"):
        assert key in settings and settings[key]["ThrottlingRateLimit"] < DEFAULT_THROTTLE.rate
    assert set(settings) == set(ROUTE_THROTTLES) <= set(TOPOLOGY.routes())
    for key, t in ROUTE_THROTTLES.items():
        assert settings[key] == {"ThrottlingRateLimit": t.rate, "ThrottlingBurstLimit": t.burst}
    route_ids = {k for k, r in template.find_resources("AWS::ApiGatewayV2::Route").items()}
    assert route_ids <= set(stage.get("DependsOn", [])), "the stage's RouteSettings need the routes first"


def test_reserved_concurrency_is_deployed_as_the_topology_declares_it(template: Any) -> None:
    """The topology's ``reserved_concurrency`` (the local cloud's pool size) is the function's
    ReservedConcurrentExecutions; a function that declares none has no reservation."""
    for f in template.find_resources("AWS::Lambda::Function").values():
        name = f["Properties"].get("Environment", {}).get("Variables", {}).get("POWERTOOLS_SERVICE_NAME")
        if name is None:
            continue
        assert f["Properties"].get("ReservedConcurrentExecutions") == TOPOLOGY.function(name).reserved_concurrency


def test_a_declared_reserved_concurrency_reaches_the_template(monkeypatch: Any) -> None:
    import dataclasses

    from aws_cdk.assertions import Template

    import cdk.app
    from tests.infra.conftest import synth_app

    reserved = dataclasses.replace(TOPOLOGY, functions=tuple(
        dataclasses.replace(f, reserved_concurrency=3) if f.name == "health" else f for f in TOPOLOGY.functions))
    monkeypatch.setattr(cdk.app, "TOPOLOGY", reserved)
    app = synth_app()
    template = Template.from_stack(app.node.find_child(cdk.app.stack_of("core")))  # type: ignore[arg-type]
    (health,) = [f for f in template.find_resources("AWS::Lambda::Function").values()
                 if f["Properties"].get("Environment", {}).get("Variables", {}).get("POWERTOOLS_SERVICE_NAME") == "health"]
    assert health["Properties"]["ReservedConcurrentExecutions"] == 3
