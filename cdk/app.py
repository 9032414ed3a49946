"""The CDK app: `cdk synth` / `cdk deploy --all` (cdk.json points here).

One stack per concern of the topology (``hallmark_tools.topology.CONCERNS``), or per group of
concerns named in :data:`STACK_OF`; a concern not named there gets a stack of its own,
``Hallmark<Concern>``. The core stack (the bus, the shared keys, tables and buckets, the audit log)
comes first, the API stack (every route, the dashboard) last; cross-stack references are explicit
fixed-name exports (cdk/refs.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aws_cdk import App, Aspects, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from cdk.alarms import PageOnAlarm
from cdk.api_stack import ApiStack
from cdk.hallmark_stack import ConcernStack
from cdk.refs import Registry, cid
from hallmark_tools import topology as topology_module
from hallmark_tools.topology import Topology

CORE = "core"
STACK_OF: dict[str, str] = {
    "core": "HallmarkCore",
    "release": "HallmarkRelease",
    "governance": "HallmarkRelease",  # the release state machine runs the governance steps
    "ceremony": "HallmarkCeremony",
    "market": "HallmarkMarket",
    "scoring": "HallmarkScoring",
}
API_STACK = "HallmarkApi"
MAX_RESOURCES = 200
"""Each stack's bound (CloudFormation's hard limit is 500): tests/infra asserts it."""

TOPOLOGY: Topology = topology_module.TOPOLOGY
CONCERNS = topology_module.CONCERNS


def stack_of(concern: str) -> str:
    return STACK_OF.get(concern, f"Hallmark{cid(concern)}")


KINDS = ("functions", "queues", "tables", "buckets", "keys", "rules", "state_machines")


def split(topology: Topology) -> dict[str, Topology]:
    """Stack name -> its share of ``topology``: each item goes where its concern module declares
    it (an item no concern module declares, e.g. in a test's variant of the topology: core)."""
    concern_of = {(kind, x.name): c for c, part in CONCERNS.items() for kind in KINDS for x in getattr(part, kind)}
    shares: dict[str, dict[str, list[object]]] = {stack_of(c): {k: [] for k in KINDS} for c in CONCERNS}
    for kind in KINDS:
        for x in getattr(topology, kind):
            shares[stack_of(concern_of.get((kind, x.name), CORE))][kind].append(x)
    return {name: Topology(*(tuple(share[k]) for k in KINDS)) for name, share in shares.items()}  # type: ignore[arg-type]


def build_app(app: App | None = None) -> App:
    app = app or App()
    # Server access logs are granted to logging.s3.amazonaws.com by bucket policy, not by the
    # legacy LogDeliveryWrite ACL, so the access-log bucket can keep ACLs disabled.
    app.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)
    issuer, audience = (app.node.try_get_context(k) for k in ("oidcIssuer", "oidcAudience"))
    if not issuer or not audience or "REPLACE_ME" in f"{issuer}{audience}":
        raise SystemExit(
            "cdk synth: the HTTP API's JWT authorizer needs the identity provider: pass "
            "-c oidcIssuer=https://cognito-idp.REGION.amazonaws.com/POOL_ID -c oidcAudience=APP_CLIENT_ID "
            "(README 'Deploying'); refusing to synthesize an API that trusts a placeholder issuer")
    env = Environment(account=app.node.try_get_context("account"), region=app.node.try_get_context("region"))
    refs = Registry()
    for name, own in split(TOPOLOGY).items():
        concerns = [c for c in CONCERNS if stack_of(c) == name]
        ConcernStack(app, name, topology=TOPOLOGY, own=own, refs=refs, owns_bus=name == stack_of(CORE), env=env,
                     description=f"Hallmark: {', '.join(concerns)}")
    ApiStack(app, API_STACK, topology=TOPOLOGY, refs=refs, oidc_issuer=issuer, oidc_audience=[audience], env=env,
             description="Hallmark HTTP API (every concern's routes) and the operations dashboard")
    Aspects.of(app).add(PageOnAlarm())
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


if __name__ == "__main__":
    build_app().synth()
