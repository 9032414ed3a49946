"""The ``AuditStore`` port (its in-memory fake is ``tests/fakes/audit.py``).

A store keeps, per chain: the head ``(seq, hash)``, the events by ``seq``, an index from
event id to ``seq`` and the checkpoints (each with the Merkle frontier at its size, so the
next checkpoint needs only the events appended since). ``append`` is a single atomic,
conditional write: it succeeds only if the head is still the event's predecessor, and it
never writes an id twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from hallmark.audit.events import AuditEvent

__all__ = [
    "AuditStore",
    "CheckpointConflict",
    "CheckpointRecord",
    "HeadMoved",
]


class HeadMoved(Exception):
    """The chain head is no longer the one the event was built on (a lost race): re-read, retry."""

    def __init__(self, chain: str, expected: tuple[int, str] | None, actual: tuple[int, str] | None = None):
        super().__init__(f"head of chain {chain!r} moved: expected {expected}, found {actual}")
        self.chain = chain
        self.expected = expected
        self.actual = actual


class CheckpointConflict(Exception):
    """Another writer stored a checkpoint first (the latest checkpoint is not the one expected)."""


@dataclass(frozen=True)
class CheckpointRecord:
    """A stored checkpoint, the hex Merkle frontier (``MerkleFrontier.to_hex``) at its ``seq``,
    and the checkpoint as a C2SP signed note (``hallmark.audit.notes``; empty if none was made)."""

    checkpoint: dict[str, Any]
    frontier: tuple[str, ...] = field(default=())
    note: str = ""

    @property
    def seq(self) -> int:
        return int(self.checkpoint["seq"])


class AuditStore(Protocol):
    """Persistence of chains, events and checkpoints."""

    def head(self, chain: str) -> tuple[int, str] | None:
        """``(seq, hash)`` of the last event, or ``None`` for an empty chain."""
        ...

    def append(self, event: AuditEvent) -> AuditEvent:
        """Atomically write ``event`` if the head is ``(event.seq - 1, event.prevHash)``.

        Returns the event stored under ``event.id`` on the chain: ``event`` itself, or the
        earlier event if that id was appended before (idempotency). Raises :class:`HeadMoved`
        if the head is not the event's predecessor.
        """
        ...

    def get(self, chain: str, event_id: str) -> AuditEvent | None:
        """The event with this id on the chain, if any."""
        ...

    def events(self, chain: str, start: int = 1, end: int | None = None) -> Iterator[AuditEvent]:
        """Events with ``start <= seq <= end`` (``end=None``: to the head), ordered by seq."""
        ...

    def put_checkpoint(self, record: CheckpointRecord, expected_prev_seq: int | None) -> None:
        """Store a checkpoint if the latest one is still at ``expected_prev_seq`` (``None``: no checkpoint).

        Raises :class:`CheckpointConflict` otherwise.
        """
        ...

    def latest_checkpoint(self, chain: str) -> CheckpointRecord | None:
        """The checkpoint with the highest seq, with its frontier."""
        ...

    def get_checkpoint(self, chain: str, seq: int) -> dict[str, Any] | None:
        """The checkpoint at ``seq``, if there is one."""
        ...

    def checkpoint_record(self, chain: str, seq: int) -> CheckpointRecord | None:
        """The stored record (checkpoint, frontier, signed note) at ``seq``, if there is one."""
        ...

    def checkpoints(self, chain: str) -> Iterator[dict[str, Any]]:
        """All checkpoints of the chain, ordered by seq."""
        ...
