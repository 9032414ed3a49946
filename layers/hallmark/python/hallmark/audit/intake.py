"""The audit writer's step for one queued message: append it, or put a poison message aside.

A poison message (not JSON, not an audit message, an unknown type, a timestamp or payload the
chain refuses) can never be appended, however often it is retried. Left failing, it holds its
FIFO group (the chain) until SQS dead-letters it, and every well-formed event queued behind it
in the same group has then been received as often and is dead-lettered with it. So it is
recognised here, handed to the ``Quarantine`` port (the queue's DLQ, by its own path) and
acknowledged; the next event of the chain is appended. Anything else that fails (a store error,
head contention) is raised: the message and the rest of its group are retried, in order.

With a ``Pseudonymizer`` (``hallmark.privacy``), this is also the one boundary where personal
data leaves the event: each person named is replaced by their pseudonym and personal free text
is sealed before the append (docs/privacy.md); emitters stay unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from hallmark.audit.events import validate_event_type

MESSAGE_KEYS = frozenset({"id", "chain", "ts", "type", "actor", "subject", "data"})


class PoisonMessage(ValueError):
    """A message that no retry can append."""


class Quarantine(Protocol):
    def put(self, body: str, *, reason: str, message_id: str, group: str) -> None: ...


class Pseudonymizer(Protocol):
    def __call__(self, msg: Mapping[str, Any]) -> dict[str, Any]: ...


class Appender(Protocol):
    def append(self, chain: str, id: str, ts: str, type: str, actor: str, subject: str,
               data: Mapping[str, Any]) -> Any: ...


def parse_queued(body: str) -> dict[str, Any]:
    """The queued audit message, or PoisonMessage saying why it is not one."""
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise PoisonMessage(f"not JSON: {type(exc).__name__}") from None
    if not isinstance(obj, dict) or set(obj) != MESSAGE_KEYS:
        raise PoisonMessage(f"an audit message has exactly the fields {sorted(MESSAGE_KEYS)}")
    for name in ("id", "chain", "ts", "type", "actor", "subject"):
        if not isinstance(obj[name], str) or not obj[name]:
            raise PoisonMessage(f"field {name!r} must be a non-empty string")
    if not isinstance(obj["data"], dict):
        raise PoisonMessage("field 'data' must be an object")
    try:
        validate_event_type(obj["type"])
    except ValueError as exc:
        raise PoisonMessage(str(exc)) from None
    return obj


@dataclass(frozen=True)
class AuditIntake:
    log: Appender
    quarantine: Quarantine
    privacy: Pseudonymizer | None = None

    def handle(self, body: str, *, message_id: str, group: str) -> Literal["appended", "quarantined"]:
        try:
            msg = parse_queued(body)
            if self.privacy is not None:
                msg = self.privacy(msg)
            try:
                self.log.append(chain=msg["chain"], id=msg["id"], ts=msg["ts"], type=msg["type"],
                                actor=msg["actor"], subject=msg["subject"], data=msg["data"])
            except ValueError as exc:  # the event itself is refused (AuditEvent.create): never appendable
                raise PoisonMessage(f"refused by the chain: {exc}"[:500]) from None
        except PoisonMessage as poison:
            self.quarantine.put(body, reason=str(poison)[:500], message_id=message_id, group=group)
            return "quarantined"
        return "appended"
