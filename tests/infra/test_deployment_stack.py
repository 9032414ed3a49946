"""The deployer's permissions: only Hallmark-managed functions, only the per-environment execution
roles, only to Lambda; the operators' topic; the optional code signing config in Enforce mode."""

from __future__ import annotations

import json
from typing import Any

from hallmark_tools.topology.deployment import DEPLOYERS


def _statements(template: Any, function_cid: str) -> list[dict[str, Any]]:
    fns = template.find_resources("AWS::Lambda::Function")
    role = fns[next(k for k in fns if k.startswith(function_cid) and "Logs" not in k)]["Properties"]["Role"]
    policies = template.find_resources("AWS::IAM::Policy")
    return [s for p in policies.values() if {"Ref": role["Fn::GetAtt"][0]} in p["Properties"]["Roles"]
            for s in p["Properties"]["PolicyDocument"]["Statement"]]


def _actions(s: dict[str, Any]) -> list[str]:
    a = s["Action"]
    return [a] if isinstance(a, str) else list(a)


def test_the_deployer_touches_only_managed_functions_and_passes_only_execution_roles(template: Any) -> None:
    assert "deploy_release" in DEPLOYERS and "deployments_api" in DEPLOYERS
    statements = _statements(template, "DeployRelease")
    lam = [s for s in statements if any(a.startswith("lambda:") for a in _actions(s))]
    assert lam
    for s in lam:
        resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
        assert all("function:hallmark-app-*" in json.dumps(r) for r in resources), s
    create = next(s for s in lam if "lambda:CreateFunction" in _actions(s))
    assert create["Condition"] == {"StringEquals": {"aws:RequestTag/hallmark:managed": "true"}}
    passrole = next(s for s in statements if "iam:PassRole" in _actions(s))
    assert passrole["Condition"] == {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}
    assert "*" not in json.dumps(passrole["Resource"])
    # functions outside the deployment flow get none of it
    assert not any("lambda:CreateFunction" in _actions(s) for s in _statements(template, "PackagesApi"))


def test_the_operators_topic_is_encrypted_and_tls_only(template: Any) -> None:
    topics = template.find_resources("AWS::SNS::Topic")
    assert any("KmsMasterKeyId" in t["Properties"] for t in topics.values())
    policies = json.dumps(template.find_resources("AWS::SNS::TopicPolicy"))
    assert "aws:SecureTransport" in policies


def test_a_signer_profile_adds_an_enforcing_code_signing_config() -> None:
    from aws_cdk.assertions import Template

    from cdk.app import stack_of
    from tests.infra.conftest import synth_app

    profile = "arn:aws:signer:us-east-1:123456789012:/signing-profiles/hallmark/abcdef"
    app = synth_app(signerProfileVersionArn=profile,
                    deployExecutionRoles={"production": "arn:aws:iam::123456789012:role/prod"})
    t = Template.from_stack(app.node.find_child(stack_of("deployment")))  # type: ignore[arg-type]
    [csc] = t.find_resources("AWS::Lambda::CodeSigningConfig").values()
    assert csc["Properties"]["CodeSigningPolicies"] == {"UntrustedArtifactOnDeployment": "Enforce"}
    assert csc["Properties"]["AllowedPublishers"]["SigningProfileVersionArns"] == [profile]
    statements = _statements(t, "DeployRelease")
    passrole = next(s for s in statements if "iam:PassRole" in _actions(s))
    assert "arn:aws:iam::123456789012:role/prod" in json.dumps(passrole["Resource"])
    create = next(s for s in statements if "lambda:CreateFunction" in _actions(s))
    assert "lambda:CodeSigningConfigArn" in create["Condition"]["StringEquals"]
