"""In-memory fakes (tests only; never in the Lambda layer)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from hallmark.audit.events import GENESIS, AuditEvent
from hallmark.audit.store import CheckpointConflict, CheckpointRecord, HeadMoved


@dataclass
class _Chain:
    events: list[AuditEvent] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)
    checkpoints: list[CheckpointRecord] = field(default_factory=list)
    checkpoint_index: dict[int, int] = field(default_factory=dict)


class InMemoryAuditStore:
    """A thread-safe in-memory :class:`AuditStore` (unit tests, benchmarks, local runs)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._chains: dict[str, _Chain] = {}

    def _chain(self, chain: str) -> _Chain:
        c = self._chains.get(chain)
        if c is None:
            c = self._chains[chain] = _Chain()
        return c

    def head(self, chain: str) -> tuple[int, str] | None:
        with self._lock:
            c = self._chains.get(chain)
            if c is None or not c.events:
                return None
            last = c.events[-1]
            return last.seq, last.hash

    def append(self, event: AuditEvent) -> AuditEvent:
        with self._lock:
            c = self._chain(event.chain)
            existing = c.ids.get(event.id)
            if existing is not None:
                return c.events[existing - 1]
            head = (c.events[-1].seq, c.events[-1].hash) if c.events else None
            expected = (event.seq - 1, event.prevHash) if event.seq > 1 else None
            if head != expected or (expected is None and event.prevHash != GENESIS):
                raise HeadMoved(event.chain, expected, head)
            stored = event if event.signature is None else event.model_copy(update={"signature": None})
            c.events.append(stored)
            c.ids[event.id] = event.seq
            return stored

    def get(self, chain: str, event_id: str) -> AuditEvent | None:
        with self._lock:
            c = self._chains.get(chain)
            if c is None:
                return None
            seq = c.ids.get(event_id)
            return None if seq is None else c.events[seq - 1]

    def events(self, chain: str, start: int = 1, end: int | None = None) -> Iterator[AuditEvent]:
        with self._lock:
            c = self._chains.get(chain)
            if c is None:
                return iter(())
            stop = len(c.events) if end is None else min(end, len(c.events))
            return iter(c.events[max(start, 1) - 1 : stop])

    def put_checkpoint(self, record: CheckpointRecord, expected_prev_seq: int | None) -> None:
        chain = str(record.checkpoint["chain"])
        with self._lock:
            c = self._chain(chain)
            latest = c.checkpoints[-1].seq if c.checkpoints else None
            if latest != expected_prev_seq or (latest is not None and record.seq <= latest):
                raise CheckpointConflict(
                    f"chain {chain!r}: latest checkpoint is {latest}, expected {expected_prev_seq}"
                )
            stored = CheckpointRecord(dict(record.checkpoint), tuple(record.frontier), record.note)
            c.checkpoint_index[stored.seq] = len(c.checkpoints)
            c.checkpoints.append(stored)

    def latest_checkpoint(self, chain: str) -> CheckpointRecord | None:
        with self._lock:
            c = self._chains.get(chain)
            return c.checkpoints[-1] if c is not None and c.checkpoints else None

    def get_checkpoint(self, chain: str, seq: int) -> dict[str, Any] | None:
        record = self.checkpoint_record(chain, seq)
        return record.checkpoint if record else None

    def checkpoint_record(self, chain: str, seq: int) -> CheckpointRecord | None:
        with self._lock:
            c = self._chains.get(chain)
            if c is None or seq not in c.checkpoint_index:
                return None
            r = c.checkpoints[c.checkpoint_index[seq]]
            return CheckpointRecord(dict(r.checkpoint), r.frontier, r.note)

    def checkpoints(self, chain: str) -> Iterator[dict[str, Any]]:
        with self._lock:
            c = self._chains.get(chain)
            records: Sequence[CheckpointRecord] = list(c.checkpoints) if c is not None else []
        return (dict(r.checkpoint) for r in records)

    def chains(self) -> list[str]:
        """Names of the chains that have events or checkpoints."""
        with self._lock:
            return sorted(self._chains)
