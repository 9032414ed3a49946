"""The synthesized template: what the topology promises is in CloudFormation, safely configured."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match

from hallmark_tools.topology import TOPOLOGY


def test_every_function_is_synthesized_with_both_layers_and_tracing(template: Any) -> None:
    fns = {k: f for k, f in template.find_resources("AWS::Lambda::Function").items()
           if "POWERTOOLS_SERVICE_NAME" in f["Properties"].get("Environment", {}).get("Variables", {})}
    services = {f["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] for f in fns.values()}
    assert services == {f.name for f in TOPOLOGY.functions}
    for f in fns.values():
        assert f["Properties"]["Runtime"] == "python3.13"
        assert len(f["Properties"]["Layers"]) == 2
        assert f["Properties"]["TracingConfig"] == {"Mode": "Active"}


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


def test_buckets_are_encrypted_private_and_tls_only(template: Any) -> None:
    buckets = template.find_resources("AWS::S3::Bucket")
    assert len(buckets) == len(TOPOLOGY.buckets) + 1  # + the access-log bucket
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
    for slo in ("hallmark-slo-manifest-sign-p95", "hallmark-slo-api-p99", "hallmark-slo-submit-to-publish-p95",
                "hallmark-slo-validation-static-p95"):
        assert slo in names
    assert any(n.endswith("-dlq-depth") for n in names if n)
    template.has_resource_properties("AWS::CloudWatch::Dashboard", {"DashboardName": "hallmark-operations"})


def test_only_intake_writes_pinned_artifacts_and_nobody_deletes_them(template: Any) -> None:
    """docs/release-integrity.md: the content-addressed sha256/* keys are write-once by intake."""
    statements = [s for p in template.find_resources("AWS::S3::BucketPolicy").values()
                  for s in p["Properties"]["PolicyDocument"]["Statement"]]
    write = next(s for s in statements if s.get("Sid") == "OnlyIntakeWritesPinnedArtifacts")
    assert write["Effect"] == "Deny" and "s3:PutObject" in write["Action"]
    assert "sha256/*" in str(write["Resource"])
    intake_role = [v for v in write["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]]
    assert len(intake_role) == 1 and "ReleaseIntake" in str(intake_role[0])
    delete = next(s for s in statements if s.get("Sid") == "PinnedArtifactsAreNeverDeleted")
    assert delete["Effect"] == "Deny" and "Condition" not in delete
    assert set(delete["Action"]) == {"s3:DeleteObject", "s3:DeleteObjectVersion"}
