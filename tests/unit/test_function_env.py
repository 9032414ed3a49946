"""The local cloud's per-function environment overlay (issue 19, item 8)."""

from __future__ import annotations

import os
import threading

import pytest

from hallmark_tools.localcloud.function_env import scoped
from hallmark_tools.topology import TOPOLOGY, env_for


def test_a_function_sees_its_own_resources_and_not_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABLE_LEDGER", "ledger-table")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    with scoped({"TABLE_STATE": "state-table"}, frozenset({"TABLE_LEDGER", "TABLE_STATE"})):
        assert os.environ.get("TABLE_STATE") == "state-table"
        assert os.environ.get("TABLE_LEDGER") is None and "TABLE_LEDGER" not in os.environ
        assert os.environ["AWS_REGION"] == "us-east-1"  # process settings stay visible
        assert "TABLE_LEDGER" not in dict(os.environ)
        seen: list[str | None] = []
        other = threading.Thread(target=lambda: seen.append(os.environ.get("TABLE_LEDGER")))
        other.start()
        other.join()
        assert seen == ["ledger-table"]  # another thread (another function) keeps its own view
    assert os.environ["TABLE_LEDGER"] == "ledger-table"


def test_env_for_holds_exactly_the_declared_resources() -> None:
    fn = TOPOLOGY.function("listings_api")
    env = env_for(fn, lambda kind, name: f"{kind}:{name}", TOPOLOGY.functions)
    assert env["TABLE_STATE"] == "table:state" and env["POWERTOOLS_SERVICE_NAME"] == "listings_api"
    assert "TABLE_LEDGER" not in env and "QUEUE_AUDIT_URL" not in env
    assert "HALLMARK_ROUTE_ROLES" in env  # an API handler gets the route table
    assert "HALLMARK_ROUTE_ROLES" not in env_for(TOPOLOGY.function("audit_writer"), lambda k, n: "x",
                                                 TOPOLOGY.functions)
