"""``hallmark report PACKAGE_ID --html FILE``, rendered by a real headless browser (Chromium):
the screenshot exists and is not blank, and the page shows the validations with their reasons,
the manifest digest, the approvals, the ceremony tier and the audit proof status."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from hallmark_tools import samples
from hallmark_tools.driver import Approvers, Driver
from hallmark_tools.scenarios.ceremony import Witnesses
from tests.support.browser import chromium, render

HALLMARK = [sys.executable, "-m", "hallmark_tools.cli"]
PACKAGE = samples.clean_package()

try:
    chromium()
    BROWSER = True
except RuntimeError:
    BROWSER = False
needs_browser = pytest.mark.skipif(not BROWSER, reason="headless Chromium is not installed (apt-get install chromium)")


def _report(http_api: str, token: str, package_id: str, out: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HALLMARK_API": http_api, "HALLMARK_TOKEN": token}
    proc = subprocess.run([*HALLMARK, "report", package_id, "--html", str(out)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


class _ById(HTMLParser):
    """The text inside the element with a given id, nested elements included."""

    VOID = frozenset({"meta", "br", "img", "hr", "input", "link"})

    def __init__(self, ident: str) -> None:
        super().__init__()
        self.ident, self.depth, self.found = ident, 0, False
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            return
        if self.depth:
            self.depth += 1
        elif dict(attrs).get("id") == self.ident:
            self.depth, self.found = 1, True

    def handle_endtag(self, tag: str) -> None:
        if self.depth and tag not in self.VOID:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.parts.append(data)


def _text(dom: str, ident: str) -> str:
    parser = _ById(ident)
    parser.feed(dom)
    assert parser.found, f"no element #{ident} in the page"
    return " ".join(" ".join(parser.parts).split())


@needs_browser
def test_a_governed_release_with_a_ceremony_reads_in_the_browser(driver: Driver, http_api: str,
                                                                  tmp_path: Path) -> None:
    approvers = Approvers(driver, count=3, prefix="report-approver")
    assert driver.wait_package(driver.submit(PACKAGE, name="report-x", version="1.0.0"))["status"] == "Published"
    pid = driver.submit(PACKAGE, name="report-x", version="2.0.0")  # a major bump: HIGH, 3 approvals
    doc = driver.wait_package(pid, ("AwaitingApproval", "Published", "Rejected"))
    assert doc["status"] == "AwaitingApproval", doc
    upgrade = driver.ok("GET", f"/upgrades/{doc['upgradeId']}", "auditor")
    for approver_id in approvers.keys:
        form = approvers.form(approver_id, doc["upgradeId"], upgrade["manifestDigest"])
        assert approvers.submit(approver_id, doc["upgradeId"], form).status == 201
    doc = driver.wait_package(pid)
    assert doc["status"] == "Published", doc
    witnesses = Witnesses(driver, ["report-witness"])
    assert witnesses.run("bronze", [pid], ["report-witness"])["status"] == "Completed"

    early = _report(http_api, driver.tokens["submitter"], pid, tmp_path / "early.html")
    assert early.returncode == 0 and "audit proofs FAILED" in early.stdout  # not yet checkpointed: never a pass
    assert "not covered by a signed checkpoint yet" in early.stdout, early.stdout
    from hallmark.adapters.runtime import audit_log

    driver.cloud.wait_idle(timeout=30)
    for chain in ("release", "governance", "ceremony"):
        audit_log().checkpoint_now(chain)
    page = tmp_path / "report.html"
    made = _report(http_api, driver.tokens["submitter"], pid, page)
    assert made.returncode == 0, made.stderr
    assert "audit proofs verified" in made.stdout, made.stdout
    shot = render(page.as_uri(), tmp_path / "report.png")
    width, height = _png_size(shot.screenshot)
    assert (width, height) == (1280, 1024) and shot.screenshot.stat().st_size > 20_000  # a drawn page, not blank
    dom = shot.dom
    assert "report-x 2.0.0" in _text(dom, "title") and "Published" in _text(dom, "status")
    assert doc["manifest"]["digest"] in _text(dom, "manifest-digest")
    assert len(re.findall(r'data-validator="', dom)) == len(doc["validators"]) == 6
    approvals = _text(dom, "approvals")
    assert "3 of 3 approvals" in approvals and all(a in dom for a in approvers.keys)
    assert "bronze" in _text(dom, "tier")
    assert "verified" in _text(dom, "audit-status") and "FAIL" not in _text(dom, "audit")
    assert "<script" not in page.read_text()  # self-contained and static


@needs_browser
def test_a_rejected_package_shows_its_reasons(driver: Driver, http_api: str, tmp_path: Path) -> None:
    pid = driver.submit(samples.variant("secret", "report-leaky"), name="report-leaky", version="1.0.0")
    doc = driver.wait_package(pid)
    assert doc["status"] == "Rejected"
    page = tmp_path / "rejected.html"
    made = _report(http_api, driver.tokens["submitter"], pid, page)
    assert made.returncode == 0 and "audit proofs not checked" in made.stdout, made.stdout + made.stderr
    dom = render(page.as_uri(), tmp_path / "rejected.png").dom
    assert "Rejected" in _text(dom, "status")
    failed = re.search(r'data-validator="security".*?</tr>', dom, re.S)
    assert failed and "failed" in failed.group(0)
    assert all(r in dom for r in (doc["validators"]["security"]["reasons"]))
    assert "none (not signed)" in _text(dom, "manifest-digest")
    assert "not checked" in _text(dom, "audit-status")


def test_a_package_that_does_not_exist_is_one_line(driver: Driver, http_api: str, tmp_path: Path) -> None:
    made = _report(http_api, driver.tokens["submitter"], "no-such-package", tmp_path / "x.html")
    assert made.returncode == 2 and made.stderr.startswith("error: not_found"), made.stderr
    assert not (tmp_path / "x.html").exists()
