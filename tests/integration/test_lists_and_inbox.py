"""Every list route pages with ``nextToken`` and refuses a garbage one (400); ``GET /packages``
filters; an approver's inbox (``GET /upgrades?status=Pending``, the same for settlements,
``hallmark inbox``) and ``hallmark approve --settlement``, run as a newcomer runs them: the CLI in
another process against the API over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from hallmark_tools import samples
from hallmark_tools.driver import Approvers, Driver

HALLMARK = [sys.executable, "-m", "hallmark_tools.cli"]
PACKAGE = samples.clean_package()


@pytest.fixture(scope="module")
def approvers(driver: Driver) -> Approvers:
    return Approvers(driver, count=3, prefix="inbox-approver")


def _cli(args: list[str], api: str, token: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HALLMARK_API": api, "HALLMARK_TOKEN": token}
    proc = subprocess.run([*HALLMARK, *args], env=env, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def _walk(driver: Driver, path: str, role: str, field: str = "items", **params: str) -> list[dict[str, Any]]:
    """Every item of a list route, one item per page."""
    seen: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        query = "&".join(["limit=1", *(f"{k}={v}" for k, v in params.items()),
                          *([f"nextToken={token}"] if token else [])])
        page = driver.ok("GET", f"{path}?{query}", role)
        assert len(page[field]) <= 1
        seen += page[field]
        token = page["nextToken"]
        if token is None:
            return seen
        assert len(seen) < 500, "the pages never end"


def _published(driver: Driver, name: str, version: str = "1.0.0") -> dict[str, Any]:
    pid = driver.submit(PACKAGE, name=name, version=version)
    doc = driver.wait_package(pid)
    assert doc["status"] == "Published", doc
    return doc


def test_packages_filter_and_page(driver: Driver) -> None:
    a = _published(driver, "list-a")
    b = _published(driver, "list-b")
    rejected = driver.submit(samples.variant("secret", "list-c"), name="list-c", version="1.0.0")
    assert driver.wait_package(rejected)["status"] == "Rejected"
    every = _walk(driver, "/packages", "superadmin")
    ids = [p["packageId"] for p in every]
    assert len(ids) == len(set(ids)) and {a["packageId"], b["packageId"], rejected} <= set(ids)
    assert [p["submittedAt"] for p in every] == sorted((p["submittedAt"] for p in every), reverse=True)
    by_name = driver.ok("GET", "/packages?name=list-b", "submitter")["items"]
    assert [p["packageId"] for p in by_name] == [b["packageId"]] and by_name[0]["version"] == "1.0.0"
    refused = driver.ok("GET", "/packages?status=Rejected", "superadmin")["items"]
    assert rejected in [p["packageId"] for p in refused] and all(p["status"] == "Rejected" for p in refused)
    assert any("security" in r for p in refused if p["packageId"] == rejected for r in p["reasons"])
    mine = driver.ok("GET", "/packages?submitter=sam-submitter", "superadmin")["items"]
    assert mine and all(p["submittedBy"] == "sam-submitter" for p in mine)
    # a submitter sees only its own packages; a stranger sees none of them
    stranger = driver.cloud.token("submitter", "someone-else")
    assert driver.call("GET", "/packages?name=list-a", token=stranger).json()["items"] == []


@pytest.mark.parametrize(("path", "role", "field"), [
    ("/packages", "superadmin", "items"), ("/listings", "buyer", "items"), ("/briefs", "buyer", "items"),
    ("/scoring/batches", "buyer", "items"), ("/approvers", "auditor", "approvers"), ("/orders", "buyer", "items"),
    ("/upgrades", "auditor", "items"), ("/settlements", "auditor", "items"),
])
def test_every_list_route_pages_and_refuses_a_garbage_token(driver: Driver, approvers: Approvers, path: str,
                                                            role: str, field: str) -> None:
    _published(driver, f"page{path.replace('/', '-')}")
    resp = driver.call("GET", f"{path}?limit=1", role)
    assert resp.status == 200, resp.body
    assert "nextToken" in resp.json() and isinstance(resp.json()[field], list)
    for garbage in ("garbage", "eyJ2IjoxfQ.0000000000000000", "a" * 3000):
        bad = driver.call("GET", f"{path}?nextToken={garbage}", role)
        assert bad.status in (400, 422), (garbage, bad.status, bad.body)
        assert bad.json()["error"]["code"] in ("invalid_next_token", "validation_error", "invalid_request"), bad.body
    if path in ("/listings", "/approvers", "/packages"):  # these hold several records by now
        items = _walk(driver, path, role, field)
        keys = [str(i.get("packageId") or i.get("listingId") or i.get("approverId")) for i in items]
        assert len(keys) >= 2 and len(keys) == len(set(keys))
        full = driver.ok("GET", f"{path}?limit=200", role)[field]
        assert len(full) == len(items)


def test_a_token_from_another_route_or_filter_is_refused(driver: Driver) -> None:
    for name in ("tok-a", "tok-b"):
        _published(driver, name)
    token = driver.ok("GET", "/packages?limit=1", "superadmin")["nextToken"]
    assert token
    other = driver.call("GET", f"/listings?nextToken={token}", "buyer")
    assert other.status == 400 and other.json()["error"]["code"] == "invalid_next_token"
    refiltered = driver.call("GET", f"/packages?status=Published&nextToken={token}", "superadmin")
    assert refiltered.status == 400 and "other filters" in refiltered.json()["error"]["message"]


def _key_file(approvers: Approvers, approver_id: str, where: Path) -> Path:
    path = where / f"{approver_id}.pem"
    path.write_bytes(approvers.keys[approver_id].private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return path


def test_inbox_and_approve_settlement_through_the_cli(driver: Driver, approvers: Approvers, http_api: str,
                                                      tmp_path: Path) -> None:
    listing = _published(driver, "inbox-x")
    planned = driver.ok("POST", "/settlements", "submitter", {
        "listingId": listing["listingId"], "memo": "split",
        "parties": [{"party": "sam-submitter", "bps": 7_000}, {"party": "co-author", "bps": 3_000}]})
    sid = planned["settlementId"]
    pending = driver.ok("GET", "/settlements?status=Pending", "auditor")["items"]
    assert sid in [s["settlementId"] for s in pending]
    assert sid not in [s["settlementId"] for s in driver.ok("GET", "/settlements?status=Applied", "auditor")["items"]]

    first = "inbox-approver-1"
    token = approvers.token(first)
    shown = _cli(["inbox"], http_api, token)
    assert shown.returncode == 0, shown.stderr
    assert f"settlement {sid}" in shown.stdout and f"--settlement {sid}" in shown.stdout
    assert "sam-submitter 70%" in shown.stdout

    key = _key_file(approvers, first, tmp_path)
    done = _cli(["approve", "--key", str(key), "--settlement", sid], http_api, token)
    assert done.returncode == 0, done.stderr
    assert f"recorded approve by {first} on settlement {sid}" in done.stdout
    view = driver.ok("GET", f"/settlements/{sid}", "auditor")["approval"]
    assert view["approvals"] == 1 and view["approvers"] == [first]
    # decided: gone from this approver's inbox, still in the next one's
    assert f"settlement {sid}" not in _cli(["inbox"], http_api, token).stdout
    assert f"settlement {sid}" in _cli(["inbox"], http_api, approvers.token("inbox-approver-2")).stdout
    # the same key again is refused (one decision per approver), in one readable line
    again = _cli(["approve", "--key", str(key), "--settlement", sid], http_api, token)
    assert again.returncode == 2 and again.stderr.startswith("error: "), again.stderr
    for other in ("inbox-approver-2", "inbox-approver-3"):
        ok = _cli(["approve", "--key", str(_key_file(approvers, other, tmp_path)), "--settlement", sid], http_api,
                  approvers.token(other))
        assert ok.returncode == 0, ok.stderr
    assert driver.ok("GET", f"/settlements/{sid}", "auditor")["approval"]["status"] == "Applied"
    assert sid in [s["settlementId"] for s in driver.ok("GET", "/settlements?status=Applied", "auditor")["items"]]


def test_inbox_lists_a_pending_upgrade_until_decided(driver: Driver, approvers: Approvers, http_api: str,
                                                     tmp_path: Path) -> None:
    _published(driver, "inbox-up", "1.0.0")
    pid = driver.submit(PACKAGE, name="inbox-up", version="2.0.0")  # a major bump: HIGH
    doc = driver.wait_package(pid, ("AwaitingApproval", "Published", "Rejected"))
    assert doc["status"] == "AwaitingApproval", doc
    upgrade = doc["upgradeId"]
    assert upgrade in [u["upgradeId"] for u in driver.ok("GET", "/upgrades?status=Pending", "auditor")["items"]]
    token = approvers.token("inbox-approver-3")
    assert f"upgrade {upgrade}  package {pid}" in _cli(["inbox"], http_api, token).stdout
    done = _cli(["approve", "--key", str(_key_file(approvers, "inbox-approver-3", tmp_path)), "--upgrade", upgrade],
                http_api, token)
    assert done.returncode == 0, done.stderr
    assert f"upgrade {upgrade}" not in _cli(["inbox"], http_api, token).stdout
    listed = _cli(["packages", "--name", "inbox-up"], http_api, driver.tokens["submitter"])
    assert listed.returncode == 0 and f"{pid}  inbox-up@2.0.0  AwaitingApproval" in listed.stdout, listed.stdout


def test_a_witness_signs_with_openssl_through_payload_and_add(driver: Driver, http_api: str, tmp_path: Path) -> None:
    """The witness path without the CLI's signer: the exact payload bytes out, openssl signs them,
    the DER signature goes back in."""
    from hallmark_tools.scenarios.ceremony import Witnesses

    witness = "openssl-witness"
    witnesses = Witnesses(driver, [witness])
    key = tmp_path / "w.pem"
    key.write_bytes(witnesses.keys[witness].private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    artifact = _published(driver, "witnessed-by-openssl")["packageId"]
    opened = witnesses.open(witness, "bronze", [artifact])
    assert opened.status == 201, opened.body
    cid = opened.json()["ceremonyId"]
    token = witnesses.token(witness)
    bad = tmp_path / "bad.der"
    bad.write_bytes(b"not a signature")
    refused = _cli(["witness", "add", "--ceremony", cid, "--signature", str(bad)], http_api, token)
    assert refused.returncode == 2 and refused.stderr.startswith("error: bad_signature"), refused.stderr
    assert _cli(["witness", "payload", "--ceremony", cid, "--out", str(tmp_path / "payload")], http_api,
                token).returncode == 0
    subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(key), "-out", str(tmp_path / "sig.der"),
                    str(tmp_path / "payload")], check=True, capture_output=True)
    added = _cli(["witness", "add", "--ceremony", cid, "--signature", str(tmp_path / "sig.der")], http_api, token)
    assert added.returncode == 0 and "1/1 witnesses" in added.stdout, added.stdout + added.stderr
    assert witnesses.wait(cid)["status"] == "Completed"
