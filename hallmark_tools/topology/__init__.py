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
    env_name,
    resolve_pattern,
    route_env,
)

TOPOLOGY: Topology = compose(core.PART, release.PART, governance.PART, market.PART, ceremony.PART, scoring.PART,
                             deployment.PART)

__all__ = [
    "BUS_NAME",
    "TOPOLOGY",
    "Access",
    "Function",
    "Part",
    "Topology",
    "compose",
    "env_name",
    "resolve_pattern",
    "route_env",
]
