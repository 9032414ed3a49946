"""One topology, two backends: the synthesized template and the local cloud expose the same
functions, routes, rules and state machines."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hallmark_tools.localcloud.cloud import LocalCloud


@pytest.fixture(scope="module")
def template_json() -> dict[str, Any]:
    from tests.infra.conftest import synth_app

    assembly = synth_app().synth()
    # every stack's resources (the app is split by concern: cdk/app.py)
    return {"Resources": {f"{s.stack_name}/{k}": r for s in assembly.stacks for k, r in s.template["Resources"].items()}}


def _of_type(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == kind]


def test_template_and_local_cloud_expose_the_same_surface(template_json: dict[str, Any], cloud: LocalCloud) -> None:
    cfn_functions = {
        p["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        for p in _of_type(template_json, "AWS::Lambda::Function")
        if "POWERTOOLS_SERVICE_NAME" in p.get("Environment", {}).get("Variables", {})
    }
    cfn_routes = {p["RouteKey"] for p in _of_type(template_json, "AWS::ApiGatewayV2::Route")}
    cfn_rules = {p["Name"] for p in _of_type(template_json, "AWS::Events::Rule")}
    cfn_machines = {p["StateMachineName"] for p in _of_type(template_json, "AWS::StepFunctions::StateMachine")}

    lam, events, sfn = cloud.client("lambda"), cloud.client("events"), cloud.client("stepfunctions")
    local_functions = {f["FunctionName"] for f in lam.list_functions()["Functions"]}
    local_routes = {route.key for _m, _r, route, _f in cloud._routes}
    local_rules = {r["Name"] for bus in ("hallmark", "default") for r in events.list_rules(EventBusName=bus)["Rules"]}
    local_machines = {m["name"] for m in sfn.list_state_machines()["stateMachines"]}

    assert cfn_functions == local_functions
    assert cfn_routes == local_routes
    assert cfn_rules == local_rules
    assert cfn_machines == local_machines


def test_state_machines_use_the_same_asl_with_every_placeholder_resolved(template_json: dict[str, Any],
                                                                         cloud: LocalCloud) -> None:
    for props in _of_type(template_json, "AWS::StepFunctions::StateMachine"):
        name = props["StateMachineName"].removeprefix("hallmark-")
        local = json.loads(cloud.render_asl(name))
        assert set(props["DefinitionSubstitutions"]) == set(
            next(s for s in cloud.topology.state_machines if s.name == name).substitutions)
        assert local["StartAt"]
