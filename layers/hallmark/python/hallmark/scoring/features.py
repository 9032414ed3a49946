"""Host-side EVI features, configuration, banding and brief rules (design flow 5, seed 003).

The five base scores are in [0, 1]:

- freshness  = 0.5 ** (age / half-life), the half-life chosen per domain and source;
- novelty    = 1 - mean cosine similarity to the k nearest vectors of the reference corpus
               (computed by the EVI model, not here: 0.5 without an embedding, 1.0 against an
               empty corpus);
- impact     = seed 003's per-source heuristics over ``payload.extracted.metrics``;
- confidence = seed 003's source reputation, entity and cross-verification rules;
- gap        = 1 - topic coverage by recent briefs and the corpus (``coverage``; 0.5 for an
               event without topics).

``total_evi`` is their weighted sum and the band is cut from that same total (seed 003's
evaluator recomputes the band with the default weights whatever the configured ones; we do not).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hallmark.scoring.coverage import CoverageConfig
from hallmark.scoring.schema import EMBEDDING_DIM, Band, EnrichedEvent, ImpactLevel

if TYPE_CHECKING:  # numpy is imported where arrays are built: handlers that never build one skip it
    import numpy as np
    import numpy.typing as npt

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS

SCORE_NAMES: tuple[str, ...] = ("freshness", "novelty", "impact", "confidence", "gap")
"""Order of the scores everywhere: envelopes, weight vectors, the model's ``scores`` output."""

FEATURE_NAMES: tuple[str, ...] = ("freshness", "impact", "confidence", "gap")
"""Order of the host-computed columns fed to the model (novelty is computed by the model)."""

BAND_EPSILON = 1e-6
"""A total within this of a cut-off counts as reaching it, so float rounding of a weighted sum
(0.25*0.8 + ... = 0.79999995) never drops an event a band. The model uses the same constant."""

DEFAULT_HALF_LIVES_MIN: dict[str, float] = {
    # seed 003, EVICalculator::calculate_freshness (minutes); "<domain>:*" is the domain default
    "crypto:solana_mempool": 10.0,
    "crypto:eth_mempool": 15.0,
    "crypto:*": 60.0,
    "ai:arxiv": 720.0,
    "ai:github_events": 180.0,
    "ai:*": 360.0,
}

DEFAULT_SOURCE_REPUTATION: dict[str, float] = {
    # seed 003, EVICalculator::calculate_confidence
    "solana_mempool": 0.9,
    "eth_mempool": 0.9,
    "github_events": 0.85,
    "arxiv": 0.95,
    "twitter": 0.6,
}
DEFAULT_REPUTATION = 0.7
BASE_CONFIDENCE = 0.5
NO_ENTITY_PENALTY = 0.8
CROSS_VERIFIED_BONUS = 0.1
DEFAULT_IMPACT = 0.5
DEFAULT_COVERAGE = 0.5

BRIEF_TTL_MS: dict[str, int] = {"instant": 30 * MINUTE_MS, "same_day": 24 * HOUR_MS}

_Unit = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class EviWeights(BaseModel):
    """Weights of the five scores (seed default [.25, .25, .30, .15, .05]); they sum to 1."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    freshness: _Unit = 0.25
    novelty: _Unit = 0.25
    impact: _Unit = 0.30
    confidence: _Unit = 0.15
    gap: _Unit = 0.05

    @model_validator(mode="after")
    def _sum_to_one(self) -> EviWeights:
        total = sum(self.as_tuple())
        if abs(total - 1.0) > 1e-3:
            raise ValueError(f"EVI weights must sum to 1 (got {total:.6f})")
        return self

    def as_tuple(self) -> tuple[float, float, float, float, float]:
        return (self.freshness, self.novelty, self.impact, self.confidence, self.gap)

    def as_array(self) -> npt.NDArray[np.float32]:
        import numpy as np
        return np.asarray(self.as_tuple(), dtype=np.float32)


class BandCutoffs(BaseModel):
    """Lower bounds of the bands on total_evi: instant >= 0.80, same_day >= 0.60, weekly >= 0.40."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    instant: _Unit = 0.80
    same_day: _Unit = 0.60
    weekly: _Unit = 0.40

    @model_validator(mode="after")
    def _descending(self) -> BandCutoffs:
        if not self.instant >= self.same_day >= self.weekly:
            raise ValueError("band cut-offs must satisfy instant >= same_day >= weekly")
        return self

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.instant, self.same_day, self.weekly)

    def as_array(self) -> npt.NDArray[np.float32]:
        import numpy as np
        return np.asarray(self.as_tuple(), dtype=np.float32)


