"""The band router (design flow 5, step 4) and the briefs it makes.

``route`` joins a batch's envelopes with its events (by ``event_id``, once each) and splits them:
``instant`` events go to webhook subscribers at once; ``same_day`` and ``weekly`` events are grouped
into ``BriefPayload`` briefs (per band, domain and lead topic, at most ``MAX_EVENTS_PER_BRIEF``
events each); ``archive`` events are only counted.

A brief: a headline of at most 200 characters, evidence from its strongest events, every event id,
the impact level of its most impactful event, the mean confidence as ``confidence_score``, the
expiry of its band. Brief ids are derived from the batch and the group, so a retried step writes
the same briefs.
"""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from hallmark.scoring.features import brief_expiry, impact_level
from hallmark.scoring.schema import (
    Band,
    BriefContent,
    BriefPayload,
    Domain,
    EnrichedEvent,
    Evidence,
    EVIEnvelope,
    ImpactLevel,
)

NAMESPACE = uuid.UUID("8a1d8f5e-2c0b-4e55-a4f7-5b8a0f3c6d21")
MAX_EVENTS_PER_BRIEF = 50
EVIDENCE_PER_BRIEF = 5
BRIEF_BANDS: tuple[Band, ...] = ("same_day", "weekly")
ACTIONS: dict[str, list[str]] = {
    "same_day": ["Review today", "Check the evidence against your positions"],
    "weekly": ["Include in the weekly digest"],
}


@dataclass(frozen=True)
class Scored:
    envelope: EVIEnvelope
    event: EnrichedEvent


@dataclass(frozen=True)
class StoredBrief:
    brief: BriefPayload
    band: Band
    domain: Domain
    batch_id: str

    def as_dict(self) -> dict[str, Any]:
        return {"brief": self.brief.model_dump(mode="json"), "band": self.band, "domain": self.domain,
                "batchId": self.batch_id}


@dataclass
class Routing:
    instant: list[Scored] = field(default_factory=list)
    briefs: list[StoredBrief] = field(default_factory=list)
    archived: int = 0
    unmatched: int = 0


class BriefStore(Protocol):
    def put(self, brief: StoredBrief) -> bool:
        """Store it; False when it was already stored (a retried step)."""
        ...

    def get(self, brief_id: str) -> StoredBrief | None: ...

    def list(self, *, domain: Domain | None, impact_level: ImpactLevel | None, since_ms: int | None,
             limit: int) -> list[StoredBrief]:
        """Newest first."""
        ...


def since_ms(value: str | None) -> int | None:
    """``GET /briefs?since=``: Unix milliseconds or an RFC 3339 time with its zone."""
    if value is None or value == "":
        return None
    if value.isdigit():
        return int(value)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("since must be Unix milliseconds or an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise ValueError("since must carry a time zone (e.g. 2026-01-01T00:00:00Z)")
    return int(parsed.timestamp() * 1000)


def pair(envelopes: Sequence[EVIEnvelope], events: Sequence[EnrichedEvent]) -> tuple[list[Scored], int]:
    """Each envelope with its event, once per event id; the count of envelopes without an event."""
    by_id = {e.event_id: e for e in events}
    seen: set[str] = set()
    out: list[Scored] = []
    unmatched = 0
    for env in envelopes:
        if env.event_id in seen:
            continue
        seen.add(env.event_id)
        ev = by_id.get(env.event_id)
        if ev is None:
            unmatched += 1
            continue
        out.append(Scored(env, ev))
    return out, unmatched


def _topic(ev: EnrichedEvent) -> str:
    return ev.topic_hints[0] if ev.topic_hints else ev.source


def _headline(band: Band, domain: str, topic: str, items: Sequence[Scored]) -> str:
    sources = sorted({s.event.source for s in items})
    label = {"same_day": "Same-day", "weekly": "Weekly"}.get(band, band)
    head = (f"{label} {domain} brief: {len(items)} signal{'s' if len(items) != 1 else ''} on "
            f"{topic.replace('_', ' ')} from {', '.join(sources)} (top EVI {max(s.envelope.total_evi for s in items):.2f})")
    return head if len(head) <= 200 else head[:197] + "..."


def _evidence(s: Scored) -> Evidence:
    sc = s.envelope.scores
    text = (f"event {s.event.event_id}: EVI {s.envelope.total_evi:.3f} (freshness {sc.freshness:.2f}, "
            f"novelty {sc.novelty:.2f}, impact {sc.impact:.2f}, confidence {sc.confidence:.2f}, gap {sc.gap:.2f})")
    return Evidence(source=s.event.source, text=text, confidence=sc.confidence)


def make_brief(batch_id: str, band: Band, domain: Domain, topic: str, part: int, items: Sequence[Scored],
               now_ms: int) -> StoredBrief:
    ranked = sorted(items, key=lambda s: (-s.envelope.total_evi, s.event.event_id))
    totals = [s.envelope.total_evi for s in items]
    brief = BriefPayload(
        brief_id=str(uuid.uuid5(NAMESPACE, f"{batch_id}/{band}/{domain}/{topic}/{part}")),
        mission_id=None,
        headline=_headline(band, domain, topic, items),
        content=BriefContent(
            summary=(f"{len(items)} {band.replace('_', ' ')} event(s) in {domain}, topic {topic}; "
                     f"mean EVI {statistics.fmean(totals):.3f}."),
            evidence=[_evidence(s) for s in ranked[:EVIDENCE_PER_BRIEF]],
            suggested_actions=list(ACTIONS.get(band, [])),
            risk_factors={
                "max_evi": round(max(totals), 6),
                "mean_evi": round(statistics.fmean(totals), 6),
                "mean_novelty": round(statistics.fmean(s.envelope.scores.novelty for s in items), 6),
            },
        ),
        event_ids=[s.event.event_id for s in ranked],
        impact_level=impact_level(max(s.envelope.scores.impact for s in items)),
        confidence_score=min(1.0, max(0.0, statistics.fmean(s.envelope.scores.confidence for s in items))),
        created_at=now_ms,
        expires_at=brief_expiry(band, now_ms),
    )
    return StoredBrief(brief, band, domain, batch_id)


def route(batch_id: str, envelopes: Sequence[EVIEnvelope], events: Sequence[EnrichedEvent], now_ms: int,
          max_events: int = MAX_EVENTS_PER_BRIEF) -> Routing:
    scored, unmatched = pair(envelopes, events)
    out = Routing(unmatched=unmatched)
    groups: dict[tuple[Band, Domain, str], list[Scored]] = {}
    for s in scored:
        band = s.envelope.band
        if band == "instant":
            out.instant.append(s)
        elif band in BRIEF_BANDS:
            groups.setdefault((band, s.event.domain, _topic(s.event)), []).append(s)
        else:
            out.archived += 1
    for (band, domain, topic), items in sorted(groups.items()):
        items.sort(key=lambda s: s.event.event_id)
        for part, start in enumerate(range(0, len(items), max_events)):
            out.briefs.append(make_brief(batch_id, band, domain, topic, part, items[start:start + max_events], now_ms))
    out.instant.sort(key=lambda s: (-s.envelope.total_evi, s.event.event_id))
    return out


