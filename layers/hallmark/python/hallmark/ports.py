"""The ports the domain talks to. Adapters in ``hallmark.adapters`` implement them over AWS;
tests use in-memory fakes or keys generated at test time."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol


class Signer(Protocol):
    """Signs bytes with ECDSA P-256 / SHA-256 and returns a DER signature.

    ``key_id`` is the stable identifier published next to the signature (for KMS: the key ARN).
    """

    @property
    def key_id(self) -> str: ...

    def sign(self, message: bytes) -> bytes: ...

    def public_key_pem(self) -> bytes: ...


class AuditEmitter(Protocol):
    """Records a state change on the audit log (asynchronously, serialized per chain)."""

    def emit(
        self,
        *,
        chain: str,
        type: str,
        actor: str,
        subject: str,
        data: dict[str, Any],
        event_id: str | None = None,
    ) -> str:
        """Queue one event; returns its id. A repeated ``event_id`` never makes a second entry."""
        ...


class EventPublisher(Protocol):
    """Publishes Hallmark's own events on the bus (``detail_type`` and a JSON ``detail``)."""

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None: ...


class TokenNotWaiting(Exception):
    """The task token is no longer waited on (the task timed out or the execution ended)."""


class ExecutionControl(Protocol):
    """Starts state machine executions and settles the tasks that wait on a task token."""

    def start(self, name: str, payload: dict[str, Any]) -> str:
        """Start the execution ``name`` (idempotent on the name); returns its ARN."""
        ...

    def resume(self, token: str, output: dict[str, Any]) -> None:
        """Complete the waiting task with ``output``; :class:`TokenNotWaiting` if nothing waits."""
        ...

    def fail(self, token: str, error: str, cause: str) -> None:
        """Fail the waiting task with ``error``; :class:`TokenNotWaiting` if nothing waits."""
        ...


class Clock(Protocol):
    def __call__(self) -> datetime: ...
