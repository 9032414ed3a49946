"""Ingestion of EnrichedEvents (design flow 5, step 1).

Each SQS record carries one EventBridge event whose ``detail`` is an EnrichedEvent. ``Ingestor``
classifies it:

- **rejected**: not JSON, not an ``EnrichedEvent`` detail type, or not valid against the producers'
  JSON Schema (``events/schemas/EnrichedEvent.json``: uuid ``event_id``, integer millisecond
  ``timestamp``, ``domain`` in the enum, ``source`` ``^[a-z_]+$``, a 768-number embedding, ...) or
  the strict pydantic model the runners parse batches with. The reason names the field; the caller
  sends the event and its reason to the rejects queue;
- **duplicate**: another event with the same ``metadata.content_hash`` arrived in the last 24 h.
  It is not scored again: the first one's ``support_count`` is incremented (never dropped silently);
- **accepted**: the event as one compact JSON line, for the open batch.

A redelivery of the event that claimed a content hash (same ``event_id``) is not a duplicate of
itself: it is accepted again (at-least-once; the batch may then hold it twice, the router
dedupes on ``event_id``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from hallmark.scoring.schema import EnrichedEvent

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError as SchemaError

DETAIL_TYPE = "EnrichedEvent"
DEDUPE_WINDOW_S = 24 * 3600
MAX_REASON = 240


@dataclass(frozen=True)
class Rejected:
    reason: str  # one line naming the field
    errors: tuple[str, ...]  # up to five, for the rejects queue


@dataclass(frozen=True)
class Accepted:
    event: EnrichedEvent
    line: str  # compact JSON, as the runners parse it


@dataclass(frozen=True)
class Duplicate:
    event_id: str
    content_hash: str
    first_event_id: str
    support_count: int


Outcome = Accepted | Duplicate | Rejected


@dataclass(frozen=True)
class Claim:
    first: bool  # this event is the first sighting (or a redelivery of it)
    first_event_id: str
    support_count: int


class DedupeStore(Protocol):
    """Claims content hashes for a window (DynamoDB: conditional write, TTL)."""

    def claim(self, content_hash: str, event_id: str, now_s: int, window_s: int) -> Claim:
        """Claim ``content_hash`` for ``event_id`` unless another event holds an unexpired claim, in
        which case that claim's ``support_count`` is incremented and returned."""
        ...

    def claim_many(self, items: list[tuple[str, str]], now_s: int, window_s: int) -> list[Claim]:
        """``claim`` for each (content_hash, event_id), in order (a hash repeated within ``items``:
        the first claims, the others count as support)."""
        ...


def _path(err: SchemaError) -> str:
    parts = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
    return "$" + parts


def _message(err: SchemaError) -> str:
    """The error without the offending value when that value is large (a 768-number array)."""
    inst, kw = err.instance, err.validator
    if kw in ("minItems", "maxItems") and isinstance(inst, list):
        return f"has {len(inst)} items, {kw} is {err.validator_value}"
    if kw == "oneOf" and isinstance(inst, list):
        return f"an array of {len(inst)} items is not one of the allowed shapes (768 numbers, or null)"
    if kw == "additionalProperties":
        return err.message
    text = err.message
    return text if len(text) <= 160 else text[:157] + "..."


def _describe(err: SchemaError) -> str:
    return f"{_path(err)}: {_message(err)}"[:MAX_REASON]


