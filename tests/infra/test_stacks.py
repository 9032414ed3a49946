"""The app is split into stacks by concern (issue 19, item 1): each under the bound, every
topology item in the stack of the concern module that declares it, cross-stack references only
through fixed-name exports."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cdk.app import API_STACK, CONCERNS, MAX_RESOURCES, stack_of
from hallmark_tools.topology import Part


def test_every_stack_stays_under_the_resource_bound(templates: dict[str, Any]) -> None:
    assert set(templates) == {stack_of(c) for c in CONCERNS} | {API_STACK}
    for name, t in templates.items():
        count = len(t.to_json()["Resources"])
        assert 0 < count <= MAX_RESOURCES, f"{name} has {count} resources (bound {MAX_RESOURCES})"


def test_each_function_lives_in_the_stack_of_its_concern(templates: dict[str, Any]) -> None:
    for concern, part in CONCERNS.items():
        fns = templates[stack_of(concern)].find_resources("AWS::Lambda::Function")
        services = {f["Properties"].get("Environment", {}).get("Variables", {}).get("POWERTOOLS_SERVICE_NAME")
                    for f in fns.values()}
        assert {f.name for f in part.functions} <= services, concern


def test_a_new_concern_module_gets_a_stack_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """A concern nobody mapped in STACK_OF: its own stack, ``Hallmark<Concern>``, with no edit."""

    import cdk.app
    from hallmark_tools.topology import compose
    from hallmark_tools.topology.model import Function
    from tests.infra.conftest import synth_app

    extra = Part(functions=(Function(name="example_probe", code="health", description="A new concern's probe."),))
    concerns = {**CONCERNS, "example": extra}
    monkeypatch.setattr(cdk.app, "CONCERNS", concerns)
    monkeypatch.setattr(cdk.app, "TOPOLOGY", compose(*concerns.values()))
    app = synth_app()
    assert app.node.try_find_child("HallmarkExample") is not None


def test_cross_stack_references_are_fixed_name_imports(templates: dict[str, Any]) -> None:
    """No CDK automatic export (``Fn::ImportValue`` of a generated ``<Stack>:ExportsOutput...``):
    each import names a fixed ``hallmark-...`` export that its producer declares."""
    exports: set[str] = set()
    for t in templates.values():
        exports |= {o["Export"]["Name"] for o in t.to_json().get("Outputs", {}).values() if "Export" in o}
    assert all(e.startswith("hallmark-") for e in exports), sorted(exports)
    for name, t in templates.items():
        text = json.dumps(t.to_json())
        imports = set()
        for chunk in text.split('"Fn::ImportValue": ')[1:]:
            imports.add(json.loads(chunk[:chunk.index('"', 1) + 1]))
        assert imports <= exports, f"{name} imports undeclared exports {sorted(imports - exports)}"


@pytest.mark.parametrize("missing", ["oidcIssuer", "oidcAudience"])
def test_synth_refuses_without_the_identity_provider(missing: str) -> None:
    from aws_cdk import App

    from cdk.app import build_app
    from tests.infra.conftest import CONTEXT

    context = {k: v for k, v in CONTEXT.items() if k != missing}
    with pytest.raises(SystemExit, match=r"-c oidcIssuer=.* -c oidcAudience="):
        build_app(App(context={"aws:cdk:bundling-stacks": [], **context}))


def test_the_cheaper_batch_network_drops_the_interface_endpoints() -> None:
    """docs/operating-costs.md: `-c scoringBatchNetwork=public` (public subnets, no NAT, the S3
    gateway endpoint only) removes the six interface endpoints that cost money while idle."""
    from aws_cdk.assertions import Template

    from cdk.app import stack_of
    from cdk.scoring_batch import INTERFACE_ENDPOINTS
    from tests.infra.conftest import synth_app

    def endpoints(**context: str) -> list[str]:
        t = Template.from_stack(synth_app(**context).node.find_child(stack_of("scoring")))  # type: ignore[arg-type]
        return [e["Properties"].get("VpcEndpointType", "Gateway")
                for e in t.find_resources("AWS::EC2::VPCEndpoint").values()]

    assert sorted(endpoints()) == ["Gateway"] + ["Interface"] * len(INTERFACE_ENDPOINTS)
    assert endpoints(scoringBatchNetwork="public") == ["Gateway"]
