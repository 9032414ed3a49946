"""The deployer's permissions: only Hallmark-managed functions, only the per-environment execution
roles, only to Lambda; the one alarm topic (core stack, by fixed ARN); the optional code signing config in Enforce mode."""

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


def test_the_deployed_alarms_go_to_the_one_alarm_topic(templates: dict[str, Any]) -> None:
    from cdk.app import stack_of

    deployment = templates[stack_of("deployment")]
    assert not deployment.find_resources("AWS::SNS::Topic")  # no second topic: the core's hallmark-alarms
    fns = deployment.find_resources("AWS::Lambda::Function")
    arns = {json.dumps(f["Properties"]["Environment"]["Variables"]["DEPLOY_ALARM_TOPIC_ARN"], sort_keys=True)
            for f in fns.values() if "DEPLOY_ALARM_TOPIC_ARN" in f["Properties"]["Environment"]["Variables"]}
    assert len(arns) == 1 and ":hallmark-alarms" in next(iter(arns))  # its fixed ARN, no import/export
    statements = _statements(deployment, "DeployDrift")
    kms_use = next(s for s in statements if "kms:GenerateDataKey" in _actions(s))
    assert kms_use["Condition"]["ForAnyValue:StringEquals"] == {"kms:ResourceAliases": "alias/hallmark-alarms"}
    assert "sns." in json.dumps(kms_use["Condition"]["StringEquals"]["kms:ViaService"])
    core = [t for t in templates.values() if t.find_resources("AWS::SNS::Topic", {"Properties": {
        "TopicName": "hallmark-alarms"}})]
    assert len(core) == 1
    aliases = core[0].find_resources("AWS::KMS::Alias", {"Properties": {"AliasName": "alias/hallmark-alarms"}})
    assert len(aliases) == 1
    [topic] = core[0].find_resources("AWS::SNS::Topic", {"Properties": {"TopicName": "hallmark-alarms"}}).values()
    assert "KmsMasterKeyId" in topic["Properties"]


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
