"""The HTTP API stage's throttling (API Gateway token buckets): a default for every route and
tighter limits on the routes that start work or move money. Read by the CDK app (stage
``DefaultRouteSettings`` and ``RouteSettings``); ``check_throttles`` keeps every key a declared route."""

from __future__ import annotations

from dataclasses import dataclass

from hallmark_tools.topology.model import Topology


@dataclass(frozen=True)
class Throttle:
    rate: float  # steady-state requests per second
    burst: int  # bucket size


DEFAULT_THROTTLE = Throttle(rate=100, burst=200)
ROUTE_THROTTLES: dict[str, Throttle] = {
    "POST /packages": Throttle(rate=5, burst=10),  # each one starts a release execution
    "POST /listings/{listingId}/checkout": Throttle(rate=10, burst=20),  # posts to the ledger
    "POST /settlements": Throttle(rate=5, burst=10),
    "POST /settlements/{settlementId}/payouts": Throttle(rate=2, burst=5),
    "POST /wallets/deposit": Throttle(rate=5, burst=10),
    "POST /webhooks": Throttle(rate=1, burst=5),
}


def check_throttles(topology: Topology) -> dict[str, Throttle]:
    """The per-route limits, refusing one for a route the topology does not declare."""
    unknown = sorted(set(ROUTE_THROTTLES) - set(topology.routes()))
    if unknown:
        raise ValueError(f"throttles for undeclared routes: {unknown}")
    for key, t in {**ROUTE_THROTTLES, "$default": DEFAULT_THROTTLE}.items():
        if t.rate <= 0 or t.burst <= 0 or t.rate > DEFAULT_THROTTLE.rate or t.burst > DEFAULT_THROTTLE.burst:
            raise ValueError(f"throttle for {key} must be positive and within the default: {t}")
    return dict(ROUTE_THROTTLES)
