from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from hallmark_tools.driver import Driver
from hallmark_tools.localcloud.cloud import LocalCloud
from hallmark_tools.localcloud.server import free_port, make_server


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