class ScoringConfig(BaseModel):
    """Everything tunable about EVI scoring. Load it from JSON with ``model_validate_json``."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    weights: EviWeights = Field(default_factory=EviWeights)
    cutoffs: BandCutoffs = Field(default_factory=BandCutoffs)
    half_lives_min: dict[str, Annotated[float, Field(gt=0.0)]] = Field(
        default_factory=lambda: dict(DEFAULT_HALF_LIVES_MIN)
    )
    source_reputation: dict[str, _Unit] = Field(default_factory=lambda: dict(DEFAULT_SOURCE_REPUTATION))
    default_reputation: _Unit = DEFAULT_REPUTATION
    default_coverage: _Unit = DEFAULT_COVERAGE
    coverage: CoverageConfig = Field(default_factory=CoverageConfig)
    k: Annotated[int, Field(ge=1, le=1024)] = 10

    @model_validator(mode="after")
    def _domain_defaults(self) -> ScoringConfig:
        for domain in ("crypto", "ai"):
            if f"{domain}:*" not in self.half_lives_min:
                raise ValueError(f"half_lives_min needs a default for domain {domain!r} ('{domain}:*')")
        return self

    def half_life_minutes(self, domain: str, source: str) -> float:
        return self.half_lives_min.get(f"{domain}:{source}", self.half_lives_min[f"{domain}:*"])


# --- the scores ------------------------------------------------------------------------------


def _clamp01(x: float) -> float:
    if math.isnan(x):
        return 0.0
    return min(1.0, max(0.0, x))


def freshness(timestamp_ms: int, now_ms: int, half_life_minutes: float) -> float:
    """0.5 ** (age / half-life); an event from the future counts as brand new (1.0)."""
    if half_life_minutes <= 0:
        raise ValueError("half-life must be positive")
    age_min = max(0, now_ms - timestamp_ms) / MINUTE_MS
    return _clamp01(0.5 ** (age_min / half_life_minutes))


def impact(domain: str, source: str, metrics: Mapping[str, float]) -> float:
    """Seed 003's impact heuristics; 0.5 for sources without one."""

    def m(name: str) -> float:
        return float(metrics.get(name, 0.0))

    if domain == "crypto" and source == "solana_mempool":
        liquidity = min(m("initial_liquidity_usd") / 1_000_000.0, 1.0)  # $1M = max
        holders = min(m("holder_count") / 1000.0, 1.0)  # 1k holders = max
        return _clamp01(0.7 * max(liquidity, 0.0) + 0.3 * max(holders, 0.0))
    if domain == "ai" and source == "arxiv":
        score = 0.3
        if m("has_code") > 0.0:
            score += 0.2
        if m("reference_count") > 50.0:
            score += 0.2
        if m("is_benchmark") > 0.0:
            score += 0.3
        return _clamp01(score)
    if domain == "ai" and source == "github_events":
        stars = min(m("stars") / 10_000.0, 1.0)
        forks = min(m("forks") / 1000.0, 1.0)
        return _clamp01(0.6 * max(stars, 0.0) + 0.4 * max(forks, 0.0))
    return DEFAULT_IMPACT


def confidence(
    source: str,
    has_entities: bool,
    metrics: Mapping[str, float],
    config: ScoringConfig | None = None,
) -> float:
    """max(0.5, source reputation); x0.8 without extracted entities; +0.1 (capped at 1) when the
    enricher marked the event ``cross_verified`` (seed 003 checks the key's presence)."""
    cfg = config or ScoringConfig()
    value = max(BASE_CONFIDENCE, cfg.source_reputation.get(source, cfg.default_reputation))
    if not has_entities:
        value *= NO_ENTITY_PENALTY
    if "cross_verified" in metrics:
        value = min(value + CROSS_VERIFIED_BONUS, 1.0)
    return _clamp01(value)


