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
- **accepted**: the event as one JSON line, for the open batch (compact; an embedding the fast path
  took keeps the producer's text, blanks after its commas included).

A redelivery of the event that claimed a content hash (same ``event_id``) is not a duplicate of
itself: it is accepted again (at-least-once; the batch may then hold it twice, the router
dedupes on ``event_id``).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from pydantic import ValidationError

from hallmark.scoring.schema import EMBEDDING_DIM, SOURCE_PATTERN, UUID_PATTERN, EnrichedEvent

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
    line: str  # compact JSON, as the runners parse it
    event_id: str
    content_hash: str

    @cached_property
    def event(self) -> EnrichedEvent:
        """The event as the runners will read it (parsed from ``line`` on first use)."""
        return EnrichedEvent.model_validate_json(self.line)


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


# --- the compiled fast path ------------------------------------------------------------------------

_UUID = re.compile(UUID_PATTERN.removeprefix("^").removesuffix("$"))
_SOURCE = re.compile(SOURCE_PATTERN.removeprefix("^").removesuffix("$"))
_COUNTRY = re.compile("[A-Z]{2}")
_TOP = frozenset(("event_id", "mission_id", "timestamp", "domain", "source", "topic_hints", "payload", "metadata"))
_REQUIRED = frozenset(("event_id", "timestamp", "domain", "source", "payload", "metadata"))
_EXTRACTED = frozenset(("entities", "metrics", "sentiment"))
_GEO = frozenset(("latitude", "longitude", "country_code"))
_NUMBERS = frozenset((int, float))
_DOMAINS = frozenset(("crypto", "ai"))
COMPILED_FOR = "419ca3fa9e1991681ef4adc8514990977490a80e2d7334c0ee260a77eca1ba80"
"""sha256 of the canonical producers' schema the checks below were written for (see
``schema_digest``): another schema turns the fast path off (every event takes the full path)."""


def schema_digest(schema: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(schema, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def _number(x: Any, low: float, high: float) -> bool:
    t = type(x)
    return (t is int or (t is float and math.isfinite(x))) and low <= x <= high


def _uuid(x: Any) -> bool:
    return type(x) is str and _UUID.fullmatch(x) is not None


def _ok_payload(payload: Any) -> bool:
    if type(payload) is not dict:
        return False
    raw = payload.get("raw", _ABSENT)
    if raw is not _ABSENT and type(raw) is not dict:
        return False
    extracted = payload.get("extracted", _ABSENT)
    if extracted is not _ABSENT:
        if type(extracted) is not dict or not extracted.keys() <= _EXTRACTED:
            return False
        entities = extracted.get("entities", ())
        if type(entities) not in (list, tuple) or not all(type(e) is dict for e in entities):
            return False
        metrics = extracted.get("metrics", _EMPTY)
        if type(metrics) is not dict or not all(_number(v, -math.inf, math.inf) for v in metrics.values()):
            return False
        sentiment = extracted.get("sentiment")
        if sentiment is not None and not _number(sentiment, -1.0, 1.0):
            return False
    emb = payload.get("embeddings")
    if emb is None:
        return True
    return type(emb) is list and len(emb) == EMBEDDING_DIM  # its elements: EventValidator._accept


def _ok_metadata(meta: Any) -> bool:
    if type(meta) is not dict:
        return False
    h = meta.get("content_hash")
    if type(h) is not str or not 1 <= len(h) <= 256:
        return False
    geo = meta.get("geo_location")
    if geo is not None and (type(geo) is not dict or geo.keys() != _GEO
                            or not _number(geo["latitude"], -90.0, 90.0)
                            or not _number(geo["longitude"], -180.0, 180.0)
                            or type(geo["country_code"]) is not str or not _COUNTRY.fullmatch(geo["country_code"])):
        return False
    lang = meta.get("language")
    if lang is not None and type(lang) is not str:
        return False
    ms = meta.get("processing_time_ms")
    return ms is None or (type(ms) is int and ms >= 0)


def fast_accepts(detail: Any) -> bool:
    """True only for a detail that both the producers' schema (``COMPILED_FOR``) and the strict model
    accept, but for the embedding's elements (``EventValidator._accept`` checks those): the
    common shape, checked in plain Python. False means "not known here" (the full validators
    decide and name the error), never "invalid"."""
    if type(detail) is not dict or not detail.keys() <= _TOP or not detail.keys() >= _REQUIRED:
        return False
    ts, source, hints = detail["timestamp"], detail["source"], detail.get("topic_hints", _EMPTY_LIST)
    mission = detail.get("mission_id")
    return (_uuid(detail["event_id"]) and (mission is None or _uuid(mission))
            and type(ts) is int and 0 <= ts < 2**63
            and type(detail["domain"]) is str and detail["domain"] in _DOMAINS
            and type(source) is str and len(source) <= 64 and _SOURCE.fullmatch(source) is not None
            and type(hints) is list and all(type(h) is str for h in hints)
            and _ok_payload(detail["payload"]) and _ok_metadata(detail["metadata"]))


_EMB_TOKEN = b'"embeddings":0'  # 14 bytes: the key (13) and the 0 standing for the embedding
_BIG = b"e+"
"""In orjson's output, the mark of a float of at least 1e16: orjson reads an integer past 64 bits as
a float (where ``json`` keeps the int), and such a float is printed with it (a string holding it
only sends the body down the full path)."""


def _numbers_only(text: str) -> bool:
    """The text of a JSON array (proven so) holds numbers only, on one line: no ``t``/``f``/``n``, quote
    or brace (true, false, null, a string, an object), no second ``[`` (a nested array), no line
    break or tab."""
    return not ("t" in text or "f" in text or "n" in text or '"' in text or "{" in text or "\n" in text
                or "\r" in text or "\t" in text or text.find("[", 1) >= 0)


def _embedding_text(body: str, envelope: dict[str, Any]) -> str | None:
    """The text of ``detail.payload.embeddings`` in ``body``, when it is proven to be that and one
    line of numbers; None otherwise. The producer's spaces after the commas stay (removing them
    costs more than the rest of the check; EventBridge writes none)."""
    key = body.find('"embeddings"')  # another "embeddings" elsewhere (in raw, say) fails the probe
    if key < 0:
        return None
    start = body.find("[", key)
    end = body.find("]", start) + 1
    if start < 0 or end <= 0 or body[key + 12:start].strip() != ":":
        return None
    text = body[start:end]
    try:
        probe = orjson.loads(body[:start] + "0" + body[end:])
    except orjson.JSONDecodeError:
        return None
    try:
        if probe["detail"]["payload"]["embeddings"] != 0 or type(probe["detail"]["payload"]["embeddings"]) is not int:
            return None
        probe["detail"]["payload"]["embeddings"] = envelope["detail"]["payload"]["embeddings"]
    except (KeyError, TypeError):
        return None
    if probe != envelope:
        return None
    return text


_ABSENT = object()
_EMPTY: dict[str, Any] = {}
_EMPTY_LIST: list[Any] = []


class EventValidator:
    """An event is accepted when both the producers' JSON Schema and the strict model (on the exact
    line the runners will parse) accept it.

    ``check_body`` is the line-rate path (``benchmarks/ingest.py``): orjson parses the body and
    checks compiled from the schema and the model (``fast_accepts``) accept the common shape
    without either validator; everything else is decided by both validators (``validate``), whose
    reasons are held fixed by ``tests/unit/test_scoring_ingest_reasons.py``. A well-formed embedding
    (768 numbers, which the schema's ``embeddings`` rule accepts) is set to ``null`` (which that
    rule accepts too) before the schema walk: the same errors without walking 768 numbers under
    both branches of its ``oneOf``.
    """

    def __init__(self, schema: Mapping[str, Any]) -> None:
        from jsonschema import Draft202012Validator  # deferred: ~80 ms, only when a validator is built
        Draft202012Validator.check_schema(schema)
        self._schema = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
        embedding_rule = schema.get("properties", {}).get("payload", {}).get("properties", {}).get("embeddings", {})
        self._null_embedding_ok = self._accepts_null(embedding_rule)
        self._fast = schema_digest(schema) == COMPILED_FOR

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

    def _light(self, detail: Any) -> Any:
        """The detail as the schema walk needs it: the schema finds the same errors, in the same
        order, in a part replaced by another that is just as valid (``properties`` descends into
        each present property on its own; ``required`` and ``additionalProperties`` see the same
        keys). A well-formed embedding (768 numbers, which the ``embeddings`` rule accepts) becomes
        ``null`` (which it accepts too): no walk of 768 numbers under both branches of its
        ``oneOf`` (~7 ms a refused event). With the compiled checks (``COMPILED_FOR``), a payload
        or metadata object they find valid becomes the smallest valid one (``{}``,
        ``{"content_hash": "h"}``): a refused event whose fault is elsewhere skips their walk."""
        if type(detail) is not dict:
            return detail
        out = _without_embedding(detail) if self._null_embedding_ok else detail
        if self._fast:
            payload = detail.get("payload")
            if type(payload) is dict and (payload.get("embeddings") is None or _numbers(payload["embeddings"])) \
                    and _ok_payload(payload):
                out = {**out, "payload": {}}
            if _ok_metadata(detail.get("metadata")):
                out = {**out, "metadata": {"content_hash": "h"}}
            # a valid optional property can go (``required`` does not name it, and a missing
            # property adds no ``additionalProperties`` error): no walk of mission_id's oneOf
            mission, hints = detail.get("mission_id", _ABSENT), detail.get("topic_hints", _ABSENT)
            if mission is None or _uuid(mission):
                out = {k: v for k, v in out.items() if k != "mission_id"}
            if type(hints) is list and all(type(h) is str for h in hints):
                out = {k: v for k, v in out.items() if k != "topic_hints"}
        return out

    def validate(self, detail: Any, *, finite: bool = False) -> Accepted | Rejected:
        """Both validators over one detail. ``finite``: the detail is known to hold no NaN or
        infinity (orjson parsed it), so the not-JSON-serialisable check is skipped. The schema's
        errors come first, then the model's: the verdict and the words of checking the model first
        (as this did before), since a schema error always named the reason."""
        line = None
        if not finite:
            try:
                line = _dumps(detail)
            except ValueError as exc:
                return Rejected(f"$: not JSON-serialisable ({exc})"[:MAX_REASON], (str(exc)[:MAX_REASON],))
        refused = self._schema_errors(self._light(detail))
        if refused is not None:
            return refused
        line = _dumps(detail) if line is None else line
        try:
            event = EnrichedEvent.model_validate_json(line)
        except ValidationError as exc:
            described = [f"$.{'.'.join(map(str, e['loc']))}: {e['msg']}"[:MAX_REASON] for e in exc.errors()[:5]]
            return Rejected(described[0], tuple(described))
        return Accepted(line, event.event_id, event.content_hash)

    def check_body(self, body: str) -> Accepted | Rejected | None:
        """One SQS body parsed by orjson: the compiled checks (``fast_accepts``) accept the common
        shape at once; anything else goes to both validators (``validate``), which decide and word
        the reason exactly as before. None when orjson cannot parse the body: the caller's full
        path (``json``) then decides. orjson refuses what it would read differently from ``json``
        (NaN, Infinity, lone surrogates), so those take the full path, and so does a body with an
        integer past 64 bits, which orjson reads as a float (``_BIG``).

        An accepted line is the detail as compact JSON with the embedding's own text from the body
        spliced in (formatting 768 floats again costs as much as parsing them), once that text is
        proven to be the embedding (``_embedding_text``) and to hold numbers only (no ``t``/``f``/
        ``n``/quote/brace: no true, false, null, string or object; one ``[``: no nested array).
        Otherwise orjson formats the embedding and the elements' types are checked one by one."""
        try:
            envelope = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        detail, refused = envelope_detail(envelope)
        if refused is not None:
            return refused
        if self._fast and fast_accepts(detail):
            accepted = self._accept(body, envelope, detail)
            if accepted is not None:
                return accepted
        if _BIG in orjson.dumps(_without_embedding(detail)):
            return None  # an integer past 64 bits, which orjson read as a float: json reads it exactly
        return self.validate(detail, finite=True)

    @staticmethod
    def _accept(body: str, envelope: dict[str, Any], detail: dict[str, Any]) -> Accepted | None:
        payload = detail["payload"]
        emb = payload.get("embeddings")
        if emb is None:
            line = orjson.dumps(detail)
            if _BIG in line:
                return None
        else:
            text = _embedding_text(body, envelope)
            if text is not None and _numbers_only(text):
                small = orjson.dumps({**detail, "payload": {**payload, "embeddings": 0}})
                at = small.find(_EMB_TOKEN)
                if at < 0 or small.find(_EMB_TOKEN, at + 1) >= 0 or _BIG in small:
                    return None
                head, tail = small[:at + 13].decode("utf-8"), small[at + 14:].decode("utf-8")
                return Accepted(head + text + tail, detail["event_id"], detail["metadata"]["content_hash"])
            elif _NUMBERS.issuperset(map(type, emb)):
                line = orjson.dumps(detail)
                if _BIG in line:
                    return None
            else:
                return None
        return Accepted(line.decode("utf-8"), detail["event_id"], detail["metadata"]["content_hash"])


def _numbers(emb: Any) -> bool:
    """A list of 768 numbers (ints or floats, not bools)."""
    return type(emb) is list and len(emb) == EMBEDDING_DIM and _NUMBERS.issuperset(map(type, emb))


def _without_embedding(detail: Any) -> Any:
    """The detail with a well-formed embedding (``_numbers``) set to ``null``."""
    payload = detail.get("payload") if type(detail) is dict else None
    if type(payload) is not dict or not _numbers(payload.get("embeddings")):
        return detail
    return {**detail, "payload": {**payload, "embeddings": None}}


def _dumps(detail: Any) -> str:
    return json.dumps(detail, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def envelope_detail(envelope: Any) -> tuple[Any, Rejected | None]:
    """The EnrichedEvent ``detail`` of a parsed EventBridge event, or why not."""
    if not isinstance(envelope, dict):
        return None, Rejected("body: not an EventBridge event object", ("body: not an object",))
    detail_type = envelope.get("detail-type")
    if detail_type != DETAIL_TYPE:
        reason = f"detail-type: {str(detail_type)[:60]!r} is not {DETAIL_TYPE!r}"
        return None, Rejected(reason, (reason,))
    if "detail" not in envelope:
        return None, Rejected("detail: missing", ("detail: missing",))
    return envelope["detail"], None


def parse_envelope(body: str) -> tuple[Any, Rejected | None]:
    """The EnrichedEvent ``detail`` of one EventBridge event (an SQS body), or why not."""
    try:
        envelope = json.loads(body)
    except json.JSONDecodeError as exc:
        return None, Rejected(f"body: not JSON ({exc.msg})", (f"body: not JSON ({exc.msg})",))
    return envelope_detail(envelope)


class Ingestor:
    """Classifies one record: accepted (for the batch), duplicate (support counted) or rejected."""

    def __init__(self, validator: EventValidator, dedupe: DedupeStore, window_s: int = DEDUPE_WINDOW_S) -> None:
        self.validator = validator
        self.dedupe = dedupe
        self.window_s = window_s

    def check(self, body: str) -> Accepted | Rejected:
        """Envelope and schema (no side effect): orjson and the compiled checks, else ``json`` and
        both validators (the same verdicts and reasons either way)."""
        checked = self.validator.check_body(body)
        if checked is not None:
            return checked
        detail, refused = parse_envelope(body)
        if refused is not None:
            return refused
        return self.validator.validate(detail)

    def dedupe_all(self, accepted: list[Accepted], now_s: int) -> list[Accepted | Duplicate]:
        """One claim per content hash, in one round of the store for the whole batch."""
        claims = self.dedupe.claim_many([(a.content_hash, a.event_id) for a in accepted], now_s,
                                        self.window_s)
        return [a if c.first else Duplicate(a.event_id, a.content_hash, c.first_event_id, c.support_count)
                for a, c in zip(accepted, claims, strict=True)]

    def classify(self, body: str, now_s: int) -> Outcome:
        checked = self.check(body)
        if isinstance(checked, Rejected):
            return checked
        return self.dedupe_all([checked], now_s)[0]


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
