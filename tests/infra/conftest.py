from __future__ import annotations

from typing import Any

import pytest

#: example values: synth refuses to run without them (cdk/app.py)
CONTEXT = {"oidcIssuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_EXAMPLE",
           "oidcAudience": "hallmark-example-client",
           # the alarm topic's subscriptions (cdk/alarms.py)
           "alarmEmails": "oncall@example.com",
           "alarmHttpsEndpoints": "https://pager.example.com/hallmark"}


def synth_app(**context: Any) -> Any:
    """The CDK app as `cdk synth` builds it, asset bundling skipped (the template is what we assert)."""
    from aws_cdk import App

    from cdk.app import build_app

    return build_app(App(context={"aws:cdk:bundling-stacks": [], **CONTEXT, **context}))


def merged(templates: dict[str, Any]) -> Any:
    """Every stack's resources in one template (logical ids are unique across the stacks but for
    per-stack helpers such as the access-log bucket, which keep a stack-prefixed id here)."""
    from aws_cdk.assertions import Template

    resources: dict[str, Any] = {}
    for stack, t in templates.items():
        for logical, r in t.to_json()["Resources"].items():
            resources[logical if logical not in resources else f"{stack}{logical}"] = r
    return Template.from_json({"Resources": resources})


@pytest.fixture(scope="session")
def app() -> Any:
    return synth_app()


@pytest.fixture(scope="session")
def templates(app: Any) -> dict[str, Any]:
    from aws_cdk import Stack
    from aws_cdk.assertions import Template

    return {c.node.id: Template.from_stack(c) for c in app.node.children if isinstance(c, Stack)}


@pytest.fixture(scope="session")
def template(templates: dict[str, Any]) -> Any:
    return merged(templates)
