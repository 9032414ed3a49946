from __future__ import annotations

from collections.abc import Iterator

import pytest

from hallmark_tools.driver import Driver
from hallmark_tools.localcloud.cloud import LocalCloud


@pytest.fixture(scope="module")
def shared_cloud() -> Iterator[LocalCloud]:
    """One local cloud per test module (boot ~1 s); tests use distinct package names."""
    with LocalCloud() as c:
        yield c


@pytest.fixture(scope="module")
def driver(shared_cloud: LocalCloud) -> Driver:
    return Driver(shared_cloud)