def topic_coverage(topic_hints: Sequence[str], coverage_by_topic: Mapping[str, float]) -> float | None:
    """Mean coverage of the event's topics that the knowledge graph knows; None when it knows none."""
    known = [float(coverage_by_topic[t]) for t in topic_hints if t in coverage_by_topic]
    if not known:
        return None
    return _clamp01(sum(known) / len(known))


def gap(coverage: float | None, default_coverage: float = DEFAULT_COVERAGE) -> float:
    """1 - topic coverage; an unknown coverage counts as ``default_coverage`` (seed: 0.5)."""
    return _clamp01(1.0 - (default_coverage if coverage is None else coverage))


def total_evi(scores: Sequence[float], weights: EviWeights) -> float:
    """Weighted sum of (freshness, novelty, impact, confidence, gap), clamped to [0, 1]."""
    if len(scores) != len(SCORE_NAMES):
        raise ValueError("scores must be (freshness, novelty, impact, confidence, gap)")
    return _clamp01(sum(s * w for s, w in zip(scores, weights.as_tuple(), strict=True)))


def band_for(total: float, cutoffs: BandCutoffs | None = None) -> Band:
    """The band of a total_evi computed with the configured weights."""
    c = cutoffs or BandCutoffs()
    if total + BAND_EPSILON >= c.instant:
        return "instant"
    if total + BAND_EPSILON >= c.same_day:
        return "same_day"
    if total + BAND_EPSILON >= c.weekly:
        return "weekly"
    return "archive"


def impact_level(impact_score: float) -> ImpactLevel:
    """Brief impact level: > 0.8 critical, > 0.6 high, > 0.4 medium, else low."""
    if impact_score > 0.8:
        return "critical"
    if impact_score > 0.6:
        return "high"
    if impact_score > 0.4:
        return "medium"
    return "low"


def brief_expiry(band: Band, created_at_ms: int) -> int | None:
    """Briefs expire 30 min (instant) or 24 h (same_day) after creation; others do not."""
    ttl = BRIEF_TTL_MS.get(band)
    return None if ttl is None else created_at_ms + ttl


# --- per-event features ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventFeatures:
    """The host-computed inputs of one event to the EVI model."""

    event_id: str
    freshness: float
    impact: float
    confidence: float
    gap: float
    has_embedding: bool


def compute_features(
    event: EnrichedEvent,
    now_ms: int,
    config: ScoringConfig | None = None,
    coverage: float | None = None,
) -> EventFeatures:
    """Freshness, impact, confidence and gap of one event at ``now_ms``.

    ``coverage`` is the topic coverage of the event's sub-graph (None: unknown, see ``gap``).
    """
    cfg = config or ScoringConfig()
    extracted = event.payload.extracted
    return EventFeatures(
        event_id=event.event_id,
        freshness=freshness(event.timestamp, now_ms, cfg.half_life_minutes(event.domain, event.source)),
        impact=impact(event.domain, event.source, extracted.metrics),
        confidence=confidence(event.source, bool(extracted.entities), extracted.metrics, cfg),
        gap=gap(coverage, cfg.default_coverage),
        has_embedding=event.payload.embeddings is not None,
    )


def feature_matrix(
    features: Sequence[EventFeatures],
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """([B, 4] float32 in FEATURE_NAMES order, [B] has_embedding) for the model."""
    import numpy as np
    mat = np.asarray(
        [(f.freshness, f.impact, f.confidence, f.gap) for f in features], dtype=np.float32
    ).reshape(len(features), len(FEATURE_NAMES))
    has = np.asarray([f.has_embedding for f in features], dtype=np.bool_).reshape(len(features))
    return mat, has


def embedding_matrix(events: Sequence[EnrichedEvent]) -> npt.NDArray[np.float32]:
    """[B, 768] float32 of the events' embeddings, a zero row where an event has none."""
    import numpy as np
    out = np.zeros((len(events), EMBEDDING_DIM), dtype=np.float32)
    for i, event in enumerate(events):
        if event.payload.embeddings is not None:
            out[i] = event.payload.embeddings
    return out
