"""The audit writer's step (hallmark.audit.intake): poison is put aside and acknowledged, anything
else that fails is raised for a retry (issue 17, audit queue)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from hallmark.audit.intake import AuditIntake

GOOD = {"id": "e1", "chain": "market", "ts": "2026-12-02T17:00:00Z", "type": "OrderPlaced", "actor": "a",
        "subject": "ord-1", "data": {}}


class Log:
    def __init__(self, error: Exception | None = None) -> None:
        self.appended: list[str] = []
        self.error = error

    def append(self, chain: str, id: str, ts: str, type: str, actor: str, subject: str,
               data: Mapping[str, Any]) -> None:
        if self.error is not None:
            raise self.error
        self.appended.append(id)


class Aside:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def put(self, body: str, *, reason: str, message_id: str, group: str) -> None:
        self.items.append((body, reason))


@pytest.mark.parametrize("body", [
    "", "not json", '{"id": "e1"', "[" * 100_000 + "]" * 100_000, "[]", json.dumps({**GOOD, "extra": 1}),
    json.dumps({k: v for k, v in GOOD.items() if k != "ts"}), json.dumps({**GOOD, "id": 7}),
    json.dumps({**GOOD, "data": []}), json.dumps({**GOOD, "type": "NoSuchType"}), json.dumps({**GOOD, "chain": ""}),
])
def test_poison_is_put_aside_and_acknowledged(body: str) -> None:
    log, aside = Log(), Aside()
    assert AuditIntake(log, aside).handle(body, message_id="m", group="market") == "quarantined"
    assert log.appended == [] and [b for b, _ in aside.items] == [body] and aside.items[0][1]


def test_an_event_the_chain_refuses_is_poison_too() -> None:
    aside = Aside()
    outcome = AuditIntake(Log(ValueError("ts is not RFC 3339")), aside).handle(json.dumps(GOOD), message_id="m",
                                                                                group="market")
    assert outcome == "quarantined" and "RFC 3339" in aside.items[0][1]


def test_a_transient_failure_is_raised_for_a_retry_not_quarantined() -> None:
    aside = Aside()
    with pytest.raises(RuntimeError):
        AuditIntake(Log(RuntimeError("head kept moving")), aside).handle(json.dumps(GOOD), message_id="m", group="g")
    assert aside.items == []


def test_a_good_event_is_appended() -> None:
    log, aside = Log(), Aside()
    assert AuditIntake(log, aside).handle(json.dumps(GOOD), message_id="m", group="market") == "appended"
    assert log.appended == ["e1"] and aside.items == []
