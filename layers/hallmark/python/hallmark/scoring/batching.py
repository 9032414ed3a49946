"""The open batch: accepted events are appended to S3, and a batch is sealed at a size or time
threshold, which starts its scoring execution.

Layout in the scoring bucket:

    incoming/<chunk>.jsonl      what one ingest invocation accepted (JSON Lines)
    batches/<batchId>.jsonl     the sealed batch: its chunks in order (what both runners read)

One document (``scoring-intake/open`` in the DocStore) holds the open batch (its chunks and
counters) and the batches sealed but not yet started (``pending``). Every change is one conditional
write on that document, so a chunk is never added to a batch that was sealed concurrently, and a
batch sealed by one caller is finished (file composed, batch record created, execution started,
chunks removed) by whichever caller gets to it first: every step is idempotent (the execution's
name is the batch id).

Thresholds (``Limits``) come from the environment (``SCORING_BATCH_MAX_EVENTS``,
``SCORING_BATCH_MAX_AGE_S``, ``SCORING_GPU_THRESHOLD``), overridden by ``PUT /scoring/config``.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from hallmark.canonical import to_rfc3339
from hallmark.docstore import DocStore
from hallmark.errors import Conflict, NotFound

INTAKE = "scoring-intake"
OPEN = "open"
BATCH = "scoring-batch"
CONFIG = "scoring-config"
CURRENT = "current"
INCOMING = "incoming/"
BATCHES = "batches/"
SCORED = "scored/"


class ConfigUpdate(BaseModel):
    """``PUT /scoring/config``: any of the thresholds."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    batchMaxEvents: int | None = Field(default=None, ge=1, le=100_000)
    batchMaxAgeSeconds: int | None = Field(default=None, ge=1, le=86_400)
    gpuThreshold: int | None = Field(default=None, ge=0, le=10**15)
    int8MinBatch: int | None = Field(default=None, ge=0, le=10**9)


@dataclass(frozen=True)
class Limits:
    max_events: int = 500
    max_age_s: int = 60
    gpu_threshold: int = 50_000_000
    int8_min_batch: int = 0
    """The int8 corpus mode (the released model's ``[model.candidates]`` variant) scores batches of
    at least this many events on the CPU; 0 keeps every batch on the exact float32 path."""

    def as_dict(self) -> dict[str, int]:
        return {"batchMaxEvents": self.max_events, "batchMaxAgeSeconds": self.max_age_s,
                "gpuThreshold": self.gpu_threshold, "int8MinBatch": self.int8_min_batch}


def limits(env: Mapping[str, str], docs: DocStore | None = None) -> Limits:
    """The environment's thresholds, overridden by the stored configuration when there is one."""
    base = Limits(
        max_events=int(env.get("SCORING_BATCH_MAX_EVENTS", Limits.max_events)),
        max_age_s=int(env.get("SCORING_BATCH_MAX_AGE_S", Limits.max_age_s)),
        gpu_threshold=int(env.get("SCORING_GPU_THRESHOLD", Limits.gpu_threshold)),
        int8_min_batch=int(env.get("SCORING_INT8_MIN_BATCH", Limits.int8_min_batch)),
    )
    stored = docs.get(CONFIG, CURRENT) if docs is not None else None
    if not stored:
        return base
    return Limits(
        max_events=int(stored.get("batchMaxEvents") or base.max_events),
        max_age_s=int(stored.get("batchMaxAgeSeconds") or base.max_age_s),
        gpu_threshold=int(base.gpu_threshold if stored.get("gpuThreshold") is None else stored["gpuThreshold"]),
        int8_min_batch=int(base.int8_min_batch if stored.get("int8MinBatch") is None else stored["int8MinBatch"]),
    )


