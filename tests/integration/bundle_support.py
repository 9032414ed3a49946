"""Helpers of the release-bundle tests (test_release_bundle, test_bundle_provenance)."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hallmark.bundle import verify_bundle
from hallmark_tools.driver import Driver
from hallmark_tools.localcloud.cloud import LocalCloud


def public_keys(driver: Driver, out: Path) -> tuple[Path, dict[str, bytes]]:
    """`GET /keys` written to ``out/<purpose>.pem`` (what `hallmark keys export --api` does)."""
    pems = {k["purpose"]: k["pem"].encode() for k in driver.ok("GET", "/keys")["keys"]}
    for purpose, pem in pems.items():
        (out / f"{purpose}.pem").write_bytes(pem)
    return out, pems


def failed_checks(bundle: dict[str, Any], pems: dict[str, bytes], artifact: bytes) -> list[str]:
    """``name: detail`` of each failed check."""
    return [f"{c.name}: {c.detail}" for c in verify_bundle(bundle, pems, artifact) if not c.ok]


def flip_b64(text: str) -> str:
    """``text`` (base64) with one bit of its middle byte flipped."""
    raw = bytearray(base64.b64decode(text))
    raw[len(raw) // 2] ^= 1
    return base64.b64encode(bytes(raw)).decode()


@contextmanager
def serving(cloud: LocalCloud) -> Iterator[str]:
    """The local cloud's API over HTTP (what `hallmark local serve` runs); yields its base URL."""
    from hallmark_tools.localcloud.server import free_port, make_server

    server = make_server(cloud, free_port())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
