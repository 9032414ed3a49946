"""Shared fixtures: the local cloud (moto in-process) and a synthesized CDK template."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")


@pytest.fixture(autouse=True, scope="session")
def _hallmark_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # The local JWT issuer key is generated per test session, never stored in the repo.
    home = tmp_path_factory.mktemp("hallmark-home")
    old = os.environ.get("HALLMARK_HOME")
    os.environ["HALLMARK_HOME"] = str(home)
    yield
    if old is None:
        os.environ.pop("HALLMARK_HOME", None)
    else:
        os.environ["HALLMARK_HOME"] = old


@pytest.fixture()
def cloud() -> Iterator[object]:
    from hallmark_tools.localcloud.cloud import LocalCloud

    with LocalCloud() as c:
        yield c


ROOT = Path(__file__).resolve().parents[1]