def update_config(docs: DocStore, env: Mapping[str, str], change: ConfigUpdate, actor: str,
                  now: datetime | None = None) -> dict[str, Any]:
    values = {k: v for k, v in change.model_dump().items() if v is not None}
    at = to_rfc3339(now or datetime.now(UTC))
    for _ in range(5):
        doc = docs.get(CONFIG, CURRENT)
        try:
            if doc is None:
                docs.create(CONFIG, CURRENT, {**values, "updatedBy": actor, "updatedAt": at})
            else:
                version = doc.pop("version")
                docs.replace(CONFIG, CURRENT, {**doc, **values, "updatedBy": actor, "updatedAt": at}, version)
            break
        except Conflict:
            continue
    else:
        raise Conflict("the scoring configuration is being changed concurrently; retry")
    return {**limits(env, docs).as_dict(), "updatedBy": actor, "updatedAt": at}


class ChunkStore(Protocol):
    """The scoring bucket, as the intake uses it."""

    def get(self, key: str) -> bytes: ...

    def put(self, key: str, data: bytes) -> None: ...

    def delete(self, key: str) -> None: ...


class ExecutionStarter(Protocol):
    def start(self, name: str, payload: dict[str, Any]) -> str:
        """Start the scoring execution ``name`` (idempotent: an existing one is not an error); its ARN."""
        ...


@dataclass(frozen=True)
class Sealed:
    batch_id: str
    batch_key: str
    size: int
    batch_digest: str
    execution_arn: str


def new_batch_id(now_ms: int) -> str:
    stamp = datetime.fromtimestamp(now_ms / 1000, UTC).strftime("%Y%m%dT%H%M%S")
    return f"b-{stamp}-{secrets.token_hex(4)}"


def batch_key(batch_id: str) -> str:
    return f"{BATCHES}{batch_id}.jsonl"


def output_key(batch_id: str) -> str:
    return f"{SCORED}{batch_id}.jsonl"


def _fresh(batch_id: str, now_ms: int) -> dict[str, Any]:
    return {"batchId": batch_id, "openedAt": now_ms, "count": 0, "duplicates": 0, "rejected": 0, "chunks": []}


def _ms_to_rfc3339(ms: int) -> str:
    return to_rfc3339(datetime.fromtimestamp(ms / 1000, UTC))


