"""Headless Chromium for page tests: render a URL, return its DOM after scripts ran, and a screenshot.

Debian's ``chromium`` (``.ci/run`` installs it). Flags as this machine's closed network needs them:
no background networking, no component updates, a fresh profile per run.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


@dataclass(frozen=True)
class Rendered:
    dom: str
    screenshot: Path


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if path is None:
        raise RuntimeError("headless Chromium is not installed (apt-get install chromium)")
    return path


def _run(args: list[str], timeout: float) -> str:
    with tempfile.TemporaryDirectory(prefix="hallmark-chromium-") as profile:
        done = subprocess.run(
            [chromium(), *_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
    return done.stdout


def render(url: str, screenshot: Path, *, width: int = 1280, height: int = 1024, timeout: float = 60.0) -> Rendered:
    """The page at ``url`` as the browser built it (``--dump-dom``) and a PNG of it."""
    dom = _run(["--virtual-time-budget=5000", "--dump-dom", url], timeout)
    _run([f"--window-size={width},{height}", f"--screenshot={screenshot}", url], timeout)
    if not screenshot.exists() or screenshot.stat().st_size == 0:
        raise RuntimeError(f"chromium wrote no screenshot for {url}")
    return Rendered(dom=dom, screenshot=screenshot)
