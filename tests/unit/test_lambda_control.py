"""The Lambda adapter's calls that moto does not implement, checked with botocore's Stubber:
provisioned concurrency on the published version and the code signing config on create; and the
adapter's refusal to touch a function outside the managed prefix."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from hallmark.adapters.lambda_control import BotoLambdaControl
from hallmark.deploy.ports import CodeRef, FunctionSpec

FN = "hallmark-app-svc-production"
CSC = "arn:aws:lambda:us-east-1:123456789012:code-signing-config:csc-0123456789abcdef0"


def _client() -> object:
    return boto3.client("lambda", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def test_provisioned_concurrency_is_put_on_the_version() -> None:
    lam = _client()
    with Stubber(lam) as stub:  # type: ignore[arg-type]
        stub.add_response("put_provisioned_concurrency_config",
                          {"RequestedProvisionedConcurrentExecutions": 3, "Status": "IN_PROGRESS"},
                          {"FunctionName": FN, "Qualifier": "7", "ProvisionedConcurrentExecutions": 3})
        assert BotoLambdaControl(lam).provision_concurrency(FN, "7", 3) is None
        stub.assert_no_pending_responses()


def test_an_unimplemented_call_is_reported_as_skipped_not_done() -> None:
    lam = _client()
    with Stubber(lam) as stub:  # type: ignore[arg-type]
        stub.add_client_error("put_provisioned_concurrency_config", service_error_code="404",
                              service_message="Not yet implemented", http_status_code=404)
        why = BotoLambdaControl(lam).provision_concurrency(FN, "7", 1)
    assert why is not None and "Not yet implemented" in why


def test_a_real_failure_is_not_mistaken_for_a_skip() -> None:
    lam = _client()
    with Stubber(lam) as stub:  # type: ignore[arg-type]
        stub.add_client_error("put_provisioned_concurrency_config", service_error_code="AccessDeniedException",
                              http_status_code=403)
        with pytest.raises(Exception, match="AccessDenied"):
            BotoLambdaControl(lam).provision_concurrency(FN, "7", 1)


def test_create_attaches_the_code_signing_config() -> None:
    lam = _client()
    spec = FunctionSpec(FN, "python3.12", "app.handler", "arn:aws:iam::123456789012:role/exec", 1024, 2048,
                        {"HALLMARK_TIER": "bronze"}, {"hallmark:managed": "true"})
    with Stubber(lam) as stub:  # type: ignore[arg-type]
        stub.add_response("create_function", {"FunctionName": FN}, {
            "FunctionName": FN, "Runtime": "python3.12", "Handler": "app.handler", "Role": spec.role_arn,
            "Code": {"S3Bucket": "hallmark-packages", "S3Key": "sha256/x", "S3ObjectVersion": "v1"}, "MemorySize": 1024,
            "EphemeralStorage": {"Size": 2048}, "Environment": {"Variables": {"HALLMARK_TIER": "bronze"}},
            "Tags": {"hallmark:managed": "true"}, "Publish": False, "PackageType": "Zip", "CodeSigningConfigArn": CSC})
        stub.add_response("get_function", {"Configuration": {"FunctionName": FN, "State": "Active"}},
                          {"FunctionName": FN})  # the function_active_v2 waiter
        BotoLambdaControl(lam, CSC).create(spec, CodeRef("hallmark-packages", "sha256/x", "v1"))
        stub.assert_no_pending_responses()


def test_functions_outside_the_managed_prefix_are_refused() -> None:
    with pytest.raises(ValueError, match="not a Hallmark-managed function"):
        BotoLambdaControl(_client()).publish("hallmark-audit_writer")