class Intake:
    def __init__(self, docs: DocStore, blobs: ChunkStore, starter: ExecutionStarter, limits: Limits,
                 clock_ms: Callable[[], int] | None = None) -> None:
        self.docs = docs
        self.blobs = blobs
        self.starter = starter
        self.limits = limits
        self.clock_ms = clock_ms or (lambda: int(time.time() * 1000))

    # ------------------------------------------------------------------ the one document
    def _change(self, change: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Apply ``change`` (which says whether it changed anything) to the intake document."""
        for _ in range(50):
            now = self.clock_ms()
            doc = self.docs.get(INTAKE, OPEN)
            if doc is None:
                doc = {"open": _fresh(new_batch_id(now), now), "pending": []}
                if not change(doc):
                    return doc
                try:
                    self.docs.create(INTAKE, OPEN, doc)
                    return doc
                except Conflict:
                    continue
            version = doc.pop("version")
            if not change(doc):
                return doc
            try:
                self.docs.replace(INTAKE, OPEN, doc, version)
                return doc
            except Conflict:
                time.sleep(0.005)
                continue
        raise Conflict("the open scoring batch is contended; retry")

    def _seal_into(self, doc: dict[str, Any], now: int) -> None:
        current = doc["open"]
        doc["pending"].append({**current, "sealedAt": now})
        doc["open"] = _fresh(new_batch_id(now), now)

    def _due(self, current: dict[str, Any], now: int) -> bool:
        if current["count"] <= 0:
            return False
        return current["count"] >= self.limits.max_events or now - current["openedAt"] >= self.limits.max_age_s * 1000

    # ------------------------------------------------------------------ ingest
    def append(self, lines: list[str], *, duplicates: int = 0, rejected: int = 0) -> list[Sealed]:
        """Add one chunk of accepted events (and the counters of the others) to the open batch;
        seal it when a threshold is reached; start what was sealed."""
        chunk: str | None = None
        if lines:
            chunk = f"{INCOMING}{self.clock_ms():013d}-{secrets.token_hex(8)}.jsonl"
            self.blobs.put(chunk, ("\n".join(lines) + "\n").encode("utf-8"))

        def change(doc: dict[str, Any]) -> bool:
            if not lines and not duplicates and not rejected:
                return False
            current = doc["open"]
            if chunk is not None:
                current["chunks"].append({"key": chunk, "count": len(lines)})
                current["count"] += len(lines)
            current["duplicates"] += duplicates
            current["rejected"] += rejected
            if self._due(current, self.clock_ms()):
                self._seal_into(doc, self.clock_ms())
            return True

        doc = self._change(change)
        return self._drain(doc) if doc["pending"] else []

    def seal_if_due(self, *, force: bool = False) -> list[Sealed]:
        """The time threshold (the scheduled tick) or ``force`` (an operator's flush); then start
        every sealed batch not yet started (a retry of a caller that stopped half-way)."""

        def change(doc: dict[str, Any]) -> bool:
            current, now = doc["open"], self.clock_ms()
            if current["count"] > 0 and (force or self._due(current, now)):
                self._seal_into(doc, now)
                return True
            return False

        doc = self._change(change)
        return self._drain(doc) if doc["pending"] else []

    def open_batch(self) -> dict[str, Any]:
        doc = self.docs.get(INTAKE, OPEN)
        return dict(doc["open"]) if doc else {}

    # ------------------------------------------------------------------ sealed -> started
    def _drain(self, doc: dict[str, Any]) -> list[Sealed]:
        started = [self._finish(p) for p in list(doc["pending"])]
        done = {s.batch_id for s in started}

        def change(d: dict[str, Any]) -> bool:
            before = len(d["pending"])
            d["pending"] = [p for p in d["pending"] if p["batchId"] not in done]
            return len(d["pending"]) != before

        self._change(change)
        return started

    def _finish(self, pending: dict[str, Any]) -> Sealed:
        batch_id = pending["batchId"]
        key = batch_key(batch_id)
        record = self.docs.get(BATCH, batch_id)
        if record is None:
            try:
                body = b"".join(self.blobs.get(c["key"]) for c in pending["chunks"])
            except KeyError:
                # Another drainer (the ingest's and an operator's flush can run at once) saw the
                # same pending batch, sealed it and removed its chunks after our read above.
                record = self.docs.get(BATCH, batch_id)
                if record is None:
                    raise
        if record is None:
            self.blobs.put(key, body)
            record = {
                "batchId": batch_id,
                "status": "Sealed",
                "batchKey": key,
                "batchDigest": hashlib.sha256(body).hexdigest(),
                "events": pending["count"],
                "duplicates": pending["duplicates"],
                "rejected": pending["rejected"],
                "openedAt": _ms_to_rfc3339(pending["openedAt"]),
                "sealedAt": _ms_to_rfc3339(pending["sealedAt"]),
                "executionArn": None,
                "runner": None,
                "error": None,
                "history": [{"status": "Sealed", "at": _ms_to_rfc3339(pending["sealedAt"])}],
            }
            try:
                self.docs.create(BATCH, batch_id, record)
            except Conflict:
                existing = self.docs.get(BATCH, batch_id)
                if existing is None:  # pragma: no cover - created then gone
                    raise NotFound("batch", batch_id) from None
                record = existing
        arn = self.starter.start(batch_id, {"batchId": batch_id, "batchKey": key, "size": record["events"],
                                            "batchDigest": record["batchDigest"]})
        for c in pending["chunks"]:
            with contextlib.suppress(KeyError):
                self.blobs.delete(c["key"])
        return Sealed(batch_id, key, int(record["events"]), str(record["batchDigest"]), arn)
