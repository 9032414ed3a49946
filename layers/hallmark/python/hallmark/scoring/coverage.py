"""Topic coverage for the gap score (docs/scoring-gap.md has the formula with worked cases).

gap = 1 - coverage(event), where coverage is how much of the event's topics (its ``topic_hints``
and extracted entities) recent briefs and the reference corpus of the event's domain already
cover. The coverage index is data Hallmark holds: it is kept next to the corpus
(``<corpus>.coverage.json``) and updated by the runner that updates the corpus, under the same
lease, from the same batch:

- the **briefs** term counts, per topic, the briefs the band router makes of the batch (every
  same_day/weekly event lands in exactly one brief; a brief covers the topics of all its events),
  one per brief, decayed with half-life ``brief_half_life_h``;
- the **corpus** term counts, per topic, the scored events entering the reference corpus, decayed
  with half-life ``corpus_half_life_h``.

Both are exponentially decayed sums kept as one number per (domain, topic, term) at the index's
``as_of_ms``, so a batch costs one pass over the index. A topic whose two weights have decayed
below ``prune_below`` leaves the index (the window: about log2(1 / prune_below) half-lives).

coverage(d, t) = x / (x + k) with x = W_brief(d, t) + corpus_weight * W_corpus(d, t);
coverage(event) = the mean of coverage(d, t) over the event's topics (a topic the index does not
hold counts 0: nothing covers it); None for an event without topics (the gap then uses
``ScoringConfig.default_coverage``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from hallmark.scoring.schema import EnrichedEvent

HOUR_MS = 3_600_000
INDEX_FORMAT = 1
ENTITY_KEYS: tuple[str, ...] = ("id", "name", "symbol", "address")
"""The first of these an entity carries (a string) identifies it, qualified by its ``type``."""


class CoverageConfig(BaseModel):
    """The window and the weighting of the coverage index."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    brief_half_life_h: Annotated[float, Field(gt=0.0)] = 24.0
    corpus_half_life_h: Annotated[float, Field(gt=0.0)] = 168.0
    corpus_weight: Annotated[float, Field(ge=0.0)] = 0.1
    """A corpus event on a topic counts this much of a brief on it (ten events ~ one brief)."""
    k: Annotated[float, Field(gt=0.0)] = 1.0
    """The weight at which a topic is half covered."""
    prune_below: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.01
    max_topics_per_domain: Annotated[int, Field(ge=1)] = 50_000


def _norm_topic(text: str) -> str:
    return "_".join(text.strip().lower().split())


def event_topics(event: EnrichedEvent) -> list[str]:
    """The event's topics: each topic hint (lower case, blanks as ``_``) and each extracted entity
    as ``<type>:<id>`` (the id as given: entity ids are case-sensitive), without repeats, in order."""
    out: dict[str, None] = {}
    for hint in event.topic_hints:
        t = _norm_topic(hint)
        if t:
            out.setdefault(t, None)
    for entity in event.payload.extracted.entities:
        ident = next((v.strip() for k in ENTITY_KEYS if isinstance(v := entity.get(k), str) and v.strip()), "")
        if not ident:
            continue
        kind = entity.get("type")
        out.setdefault(f"{_norm_topic(kind)}:{ident}" if isinstance(kind, str) and kind.strip() else ident, None)
    return list(out)


