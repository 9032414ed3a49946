"""The one declared topology of Hallmark, composed from one module per concern.

Plain data, read by both backends: the CDK app (``cdk/``) synthesizes it into CloudFormation,
and the local cloud (``hallmark_tools.localcloud``) provisions it on moto. A test proves both
expose the same functions, routes, rules and state machines.
"""

from __future__ import annotations

from hallmark_tools.topology import ceremony, core, deployment, governance, market, release, scoring
from hallmark_tools.topology.model import *  # noqa: F403
from hallmark_tools.topology.model import (
    BUS_NAME,
    Access,
    Function,
    Part,
    Topology,
    compose,
    env_for,
    env_name,
    resolve_pattern,
    route_env,
)

CONCERNS: dict[str, Part] = {
    "core": core.PART,
    "release": release.PART,
    "governance": governance.PART,
    "market": market.PART,
    "ceremony": ceremony.PART,
    "scoring": scoring.PART,
    "deployment": deployment.PART,
}
"""Each concern module's share, by concern name (the CDK app makes one stack per concern, or per
group of concerns: ``cdk.app.STACK_OF``)."""

TOPOLOGY: Topology = compose(*CONCERNS.values())

__all__ = [
    "BUS_NAME",
    "CONCERNS",
    "TOPOLOGY",
    "Access",
    "Function",
    "Part",
    "Topology",
    "compose",
    "env_for",
    "env_name",
    "resolve_pattern",
    "route_env",
]
