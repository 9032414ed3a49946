"""The demo scenario, one module per flow; ``STEPS`` runs them in the order of DESIGN.md."""

from __future__ import annotations

from hallmark_tools.scenarios import audit, ceremony, deployment, governance, market, release, scoring
from hallmark_tools.scenarios.base import DemoContext, Step

STEPS: list[tuple[str, Step]] = [
    *release.STEPS,
    *governance.STEPS,
    *ceremony.STEPS,
    *market.STEPS,
    *scoring.STEPS,
    *deployment.STEPS,
    *audit.STEPS,  # last: exports and verifies what every flow wrote
]

__all__ = ["STEPS", "DemoContext", "Step"]
