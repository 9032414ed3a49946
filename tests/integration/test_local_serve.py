"""`hallmark local serve` from another process: /health, a local token, and a presigned upload
with plain curl that runs the release flow to Published."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from hallmark_tools import samples
from hallmark_tools.localcloud.server import free_port

HALLMARK = [sys.executable, "-m", "hallmark_tools.cli"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    env = {**os.environ, "HALLMARK_HOME": str(tmp_path_factory.mktemp("home"))}
    port = free_port()
    proc = subprocess.Popen([*HALLMARK, "local", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(base + "/health", timeout=1)
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(proc.stdout.read().decode() if proc.stdout else "serve exited") from None
            time.sleep(0.2)
    yield base, env
    proc.terminate()
    proc.wait(timeout=20)


def _request(url: str, method: str = "GET", token: str | None = None, body: object = None) -> tuple[int, object]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_health_is_200_json(server: tuple[str, dict[str, str]]) -> None:
    status, body = _request(server[0] + "/health")
    assert status == 200 and body["status"] == "ok"  # type: ignore[index]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_token_and_curl_upload_run_the_release_to_published(server: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    base, env = server
    out = subprocess.run([*HALLMARK, "local", "token", "--role", "submitter", "--sub", "alice"],
                         env=env, capture_output=True, text=True, check=True).stdout
    token = out.split()[-1]
    body = samples.clean_package("curlpkg")
    status, created = _request(base + "/packages", "POST", token, samples.submission("curlpkg", "1.0.0", body))
    assert status == 201, created
    pkg = tmp_path / "curlpkg-1.0.0.tar.gz"
    pkg.write_bytes(body)
    checksum = created["uploadHeaders"]["x-amz-checksum-sha256"]  # type: ignore[index]
    put = subprocess.run(["curl", "-sf", "-X", "PUT", "-H", f"x-amz-checksum-sha256: {checksum}",
                          "--upload-file", str(pkg), created["uploadUrl"]],  # type: ignore[index]
                         capture_output=True, text=True)
    assert put.returncode == 0, put.stderr
    deadline = time.monotonic() + 90
    while True:
        status, doc = _request(f"{base}/packages/{created['packageId']}", token=token)  # type: ignore[index]
        if doc["status"] in ("Published", "Rejected") or time.monotonic() > deadline:  # type: ignore[index]
            break
        time.sleep(0.3)
    assert doc["status"] == "Published", doc  # type: ignore[index]


def test_hallmark_approve_signs_locally_and_resumes_the_release(server: tuple[str, dict[str, str]],
                                                                 tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    base, env = server

    def token(role: str, sub: str) -> str:
        out = subprocess.run([*HALLMARK, "local", "token", "--role", role, "--sub", sub], env=env,
                             capture_output=True, text=True, check=True).stdout
        return out.split()[-1]

    admin = token("superadmin", "root")
    for i in range(1, 4):
        key = ec.generate_private_key(ec.SECP256R1())  # generated now; written only to this test's tmp dir
        (tmp_path / f"a{i}.pem").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        status, _ = _request(base + "/approvers", "POST", admin, {"approverId": f"cli-approver-{i}", "publicKeyPem": pem})
        assert status == 201
    submitter = token("submitter", "sam")
    body = samples.clean_package("cli-high")
    status, created = _request(base + "/packages", "POST", submitter,
                               samples.submission("cli-high", "3.0.0", body, impact="HIGH"))
    assert status == 201
    pkg = tmp_path / "cli-high-3.0.0.tar.gz"
    pkg.write_bytes(body)
    checksum = created["uploadHeaders"]["x-amz-checksum-sha256"]  # type: ignore[index]
    put = subprocess.run(["curl", "-sf", "-X", "PUT", "-H", f"x-amz-checksum-sha256: {checksum}",
                          "--upload-file", str(pkg), created["uploadUrl"]],  # type: ignore[index]
                         capture_output=True, timeout=60)
    assert put.returncode == 0
    pid = created["packageId"]  # type: ignore[index]
    deadline = time.monotonic() + 60
    while (doc := _request(f"{base}/packages/{pid}", token=submitter)[1])["status"] != "AwaitingApproval":  # type: ignore[index]
        assert time.monotonic() < deadline, doc
        time.sleep(0.3)
    for i in range(1, 4):
        run = subprocess.run([*HALLMARK, "approve", "--key", str(tmp_path / f"a{i}.pem"), "--upgrade",
                              doc["upgradeId"], "--api", base, "--token", token("approver", f"cli-approver-{i}")],  # type: ignore[index]
                             env=env, capture_output=True, text=True)
        assert run.returncode == 0, run.stdout + run.stderr
    while (doc := _request(f"{base}/packages/{pid}", token=submitter)[1])["status"] != "Published":  # type: ignore[index]
        assert time.monotonic() < deadline + 60, doc
        time.sleep(0.3)
