"""The deployments dashboard served by the local API server, rendered by headless Chromium: the
DOM carries each function's environment, tier badge, version, canary share and drift, and the
screenshot shows the page (its size, and the bronze badge's and the live bar's colours in it)."""

from __future__ import annotations

import struct
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from hallmark.deploy.models import code_sha256_b64
from hallmark_tools.dashboard import PATH, TIER_COLOURS
from hallmark_tools.driver import Driver
from hallmark_tools.localcloud.cloud import LocalCloud
from hallmark_tools.localcloud.server import free_port, make_server
from hallmark_tools.scenarios.deployment import Deployer
from tests.support.browser import chromium, render


def _pixels(png: bytes) -> tuple[int, int, set[tuple[int, int, int]]]:
    """Width, height and the set of RGB colours of an 8-bit RGB/RGBA PNG (stdlib only)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    height = colour = 0
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        data = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", data[:10])
            assert depth == 8 and colour in (2, 6)
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    bpp = 3 if colour == 2 else 4
    raw, stride, prev = zlib.decompress(idat), width * bpp, bytearray(width * bpp)
    colours: set[tuple[int, int, int]] = set()
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        colours.update(tuple(line[i:i + 3]) for i in range(0, stride, bpp))  # type: ignore[misc]
        prev = line
    return width, height, colours


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[LocalCloud, str]]:
    try:
        chromium()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    env = {"DEPLOY_BAKE_SECONDS": "2", "AUDIT_CHECKPOINT_EVERY_SECONDS": "1"}
    with LocalCloud(env=env, schedule_every_s=1.0) as cloud:
        port = free_port()
        server = make_server(cloud, port)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield cloud, f"http://127.0.0.1:{port}"
        finally:
            server.shutdown()


def test_the_dashboard_shows_tier_version_canary_share_and_drift(served: tuple[LocalCloud, str],
                                                                  tmp_path: Path) -> None:
    cloud, base = served
    d = Deployer(Driver(cloud))
    name = f"page-{uuid.uuid4().hex[:6]}"
    d.release(name, "1.0.0", "bronze")
    live = d.wait(d.deploy(name, "1.0.0", "staging"))
    assert live["stage"] == "live", live
    d.tamper_code(live["functionName"])
    deadline = time.monotonic() + 60
    while d.code_sha256(live["functionName"]) != code_sha256_b64(live["signedSha256"]) \
            or not any(s["stage"] == "drifted" for s in d.get(live["deploymentId"])["stages"]):
        assert time.monotonic() < deadline, "no drift recorded"
        time.sleep(0.2)
    refused = d.wait(d.deploy(d.publish(f"{name}-x", "1.0.0")["meta"]["name"], "1.0.0", "staging"))
    assert refused["stage"] == "refused"

    page = render(f"{base}{PATH}", tmp_path / "deployments.png")
    card = page.dom.split(f'data-function="{live["functionName"]}"', 1)[1].split('class="card"', 1)[0]
    assert 'data-environment="staging"' in card and ">bronze<" in card and ">live<" in card
    assert 'data-share="100"' in card and 'data-drift="yes"' in card and "version 1" in card
    assert f'data-deployment="{refused["deploymentId"]}"' in page.dom  # refusals are listed, without a card
    assert f'data-function="{refused["functionName"]}"' not in page.dom
    width, height, colours = _pixels(page.screenshot.read_bytes())
    assert (width, height) == (1280, 1024)
    assert _rgb(TIER_COLOURS["bronze"]) in colours and _rgb("#1a7f37") in colours  # badge, live bar
