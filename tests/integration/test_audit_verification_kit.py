"""The third-party verification kit on the local cloud (issue 18): inclusion proofs against a
named checkpoint, consistency proofs between checkpoints, public keys at `GET /keys` (no
token), and the checked documents verified offline by `hallmark audit prove`."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hallmark.audit.proofs import check_proof_document
from hallmark.signing import public_key_fingerprint
from hallmark_tools.cli import app
from hallmark_tools.driver import Driver
from hallmark_tools.export import export_keys
from hallmark_tools.localcloud.cloud import LocalCloud
from hallmark_tools.localcloud.server import free_port, make_server

CHAIN = "verifykit"


@pytest.fixture(scope="module")
def chain(shared_cloud: LocalCloud) -> list[int]:
    """A chain with checkpoints at 3, 7 and 12 (written through the log the API reads)."""
    from hallmark.adapters.runtime import audit_log

    log = audit_log()
    sizes = []
    for i in range(1, 13):
        log.append(CHAIN, f"vk-{i}", datetime.now(UTC), "PackageSubmitted", "alice", f"pkg-{i}", {"i": i})
        if i in (3, 7, 12):
            ck = log.checkpoint_now(CHAIN)
            assert ck is not None
            sizes.append(int(ck["seq"]))
    return sizes


def _get(driver: Driver, path: str) -> Any:
    return driver.ok("GET", path, "auditor")


def test_inclusion_against_a_named_checkpoint(driver: Driver, chain: list[int], tmp_path: Path) -> None:
    pem = next(k for k in driver.ok("GET", "/keys")["keys"] if k["purpose"] == "audit")["pem"].encode()
    for ckpt in chain:
        for seq in (1, ckpt):
            body = _get(driver, f"/audit/{CHAIN}/proof/{seq}?checkpoint={ckpt}")
            assert body["proof"]["checkpoint"]["seq"] == ckpt
            assert check_proof_document(body, {"audit": pem}).ok
    (tmp_path / "audit.pem").write_bytes(pem)
    (tmp_path / "p.json").write_text(json.dumps(_get(driver, f"/audit/{CHAIN}/proof/2?checkpoint=3")))
    r = CliRunner().invoke(app, ["audit", "prove", str(tmp_path / "p.json"), "--key", str(tmp_path / "audit.pem")])
    assert r.exit_code == 0, r.output


def test_consistency_between_checkpoints(driver: Driver, chain: list[int], tmp_path: Path) -> None:
    pem = next(k for k in driver.ok("GET", "/keys")["keys"] if k["purpose"] == "audit")["pem"].encode()
    (tmp_path / "audit.pem").write_bytes(pem)
    for i, old in enumerate(chain):
        for new in chain[i:]:
            body = _get(driver, f"/audit/{CHAIN}/consistency?from={old}&to={new}")
            assert body["proof"]["oldSize"] == old and body["proof"]["newSize"] == new
            path = tmp_path / f"c-{old}-{new}.json"
            path.write_text(json.dumps(body))
            r = CliRunner().invoke(app, ["audit", "prove", str(path), "--key", str(tmp_path / "audit.pem")])
            assert r.exit_code == 0, r.output


@pytest.mark.parametrize(("path", "status"), [
    (f"/audit/{CHAIN}/consistency?from=7&to=3", 400),
    (f"/audit/{CHAIN}/consistency?from=3", 422),
    (f"/audit/{CHAIN}/consistency?from=0&to=3", 422),
    (f"/audit/{CHAIN}/consistency?from=3&to=5", 404),
    (f"/audit/{CHAIN}/consistency?from=4&to=7", 404),
    (f"/audit/{CHAIN}/proof/5?checkpoint=3", 404),
    (f"/audit/{CHAIN}/proof/1?checkpoint=4", 404),
    (f"/audit/{CHAIN}/proof/1?checkpoint=x", 422),
])
def test_bad_proof_requests_get_a_json_error(driver: Driver, chain: list[int], path: str, status: int) -> None:
    resp = driver.call("GET", path, "auditor")
    assert resp.status in (status, 400) and resp.status < 500, resp.body[:300]
    assert set(resp.json()["error"]) == {"code", "message", "details"}


def test_proof_routes_need_the_auditor_role(driver: Driver, chain: list[int]) -> None:
    assert driver.call("GET", f"/audit/{CHAIN}/consistency?from=3&to=7", "submitter").status == 403
    assert driver.call("GET", f"/audit/{CHAIN}/consistency?from=3&to=7").status == 401


@pytest.fixture(scope="module")
def api_url(shared_cloud: LocalCloud) -> Iterator[str]:
    server = make_server(shared_cloud, free_port())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_keys_are_public_and_match_kms(driver: Driver, shared_cloud: LocalCloud, tmp_path: Path) -> None:
    resp = driver.call("GET", "/keys")  # no token at all
    assert resp.status == 200, resp.body[:300]
    entries = resp.json()["keys"]
    assert [e["purpose"] for e in entries] == ["audit", "manifest", "proof"]
    from_kms = export_keys(tmp_path / "kms", shared_cloud.client("kms"))
    for e in entries:
        assert set(e) == {"purpose", "keyId", "algorithm", "pem", "fingerprint"}
        assert e["algorithm"] == "ECDSA_P256_SHA256" and "PRIVATE" not in e["pem"]
        assert e["pem"].encode() == from_kms[e["purpose"]].read_bytes()
        assert e["fingerprint"] == public_key_fingerprint(e["pem"].encode())


def test_keys_export_from_the_api_without_credentials(api_url: str, chain: list[int], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    out = tmp_path / "keys"
    r = CliRunner().invoke(app, ["keys", "export", "--api", api_url, "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["audit.pem", "keys.json", "manifest.pem", "proof.pem"]
    from hallmark.adapters.runtime import audit_log

    latest = audit_log().store.latest_checkpoint(CHAIN)
    assert latest is not None
    listed = {e["purpose"]: e for e in json.loads((out / "keys.json").read_text())["keys"]}
    assert listed["audit"]["keyId"] == latest.checkpoint["keyId"]  # the id checkpoints name
    proof = tmp_path / "p.json"
    proof.write_text(json.dumps(_get_http(api_url, f"/audit/{CHAIN}/consistency?from=3&to=12")))
    r = CliRunner().invoke(app, ["audit", "prove", str(proof), "--key", str(out / "audit.pem")])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["audit", "prove", str(proof), "--key", str(out / "manifest.pem")])
    assert r.exit_code == 2, r.output


def _get_http(base: str, path: str) -> Any:
    import urllib.request

    from hallmark_tools.localcloud.auth import LocalIssuer

    req = urllib.request.Request(base + path, headers={
        "authorization": f"Bearer {LocalIssuer().token('auditor-1', ['auditor'], 600)}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def test_checkpoint_as_a_signed_note(driver: Driver, chain: list[int]) -> None:
    from tests.unit.test_checkpoint_notes import independent_open

    pem = next(k for k in driver.ok("GET", "/keys")["keys"] if k["purpose"] == "audit")["pem"].encode()
    latest = _get(driver, f"/audit/{CHAIN}/checkpoints/latest")["checkpoint"]
    for path, ckpt in ((f"/audit/{CHAIN}/checkpoint", latest),
                       (f"/audit/{CHAIN}/checkpoint?seq=3", _get(driver, f"/audit/{CHAIN}/checkpoints")["checkpoints"][0])):
        resp = driver.call("GET", path, "auditor")
        assert resp.status == 200 and resp.headers["content-type"].startswith("text/plain"), resp.body[:300]
        origin, size, root = independent_open(resp.body, f"hallmark.local/audit/{CHAIN}", pem)
        assert origin == f"hallmark.local/audit/{CHAIN}"
        assert size == ckpt["seq"] and root.hex() == ckpt["merkleRoot"]
    assert driver.call("GET", f"/audit/{CHAIN}/checkpoint?seq=4", "auditor").status == 404
    assert driver.call("GET", "/audit/nochain/checkpoint", "auditor").status == 404
    assert driver.call("GET", f"/audit/{CHAIN}/checkpoint", "submitter").status == 403
