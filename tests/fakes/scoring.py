"""In-memory fakes (tests only; never in the Lambda layer)."""

from __future__ import annotations

from typing import Any

from hallmark.scoring.briefs import StoredBrief
from hallmark.scoring.ingest import Claim
from hallmark.scoring.schema import (
    Domain,
    ImpactLevel,
)


class InMemoryDedupe:
    """A ``DedupeStore`` for tests and local runs of the domain."""

    def __init__(self) -> None:
        self.claims: dict[str, dict[str, Any]] = {}

    def claim(self, content_hash: str, event_id: str, now_s: int, window_s: int) -> Claim:
        held = self.claims.get(content_hash)
        if held is None or held["expiresAt"] <= now_s:
            self.claims[content_hash] = {"eventId": event_id, "expiresAt": now_s + window_s, "support_count": 1}
            return Claim(True, event_id, 1)
        if held["eventId"] == event_id:  # a redelivery of the claimant
            return Claim(True, event_id, held["support_count"])
        held["support_count"] += 1
        return Claim(False, held["eventId"], held["support_count"])

    def claim_many(self, items: list[tuple[str, str]], now_s: int, window_s: int) -> list[Claim]:
        return [self.claim(h, e, now_s, window_s) for h, e in items]


class InMemoryBriefStore:
    def __init__(self) -> None:
        self.items: dict[str, StoredBrief] = {}

    def put(self, brief: StoredBrief) -> bool:
        if brief.brief.brief_id in self.items:
            return False
        self.items[brief.brief.brief_id] = brief
        return True

    def get(self, brief_id: str) -> StoredBrief | None:
        return self.items.get(brief_id)

    def list(self, *, domain: Domain | None, impact_level: ImpactLevel | None, since_ms: int | None,
             limit: int) -> list[StoredBrief]:
        out = [b for b in self.items.values()
               if (domain is None or b.domain == domain)
               and (impact_level is None or b.brief.impact_level == impact_level)
               and (since_ms is None or b.brief.created_at >= since_ms)]
        out.sort(key=lambda b: (-b.brief.created_at, b.brief.brief_id))
        return out[:limit]


class InMemoryBlobStore:
    """A BlobStore (and the intake's ChunkStore, the pipeline's RangeReader) in a dict: tests and
    local runs."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def get(self, key: str) -> bytes:
        return self.objects[key]

    def get_range(self, key: str, start: int, length: int) -> bytes:
        return self.objects[key][start:start + length]

    def put(self, key: str, data: bytes) -> None:
        self.objects[key] = data

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)