class EventValidator:
    """An event is accepted when both the producers' JSON Schema and the strict model (on the exact
    line the runners will parse) accept it.

    Fast path: the strict model goes first (pydantic's parser, in Rust); when it accepts, the
    embedding is already known to be 768 finite numbers, which the schema's ``embeddings`` rule
    accepts too, so the schema is checked on the event with the embedding set to ``null`` (which
    that rule also accepts) instead of walking 768 numbers twice (its ``oneOf``). The verdict is the
    same as checking both in full; only a refused event pays for the full schema walk, which names
    its first error.
    """

    def __init__(self, schema: Mapping[str, Any]) -> None:
        from jsonschema import Draft202012Validator  # deferred: ~80 ms, only when a validator is built
        Draft202012Validator.check_schema(schema)
        self._schema = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
        embedding_rule = schema.get("properties", {}).get("payload", {}).get("properties", {}).get("embeddings", {})
        self._null_embedding_ok = self._accepts_null(embedding_rule)

    @staticmethod
    def _accepts_null(rule: Mapping[str, Any]) -> bool:
        from jsonschema import Draft202012Validator  # deferred: ~80 ms, only when a validator is built
        return bool(rule) and Draft202012Validator(rule).is_valid(None)

    def _schema_errors(self, detail: Any) -> Rejected | None:
        from jsonschema.exceptions import best_match
        errors = list(self._schema.iter_errors(detail))
        if not errors:
            return None
        first = best_match(errors)
        assert first is not None
        described = [_describe(first), *[_describe(e) for e in errors if e is not first][:4]]
        return Rejected(described[0], tuple(described))

    def validate(self, detail: Any) -> Accepted | Rejected:
        try:
            line = json.dumps(detail, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except ValueError as exc:
            return Rejected(f"$: not JSON-serialisable ({exc})"[:MAX_REASON], (str(exc)[:MAX_REASON],))
        try:
            event = EnrichedEvent.model_validate_json(line)
        except ValidationError as exc:
            refused = self._schema_errors(detail)
            if refused is not None:
                return refused
            described = [f"$.{'.'.join(map(str, e['loc']))}: {e['msg']}"[:MAX_REASON] for e in exc.errors()[:5]]
            return Rejected(described[0], tuple(described))
        light = detail
        if self._null_embedding_ok and event.payload.embeddings is not None:
            light = {**detail, "payload": {**detail["payload"], "embeddings": None}}
        refused = self._schema_errors(light)
        if refused is not None:
            return refused
        return Accepted(event, line)


def parse_envelope(body: str) -> tuple[Any, Rejected | None]:
    """The EnrichedEvent ``detail`` of one EventBridge event (an SQS body), or why not."""
    try:
        envelope = json.loads(body)
    except json.JSONDecodeError as exc:
        return None, Rejected(f"body: not JSON ({exc.msg})", (f"body: not JSON ({exc.msg})",))
    if not isinstance(envelope, dict):
        return None, Rejected("body: not an EventBridge event object", ("body: not an object",))
    detail_type = envelope.get("detail-type")
    if detail_type != DETAIL_TYPE:
        reason = f"detail-type: {str(detail_type)[:60]!r} is not {DETAIL_TYPE!r}"
        return None, Rejected(reason, (reason,))
    if "detail" not in envelope:
        return None, Rejected("detail: missing", ("detail: missing",))
    return envelope["detail"], None


class Ingestor:
    """Classifies one record: accepted (for the batch), duplicate (support counted) or rejected."""

    def __init__(self, validator: EventValidator, dedupe: DedupeStore, window_s: int = DEDUPE_WINDOW_S) -> None:
        self.validator = validator
        self.dedupe = dedupe
        self.window_s = window_s

    def check(self, body: str) -> Accepted | Rejected:
        """Envelope and schema (no side effect)."""
        detail, refused = parse_envelope(body)
        if refused is not None:
            return refused
        return self.validator.validate(detail)

    def dedupe_all(self, accepted: list[Accepted], now_s: int) -> list[Accepted | Duplicate]:
        """One claim per content hash, in one round of the store for the whole batch."""
        claims = self.dedupe.claim_many([(a.event.content_hash, a.event.event_id) for a in accepted], now_s,
                                        self.window_s)
        return [a if c.first else Duplicate(a.event.event_id, a.event.content_hash, c.first_event_id, c.support_count)
                for a, c in zip(accepted, claims, strict=True)]

    def classify(self, body: str, now_s: int) -> Outcome:
        checked = self.check(body)
        if isinstance(checked, Rejected):
            return checked
        return self.dedupe_all([checked], now_s)[0]


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


def reject_message(body: str, rejected: Rejected, message_id: str, now_s: int,
                   max_event_chars: int = 200_000) -> dict[str, Any]:
    """What the rejects queue gets for one refused record: the reason first, then the event as received."""
    return {
        "reason": rejected.reason,
        "errors": list(rejected.errors),
        "sourceMessageId": message_id,
        "rejectedAt": now_s,
        "event": body if len(body) <= max_event_chars else body[:max_event_chars],
        "truncated": len(body) > max_event_chars,
    }
