"""Value types of the deployment flow: stages, the per-environment policy and the tier profile."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from hallmark.ceremony.models import TIERS, Tier

Environment = Literal["development", "staging", "production"]
ENVIRONMENTS: Final[tuple[Environment, ...]] = ("development", "staging", "production")
Stage = Literal["requested", "admitted", "deploying", "canary", "live", "rolled_back", "refused", "drifted", "failed"]
TERMINAL: Final = frozenset({"live", "rolled_back", "refused", "failed"})
TIER_RANK: Final[dict[str, int]] = {t: i + 1 for i, t in enumerate(TIERS)}
DriftAction = Literal["revert", "alarm"]

#: Lambda's largest ephemeral storage (10 GiB): a doubled gold profile is capped here.
LAMBDA_MAX_EPHEMERAL_MIB: Final = 10240
MANAGED_PREFIX: Final = "hallmark-app-"
MANAGED_TAG: Final = "hallmark:managed"
KIND: Final = "deployment"
TARGET: Final = "deployment-target"

_BASE: Final[dict[str, tuple[int, int, int, int]]] = {
    # memory MiB, ephemeral MiB, replicas, log retention days
    "bronze": (512, 1024, 1, 7),
    "silver": (1024, 5120, 2, 30),
    "gold": (2048, 10240, 3, 90),
}
ALARMS: Final[dict[str, tuple[str, ...]]] = {
    "bronze": ("errors",),  # basic
    "silver": ("errors", "throttles", "duration_p95"),  # standard
    "gold": ("errors", "throttles", "duration_p95", "error_anomaly"),  # comprehensive
}
ALERT_LEVEL: Final = {"bronze": "basic", "silver": "standard", "gold": "comprehensive"}


@dataclass(frozen=True)
class TierProfile:
    tier: Tier
    memory_mib: int
    ephemeral_mib: int
    ephemeral_capped: bool
    replicas: int
    concurrency: Literal["provisioned", "reserved"]
    log_retention_days: int
    alerts: str
    alarms: tuple[str, ...]

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "tier": self.tier, "memoryMiB": self.memory_mib, "ephemeralStorageMiB": self.ephemeral_mib,
            "replicas": self.replicas, "concurrency": self.concurrency,
            "logRetentionDays": self.log_retention_days, "alerts": self.alerts, "alarms": list(self.alarms),
        }
        if self.ephemeral_capped:
            out["ephemeralStorageCap"] = (f"doubled to {2 * _BASE[self.tier][1]} MiB for production, "
                                          f"capped at Lambda's {LAMBDA_MAX_EPHEMERAL_MIB} MiB")
        return out


def tier_profile(tier: Tier, environment: Environment) -> TierProfile:
    """Memory 512/1024/2048 MiB and ephemeral storage 1/5/10 GiB (x2 in production, storage capped
    at 10 GiB); replicas 1/2/3 as provisioned concurrency in production, reserved elsewhere; log
    retention 7/30/90 days; basic/standard/comprehensive alarms."""
    memory, ephemeral, replicas, retention = _BASE[tier]
    k = 2 if environment == "production" else 1
    wanted = ephemeral * k
    return TierProfile(
        tier=tier, memory_mib=memory * k, ephemeral_mib=min(wanted, LAMBDA_MAX_EPHEMERAL_MIB),
        ephemeral_capped=wanted > LAMBDA_MAX_EPHEMERAL_MIB, replicas=replicas,
        concurrency="provisioned" if environment == "production" else "reserved",
        log_retention_days=retention, alerts=ALERT_LEVEL[tier], alarms=ALARMS[tier],
    )


@dataclass(frozen=True)
class Policy:
    """Per environment: the minimum tier (None: any verified tier), what drift does, the canary."""

    min_tier: dict[str, str | None] = field(
        default_factory=lambda: {"development": None, "staging": None, "production": "bronze"})
    drift: dict[str, DriftAction] = field(
        default_factory=lambda: {"development": "alarm", "staging": "revert", "production": "revert"})
    canary_weight: float = 0.1
    bake_seconds: int = 600

    @classmethod
    def from_json(cls, text: str | None, bake_seconds: int | None = None) -> Policy:
        """``{"minTier": {env: tier|null}, "drift": {env: "revert"|"alarm"}, "canaryWeight": 0.1}``
        over the defaults; anything else is a configuration error (ValueError)."""
        base = cls()
        raw: dict[str, Any] = json.loads(text) if text else {}
        unknown = set(raw) - {"minTier", "drift", "canaryWeight"}
        if unknown:
            raise ValueError(f"deployment policy: unknown keys {sorted(unknown)}")
        min_tier = {**base.min_tier, **raw.get("minTier", {})}
        drift = {**base.drift, **raw.get("drift", {})}
        if set(min_tier) - set(ENVIRONMENTS) or set(drift) - set(ENVIRONMENTS):
            raise ValueError("deployment policy: unknown environment")
        if any(t is not None and t not in TIERS for t in min_tier.values()):
            raise ValueError(f"deployment policy: a minimum tier must be one of {TIERS} or null")
        if any(a not in ("revert", "alarm") for a in drift.values()):
            raise ValueError("deployment policy: drift must be revert or alarm")
        weight = float(raw.get("canaryWeight", base.canary_weight))
        if not 0 < weight < 1:
            raise ValueError("deployment policy: canaryWeight must be in (0, 1)")
        return cls(min_tier=min_tier, drift=drift, canary_weight=weight,
                   bake_seconds=base.bake_seconds if bake_seconds is None else bake_seconds)

    def tier_allowed(self, tier: str, environment: str) -> bool:
        floor = self.min_tier.get(environment)
        return floor is None or TIER_RANK.get(tier, 0) >= TIER_RANK[floor]


def function_name(package: str, environment: str) -> str:
    """``hallmark-app-<package>-<environment>`` (what the deployer's role is limited to), at most
    64 characters (Lambda's limit)."""
    safe = re.sub(r"[^A-Za-z0-9-]", "-", package).strip("-")[: 64 - len(MANAGED_PREFIX) - len(environment) - 1]
    return f"{MANAGED_PREFIX}{safe}-{environment}"


def code_sha256_b64(sha256_hex: str) -> str:
    """Lambda's ``CodeSha256``: base64 of the raw SHA-256 digest of the zip."""
    import base64

    return base64.b64encode(bytes.fromhex(sha256_hex)).decode("ascii")