@dataclass
class CoverageIndex:
    """Per domain, per topic: [W_brief, W_corpus] decayed to ``as_of_ms``."""

    config: CoverageConfig = field(default_factory=CoverageConfig)
    as_of_ms: int = 0
    domains: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    # --- reading ---------------------------------------------------------------------------------

    def _decay(self, now_ms: int) -> tuple[float, float]:
        dt_h = max(0, now_ms - self.as_of_ms) / HOUR_MS
        return 0.5 ** (dt_h / self.config.brief_half_life_h), 0.5 ** (dt_h / self.config.corpus_half_life_h)

    def topic_coverage(self, domain: str, topic: str, now_ms: int) -> float:
        weights = self.domains.get(domain, {}).get(topic)
        if weights is None:
            return 0.0
        db, dc = self._decay(now_ms)
        x = weights[0] * db + self.config.corpus_weight * weights[1] * dc
        return x / (x + self.config.k)

    def coverage(self, domain: str, topics: Sequence[str], now_ms: int) -> float | None:
        """The mean coverage of ``topics`` in ``domain`` at ``now_ms``; None without topics."""
        if not topics:
            return None
        return math.fsum(self.topic_coverage(domain, t, now_ms) for t in topics) / len(topics)

    def event_coverage(self, event: EnrichedEvent, now_ms: int) -> float | None:
        return self.coverage(event.domain, event_topics(event), now_ms)

    # --- updating --------------------------------------------------------------------------------

    def advance(self, now_ms: int) -> None:
        """Decay every weight to ``now_ms`` (never backwards) and prune the faded topics."""
        if now_ms <= self.as_of_ms:
            return
        db, dc = self._decay(now_ms)
        floor = self.config.prune_below
        for domain, topics in self.domains.items():
            self.domains[domain] = {t: [w[0] * db, w[1] * dc] for t, w in topics.items()
                                    if w[0] * db >= floor or w[1] * dc >= floor}
        self.as_of_ms = now_ms

    def _add(self, domain: str, topics: Iterable[str], term: int) -> None:
        table = self.domains.setdefault(domain, {})
        for t in topics:
            table.setdefault(t, [0.0, 0.0])[term] += 1.0

    def add(self, now_ms: int, *, briefs: Iterable[tuple[str, Iterable[str]]] = (),
            corpus: Iterable[tuple[str, Iterable[str]]] = ()) -> None:
        """Record briefs and corpus events made at ``now_ms``, each as (domain, its topics)."""
        self.advance(now_ms)
        for domain, topics in briefs:
            self._add(domain, set(topics), 0)
        for domain, topics in corpus:
            self._add(domain, set(topics), 1)
        cap = self.config.max_topics_per_domain
        for domain, table in self.domains.items():
            if len(table) > cap:
                keep = sorted(table.items(), key=lambda kv: (-(kv[1][0] + self.config.corpus_weight * kv[1][1]),
                                                             kv[0]))[:cap]
                self.domains[domain] = dict(keep)

    # --- storage ---------------------------------------------------------------------------------

    def dumps(self) -> bytes:
        return json.dumps({"format": INDEX_FORMAT, "asOfMs": self.as_of_ms, "domains": self.domains},
                          sort_keys=True, separators=(",", ":")).encode("utf-8")

    @classmethod
    def loads(cls, raw: bytes, config: CoverageConfig | None = None) -> CoverageIndex:
        """Parse a stored index; a malformed one raises ValueError (the run fails, it does not guess)."""
        try:
            doc: Any = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"the coverage index is not JSON: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != INDEX_FORMAT:
            raise ValueError(f"the coverage index is not of format {INDEX_FORMAT}")
        as_of, domains = doc.get("asOfMs"), doc.get("domains")
        if not isinstance(as_of, int) or as_of < 0 or not isinstance(domains, dict):
            raise ValueError("the coverage index needs an integer asOfMs >= 0 and a domains object")
        parsed: dict[str, dict[str, list[float]]] = {}
        for domain, topics in domains.items():
            if not isinstance(topics, dict):
                raise ValueError(f"coverage index domain {domain!r} is not an object")
            table: dict[str, list[float]] = {}
            for topic, w in topics.items():
                if (not isinstance(w, list) or len(w) != 2
                        or not all(isinstance(x, int | float) and math.isfinite(x) and x >= 0 for x in w)):
                    raise ValueError(f"coverage index weights of {domain}/{topic} must be two finite numbers >= 0")
                table[topic] = [float(w[0]), float(w[1])]
            parsed[domain] = table
        return cls(config=config or CoverageConfig(), as_of_ms=as_of, domains=parsed)


def coverage_key(corpus_key: str) -> str:
    """Where the coverage index of a corpus lives: ``corpus/current.npy`` -> ``corpus/current.coverage.json``."""
    stem = corpus_key[: -len(".npy")] if corpus_key.endswith(".npy") else corpus_key
    return f"{stem}.coverage.json"
