"""The release bundle (issue 18, item 3, this version's scope): `GET /packages/{id}/bundle` and
`hallmark bundle verify` offline: a HIGH release with three approvals verifies, and each
single-field tampering fails with its own reason."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hallmark_tools import samples
from hallmark_tools.cli import app
from hallmark_tools.driver import Approvers, Driver
from hallmark_tools.localcloud.cloud import LocalCloud
from tests.integration.bundle_support import failed_checks, flip_b64, public_keys, serving


@pytest.fixture(scope="module")
def keys(driver: Driver, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    return public_keys(driver, tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def high(shared_cloud: LocalCloud, driver: Driver) -> tuple[dict[str, Any], bytes]:
    """A HIGH release approved by three of five registered approvers, its events checkpointed."""
    from hallmark.adapters.runtime import audit_log

    approvers = Approvers(driver)
    body = samples.clean_package("bundle-high")
    pid = driver.submit(body, name="bundle-high", version="2.0.0", impact="HIGH")
    doc = driver.wait_package(pid, ("AwaitingApproval", "Rejected", "Published"))
    assert doc["status"] == "AwaitingApproval", doc
    for a in ("approver-1", "approver-2", "approver-3"):
        resp = approvers.submit(a, doc["upgradeId"], approvers.form(a, doc["upgradeId"], doc["manifest"]["digest"]))
        assert resp.status == 201, resp.body
    assert driver.wait_package(pid)["status"] == "Published"
    shared_cloud.wait_idle(timeout=30)
    for chain in ("release", "governance"):
        audit_log().checkpoint_now(chain)
    return driver.ok("GET", f"/packages/{pid}/bundle", "auditor"), body



def test_a_high_release_bundle_verifies(high: tuple[dict[str, Any], bytes], keys: tuple[Path, dict[str, bytes]],
                                        tmp_path: Path) -> None:
    bundle, body = high
    assert bundle["impact"] == "HIGH" and len(bundle["approvals"]["records"]) == 3
    types = {i["event"]["type"] for i in bundle["audit"]["events"]}
    assert {"PackageSubmitted", "ManifestSigned", "PackagePublished", "ApprovalRecorded"} <= types
    assert failed_checks(bundle, keys[1], body) == []
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    (tmp_path / "pkg.tgz").write_bytes(body)
    r = CliRunner().invoke(app, ["bundle", "verify", str(path), "--keys", str(keys[0]),
                                 "--artifact", str(tmp_path / "pkg.tgz")])
    assert r.exit_code == 0 and "OK all" in r.output, r.output
    (tmp_path / "other.tgz").write_bytes(body + b"x")
    r = CliRunner().invoke(app, ["bundle", "verify", str(path), "--keys", str(keys[0]),
                                 "--artifact", str(tmp_path / "other.tgz")])
    assert r.exit_code == 2 and "FAIL artifact digest" in r.output, r.output



def test_every_single_field_tampering_fails_with_its_reason(high: tuple[dict[str, Any], bytes],
                                                           keys: tuple[Path, dict[str, bytes]]) -> None:
    bundle, body = high
    pems = keys[1]

    def tampered(change: Any) -> dict[str, Any]:
        b = copy.deepcopy(bundle)
        change(b)
        return b

    def payload(b: dict[str, Any]) -> None:
        env = b["manifest"]["envelope"]
        env["payload"] = base64.b64encode(base64.b64decode(env["payload"]).replace(b"HIGH", b"LOW", 1)).decode()

    def signature(b: dict[str, Any]) -> None:
        b["manifest"]["envelope"]["signatures"][0]["sig"] = flip_b64(b["manifest"]["envelope"]["signatures"][0]["sig"])

    def proof_node(b: dict[str, Any]) -> None:
        item = next(i for i in b["audit"]["events"] if i["proof"]["path"])
        item["proof"]["path"][0] = "0" * 64

    def checkpoint_root(b: dict[str, Any]) -> None:
        b["audit"]["events"][0]["proof"]["checkpoint"]["merkleRoot"] = "1" * 64

    def approval(b: dict[str, Any]) -> None:
        b["approvals"]["records"][0]["signature"] = flip_b64(b["approvals"]["records"][0]["signature"])

    def missing_approver(b: dict[str, Any]) -> None:
        del b["approvals"]["registry"][b["approvals"]["records"][1]["approverId"]]

    def event(b: dict[str, Any]) -> None:
        b["audit"]["events"][0]["event"]["actor"] = "mallory"

    cases = {
        "payload": (payload, "manifest signature: the DSSE envelope does not verify"),
        "signature": (signature, "manifest signature: the DSSE envelope does not verify"),
        "proof node": (proof_node, "audit path does not lead"),
        "checkpoint root": (checkpoint_root, "checkpoint (seq"),
        "approval": (approval, "the signature does not verify for this upgrade"),
        "missing approver": (missing_approver, "no registry entry for approver"),
        "event": (event, "event altered"),
    }
    for name, (change, reason) in cases.items():
        failures = failed_checks(tampered(change), pems, body)
        assert failures and any(reason in f for f in failures), (name, failures)
    # a bundle cannot lower the threshold, nor bring a key the log never registered
    lowered = tampered(lambda b: b["approvals"].__setitem__("threshold", 1))
    lowered["approvals"]["records"] = lowered["approvals"]["records"][:1]
    assert any("1 distinct registered approvers approved, 3 needed" in f for f in failed_checks(lowered, pems, body))
    unlogged = tampered(lambda b: b["audit"].__setitem__("events", [
        i for i in b["audit"]["events"] if i["event"]["type"] not in ("ApproverAdded", "ApproverKeyRotated")]))
    assert any("no proved audit event registers key" in f for f in failed_checks(unlogged, pems, body))
    # one approval fewer than the threshold is refused even though every signature holds
    short = tampered(lambda b: b["approvals"].__setitem__("records", b["approvals"]["records"][:2]))
    assert any("2 distinct registered approvers approved, 3 needed" in f for f in failed_checks(short, pems, body))


def test_bundle_route_refuses_strangers_and_unknown_packages(driver: Driver, high: tuple[dict[str, Any], bytes]) -> None:
    pid = high[0]["packageId"]
    assert driver.call("GET", f"/packages/{pid}/bundle").status == 401
    stranger = driver.cloud.token("submitter", "someone-else")
    assert driver.call("GET", f"/packages/{pid}/bundle", token=stranger).status == 404  # not even its existence
    assert driver.call("GET", "/packages/nope/bundle", "auditor").status == 404


def _sigstore_js() -> str | None:
    """Where @sigstore/verify is installed (HALLMARK_SIGSTORE_JS: a node_modules directory)."""
    import os
    import shutil

    path = os.environ.get("HALLMARK_SIGSTORE_JS")
    if not path or not shutil.which("node") or not (Path(path) / "@sigstore" / "verify").is_dir():
        return None
    return path


@pytest.mark.skipif(_sigstore_js() is None, reason="set HALLMARK_SIGSTORE_JS to a node_modules with @sigstore/verify")
def test_the_sigstore_bundle_is_accepted_by_the_sigstore_js_verifier(high: tuple[dict[str, Any], bytes],
                                                                    keys: tuple[Path, dict[str, bytes]],
                                                                    tmp_path: Path) -> None:
    import os
    import subprocess

    bundle = high[0]
    script = Path(__file__).parent / "js" / "sigstore_verify.js"
    env = {**os.environ, "NODE_PATH": str(_sigstore_js())}
    good = tmp_path / "sigstore.json"
    good.write_text(json.dumps(bundle["sigstore"]))
    run = subprocess.run(["node", str(script), str(good), str(keys[0] / "manifest.pem")], env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "verified" in run.stdout, run.stdout + run.stderr
    bad = copy.deepcopy(bundle["sigstore"])
    bad["dsseEnvelope"]["payload"] = base64.b64encode(base64.b64decode(bad["dsseEnvelope"]["payload"]) + b" ").decode()
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    run = subprocess.run(["node", str(script), str(tmp_path / "bad.json"), str(keys[0] / "manifest.pem")], env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "refused" in run.stdout, run.stdout + run.stderr
    other = tmp_path / "other.pem"
    other.write_bytes(keys[1]["audit"])
    run = subprocess.run(["node", str(script), str(good), str(other)], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1, run.stdout
    # and the bundle's own check ties it to the manifest
    tampered = copy.deepcopy(bundle)
    tampered["sigstore"]["dsseEnvelope"] = bad["dsseEnvelope"]
    assert any("sigstore bundle" in f for f in failed_checks(tampered, keys[1], high[1]))


def test_hallmark_bundle_downloads_then_verifies(shared_cloud: LocalCloud, high: tuple[dict[str, Any], bytes],
                                                 keys: tuple[Path, dict[str, bytes]], tmp_path: Path) -> None:
    with serving(shared_cloud) as api:
        out = tmp_path / "b.json"
        token = shared_cloud.token("auditor")
        r = CliRunner().invoke(app, ["bundle", high[0]["packageId"], "--out", str(out), "--api", api, "--token", token])
        assert r.exit_code == 0, r.output
        r = CliRunner().invoke(app, ["bundle", "nope", "--out", str(out), "--api", api, "--token", token])
        assert r.exit_code == 2 and "404" in r.output, r.output
    (tmp_path / "pkg").write_bytes(high[1])
    r = CliRunner().invoke(app, ["bundle", "verify", str(out), "--keys", str(keys[0]), "--artifact", str(tmp_path / "pkg")])
    assert r.exit_code == 0 and "PASS approvals threshold" in r.output, r.output
    r = CliRunner().invoke(app, ["bundle", "verify", str(out), "--keys", str(keys[0]), "--threshold", "4"])
    assert r.exit_code == 2 and "3 distinct registered approvers approved, 4 needed" in r.output, r.output
