"""Each host-side EVI score against hand-computed values (seed 003 heuristics, design flow 5)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hallmark.scoring import features as f
from hallmark.scoring.features import BandCutoffs, EviWeights, ScoringConfig
from hallmark.scoring.schema import EnrichedEvent

ROOT = Path(__file__).resolve().parents[2]
MIN = 60_000
NOW = 1_763_800_000_000


# --- freshness: 0.5 ** (age / half-life) -------------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "source", "age_min", "expected"),
    [
        ("crypto", "solana_mempool", 0, 1.0),
        ("crypto", "solana_mempool", 10, 0.5),  # half-life 10 min
        ("crypto", "solana_mempool", 20, 0.25),
        ("crypto", "eth_mempool", 15, 0.5),  # 15 min
        ("crypto", "eth_mempool", 45, 0.125),
        ("crypto", "dex_trades", 30, 2 ** -0.5),  # crypto default 60 min: 0.70710678
        ("ai", "arxiv", 720, 0.5),  # 12 h
        ("ai", "arxiv", 360, 2 ** -0.5),
        ("ai", "github_events", 540, 0.125),  # 3 h half-life, 9 h old
        ("ai", "hacker_news", 360, 0.5),  # ai default 6 h
    ],
)
def test_freshness_halves_per_domain_source_half_life(domain: str, source: str, age_min: int, expected: float) -> None:
    cfg = ScoringConfig()
    got = f.freshness(NOW - age_min * MIN, NOW, cfg.half_life_minutes(domain, source))
    assert got == pytest.approx(expected, abs=1e-12)


def test_freshness_uses_milliseconds_not_whole_minutes() -> None:
    # 90 s on a 10-minute half-life: 0.5 ** 0.15 = 0.90125046 (the seed truncates to whole minutes)
    assert f.freshness(NOW - 90_000, NOW, 10.0) == pytest.approx(0.5 ** 0.15, abs=1e-12)


def test_freshness_of_a_future_event_is_one_and_half_life_is_configurable() -> None:
    assert f.freshness(NOW + 5 * MIN, NOW, 10.0) == 1.0
    cfg = ScoringConfig(half_lives_min={"crypto:*": 60.0, "ai:*": 360.0, "crypto:solana_mempool": 5.0})
    assert cfg.half_life_minutes("crypto", "solana_mempool") == 5.0
    assert f.freshness(NOW - 10 * MIN, NOW, cfg.half_life_minutes("crypto", "solana_mempool")) == pytest.approx(0.25)
    with pytest.raises(ValueError):
        ScoringConfig(half_lives_min={"crypto:*": 60.0})  # no ai default


@given(age=st.integers(0, 10**10), half_life=st.floats(0.1, 1e5))
def test_freshness_is_in_unit_interval_and_decreasing(age: int, half_life: float) -> None:
    a = f.freshness(NOW - age, NOW, half_life)
    b = f.freshness(NOW - age - MIN, NOW, half_life)
    assert 0.0 <= b <= a <= 1.0


# --- impact ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "source", "metrics", "expected"),
    [
        # solana: 0.7 * min(liq / 1M, 1) + 0.3 * min(holders / 1000, 1)
        ("crypto", "solana_mempool", {"initial_liquidity_usd": 500_000, "holder_count": 250}, 0.7 * 0.5 + 0.3 * 0.25),
        ("crypto", "solana_mempool", {"initial_liquidity_usd": 5e6, "holder_count": 5000}, 1.0),
        ("crypto", "solana_mempool", {}, 0.0),
        ("crypto", "solana_mempool", {"initial_liquidity_usd": -1e6}, 0.0),  # never below 0
        ("crypto", "eth_mempool", {"initial_liquidity_usd": 5e6}, 0.5),  # no heuristic: 0.5
        # arxiv: 0.3 + 0.2 code + 0.2 (>50 refs) + 0.3 benchmark
        ("ai", "arxiv", {}, 0.3),
        ("ai", "arxiv", {"has_code": 1, "reference_count": 51}, 0.7),
        ("ai", "arxiv", {"has_code": 1, "reference_count": 50}, 0.5),  # 50 is not > 50
        ("ai", "arxiv", {"has_code": 1, "reference_count": 80, "is_benchmark": 1}, 1.0),
        ("ai", "arxiv", {"is_benchmark": 1}, 0.6),
        # github: 0.6 * min(stars / 10k, 1) + 0.4 * min(forks / 1k, 1)
        ("ai", "github_events", {"stars": 5000, "forks": 250}, 0.6 * 0.5 + 0.4 * 0.25),
        ("ai", "github_events", {"stars": 50_000, "forks": 10}, 0.6 + 0.004),
        ("ai", "twitter", {"stars": 50_000}, 0.5),
    ],
)
def test_impact_heuristics(domain: str, source: str, metrics: dict[str, float], expected: float) -> None:
    assert f.impact(domain, source, metrics) == pytest.approx(expected, abs=1e-12)


# --- confidence --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "has_entities", "metrics", "expected"),
    [
        ("arxiv", True, {}, 0.95),
        ("arxiv", False, {}, 0.95 * 0.8),  # 0.76: no entities extracted
        ("solana_mempool", True, {}, 0.9),
        ("github_events", True, {}, 0.85),
        ("twitter", True, {}, 0.6),
        ("twitter", False, {}, 0.48),
        ("twitter", True, {"cross_verified": 1}, 0.7),
        ("twitter", False, {"cross_verified": 0}, 0.58),  # the seed checks the key's presence
        ("arxiv", True, {"cross_verified": 1}, 1.0),  # 1.05 capped
        ("some_blog", True, {}, 0.7),  # default reputation
    ],
)
def test_confidence_rules(source: str, has_entities: bool, metrics: dict[str, float], expected: float) -> None:
    assert f.confidence(source, has_entities, metrics) == pytest.approx(expected, abs=1e-12)


def test_confidence_never_starts_below_the_base() -> None:
    cfg = ScoringConfig(source_reputation={"rumour_mill": 0.2})
    assert f.confidence("rumour_mill", True, {}, cfg) == 0.5  # max(0.5, 0.2)
    assert f.confidence("rumour_mill", False, {}, cfg) == pytest.approx(0.4)


# --- gap = 1 - coverage ------------------------------------------------------------------------


def test_gap_is_one_minus_topic_coverage() -> None:
    assert f.gap(0.3) == pytest.approx(0.7)
    assert f.gap(1.0) == 0.0
    assert f.gap(0.0) == 1.0
    assert f.gap(None) == 0.5  # unknown coverage: the seed's 0.5
    assert f.gap(None, default_coverage=0.2) == pytest.approx(0.8)
    assert f.gap(1.7) == 0.0  # clamped


def test_topic_coverage_is_the_mean_over_known_topics() -> None:
    cov = {"token_launch": 0.9, "llm": 0.2, "benchmark": 0.6}
    assert f.topic_coverage(["llm", "benchmark", "unknown"], cov) == pytest.approx(0.4)
    assert f.topic_coverage(["unknown"], cov) is None
    assert f.topic_coverage([], cov) is None


# --- total, bands, briefs ----------------------------------------------------------------------


def test_total_evi_is_the_weighted_sum() -> None:
    # (freshness, novelty, impact, confidence, gap) . (.25, .25, .30, .15, .05)
    scores = (0.5, 0.8, 0.425, 0.95, 0.7)
    expected = 0.125 + 0.2 + 0.1275 + 0.1425 + 0.035  # 0.63
    assert f.total_evi(scores, EviWeights()) == pytest.approx(expected, abs=1e-12)
    assert f.band_for(expected) == "same_day"
    assert f.total_evi((1, 1, 1, 1, 1), EviWeights()) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("total", "band"),
    [(1.0, "instant"), (0.8, "instant"), (0.79999995, "instant"), (0.7999, "same_day"), (0.6, "same_day"),
     (0.5999, "weekly"), (0.4, "weekly"), (0.3999, "archive"), (0.0, "archive")],
)
def test_band_cutoffs_default(total: float, band: str) -> None:
    assert f.band_for(total) == band


def test_band_cutoffs_are_configurable() -> None:
    cut = BandCutoffs(instant=0.9, same_day=0.5, weekly=0.1)
    assert [f.band_for(t, cut) for t in (0.95, 0.85, 0.5, 0.2, 0.05)] == [
        "instant", "same_day", "same_day", "weekly", "archive"]
    with pytest.raises(ValueError):
        BandCutoffs(instant=0.5, same_day=0.6, weekly=0.4)


def test_band_follows_the_configured_weights_not_the_defaults() -> None:
    # seed 003's determine_band recomputes the total with the default weights: not here
    impact_only = EviWeights(freshness=0, novelty=0, impact=1.0, confidence=0, gap=0)
    scores = (0.0, 0.0, 0.9, 0.0, 0.0)
    assert f.band_for(f.total_evi(scores, impact_only)) == "instant"
    assert f.band_for(f.total_evi(scores, EviWeights())) == "archive"  # 0.27 with the defaults


def test_weights_must_sum_to_one() -> None:
    with pytest.raises(ValueError):
        EviWeights(freshness=0.5, novelty=0.5, impact=0.5, confidence=0.0, gap=0.0)
    with pytest.raises(ValueError):
        EviWeights(freshness=-0.1, novelty=0.35, impact=0.3, confidence=0.4, gap=0.05)
    assert EviWeights().as_tuple() == (0.25, 0.25, 0.30, 0.15, 0.05)


@pytest.mark.parametrize(
    ("impact", "level"),
    [(0.95, "critical"), (0.81, "critical"), (0.8, "high"), (0.61, "high"), (0.6, "medium"), (0.41, "medium"),
     (0.4, "low"), (0.0, "low")],
)
def test_brief_impact_level(impact: float, level: str) -> None:
    assert f.impact_level(impact) == level


def test_brief_expiry() -> None:
    created = 1_763_800_000_000
    assert f.brief_expiry("instant", created) == created + 30 * 60 * 1000
    assert f.brief_expiry("same_day", created) == created + 24 * 3600 * 1000
    assert f.brief_expiry("weekly", created) is None
    assert f.brief_expiry("archive", created) is None


def test_config_round_trips_through_json() -> None:
    cfg = ScoringConfig(weights=EviWeights(freshness=0.2, novelty=0.3, impact=0.4, confidence=0.05, gap=0.05),
                        cutoffs=BandCutoffs(instant=0.85), k=10)
    assert ScoringConfig.model_validate_json(cfg.model_dump_json()) == cfg


# --- a whole event -----------------------------------------------------------------------------


def test_compute_features_of_the_sample_events() -> None:
    crypto = EnrichedEvent.model_validate_json((ROOT / "events/samples/enriched_event.json").read_text())
    ai = EnrichedEvent.model_validate_json((ROOT / "events/samples/enriched_event_ai.json").read_text())
    now = crypto.timestamp + 10 * MIN
    fc = f.compute_features(crypto, now, coverage=0.25)
    # solana: 10 min old on a 10 min half-life; liquidity 250k, 120 holders; reputation 0.9 with entities
    assert fc.freshness == pytest.approx(0.5)
    assert fc.impact == pytest.approx(0.7 * 0.25 + 0.3 * 0.12)
    assert fc.confidence == pytest.approx(0.9)
    assert fc.gap == pytest.approx(0.75)
    assert fc.has_embedding and fc.event_id == crypto.event_id
    fa = f.compute_features(ai, now)
    # arxiv, 70 min old on 720 min; code + 64 refs; 0.95 + 0.1 capped at 1; coverage unknown
    assert fa.freshness == pytest.approx(0.5 ** (70 / 720))
    assert fa.impact == pytest.approx(0.7)
    assert fa.confidence == 1.0
    assert fa.gap == 0.5


def test_feature_and_embedding_matrices() -> None:
    raw = json.loads((ROOT / "events/samples/enriched_event.json").read_text())
    with_emb = EnrichedEvent.model_validate(raw)
    raw["payload"].pop("embeddings")
    without = EnrichedEvent.model_validate(raw)
    feats = [f.compute_features(e, NOW) for e in (with_emb, without)]
    mat, has = f.feature_matrix(feats)
    assert mat.shape == (2, 4) and mat.dtype.name == "float32"
    assert has.tolist() == [True, False]
    emb = f.embedding_matrix([with_emb, without])
    assert emb.shape == (2, 768)
    assert math.isclose(float(emb[0, 0]), with_emb.payload.embeddings[0], rel_tol=1e-6)  # type: ignore[index]
    assert not emb[1].any()
