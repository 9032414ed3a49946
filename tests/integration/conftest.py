from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from hallmark.adapters.bus import EventBusPublisher
from hallmark_tools.driver import Driver
from hallmark_tools.localcloud.cloud import LocalCloud
from hallmark_tools.localcloud.server import free_port, make_server
from tests.bus_schemas import violations


@pytest.fixture(scope="module")
def shared_cloud() -> Iterator[LocalCloud]:
    """One local cloud per test module (boot ~1 s); tests use distinct package names."""
    with LocalCloud() as c:
        yield c


@pytest.fixture(scope="module")
def driver(shared_cloud: LocalCloud) -> Driver:
    return Driver(shared_cloud)


@pytest.fixture(scope="module")
def http_api(shared_cloud: LocalCloud) -> Iterator[str]:
    """The module's cloud behind the HTTP API (what `hallmark local serve` runs), for CLI tests
    that run `hallmark ...` in another process: its base URL."""
    server = make_server(shared_cloud, free_port())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def bus_events_validate(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every detail published on the bus during a test validates against its JSON Schema
    (``events/schemas/bus``); the test fails at teardown naming each violation."""
    found: list[str] = []
    publish = EventBusPublisher.publish

    def checked(self: EventBusPublisher, detail_type: str, detail: dict[str, Any]) -> None:
        try:
            found.extend(violations(detail_type, json.loads(json.dumps(detail))))
        except AssertionError as exc:  # a detail type without a schema
            found.append(str(exc))
        publish(self, detail_type, detail)

    monkeypatch.setattr(EventBusPublisher, "publish", checked)
    yield found
    assert not found, found
