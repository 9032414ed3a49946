from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def template() -> Any:
    from aws_cdk import App
    from aws_cdk.assertions import Template

    from cdk.app import build_app

    # Skip asset bundling (the dependency layer's pip install) in tests: the template is what we assert.
    app = build_app(App(context={"aws:cdk:bundling-stacks": []}))
    stack = app.node.find_child("Hallmark")
    return Template.from_stack(stack)  # type: ignore[arg-type]
