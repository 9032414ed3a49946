"""The buyer's download on the local cloud with a token only (issue 19 item 5): `hallmark fetch`
in another process with every AWS_* variable removed gets the plaintext from
``GET /orders/{id}/content`` (decrypted inside the orders function with KMS), the manifest and
the public keys from the API, and verifies them; refusals answer clear JSON errors and change
nothing (no audit event, no stored object or order changed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hallmark_tools import samples
from hallmark_tools.driver import Driver
from hallmark_tools.fetch import quiet_esdk
from hallmark_tools.localcloud.cloud import LocalCloud

HALLMARK = [sys.executable, "-m", "hallmark_tools.cli"]
PACKAGE = samples.clean_package()
RUN = uuid.uuid4().hex[:6]


@pytest.fixture(scope="module", autouse=True)
def _quiet() -> Iterator[None]:
    quiet_esdk()
    yield


@pytest.fixture(scope="module")
def listing(driver: Driver) -> dict[str, Any]:
    pid = driver.submit(PACKAGE, name="download-x", version="1.0.0")
    doc = driver.wait_package(pid)
    assert doc["status"] == "Published", doc
    result: dict[str, Any] = driver.ok("GET", f"/listings/{doc['listingId']}", "buyer")
    return result


def _buyer(cloud: LocalCloud, name: str) -> tuple[str, str]:
    sub = f"{name}-{RUN}"
    return cloud.token("buyer", sub, ["buyer"]), sub


def _paid(cloud: LocalCloud, driver: Driver, listing: dict[str, Any], name: str) -> tuple[str, str]:
    token, sub = _buyer(cloud, name)
    assert driver.call("POST", "/wallets/deposit", "superadmin",
                       {"party": sub, "amountMinor": listing["price"], "depositId": f"dl-{sub}"}).status == 201
    resp = cloud.api("POST", f"/listings/{listing['listingId']}/checkout", token=token,
                     headers={"Idempotency-Key": f"dl-{sub}"})
    assert resp.status == 201, resp.body
    order_id = str(resp.json()["orderId"])
    cloud.wait_idle()
    assert driver.ok("GET", f"/orders/{order_id}", token=token)["status"] == "Delivered"
    return token, order_id


def _fetch(api: str, token: str, order_id: str, out: Path) -> subprocess.CompletedProcess[str]:
    """`hallmark fetch` as a buyer without AWS credentials: no AWS_* variable at all."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"HALLMARK_API": api, "HALLMARK_TOKEN": token})
    proc = subprocess.run([*HALLMARK, "fetch", order_id, "--json", "--out", str(out), "--wait", "10"],
                          env=env, capture_output=True, text=True, timeout=180)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def _downloads(driver: Driver, order_id: str) -> list[dict[str, Any]]:
    events = driver.ok("GET", "/audit/market/events", "auditor")["events"]
    return [e for e in events if e["subject"] == order_id and e["type"] == "DeliveryDownloaded"]


def _state_item(cloud: LocalCloud, order_id: str) -> dict[str, Any]:
    item: dict[str, Any] = cloud.client("dynamodb").get_item(
        TableName=cloud.resources["TABLE_STATE"], Key={"pk": {"S": f"order#{order_id}"}, "sk": {"S": "DOC"}},
        ConsistentRead=True)["Item"]
    return item


def _refused(cloud: LocalCloud, token: str, order_id: str, status: int, code: str) -> dict[str, Any]:
    resp = cloud.api("GET", f"/orders/{order_id}/content", token=token)
    assert resp.status == status, resp.body
    body: dict[str, Any] = resp.json()
    assert body["error"]["code"] == code and body["error"]["message"], body
    assert "contentBase64" not in body
    return body


def test_a_buyer_without_aws_credentials_fetches_and_verifies(shared_cloud: LocalCloud, driver: Driver,
                                                              listing: dict[str, Any], http_api: str,
                                                              tmp_path: Path) -> None:
    token, order_id = _paid(shared_cloud, driver, listing, "nocreds")
    proc = _fetch(http_api, token, order_id, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["ok"] is True and all(report["checks"].values()), report
    for check in ("ledger_proof_signature", "delivery_proof_signature", "ciphertext_digest", "artifact_sha256",
                  "manifest_signature", "manifest_subject"):
        assert report["checks"][check] is True, check
    assert Path(report["path"]).read_bytes() == PACKAGE
    shared_cloud.wait_idle()
    [event] = _downloads(driver, order_id)
    # no personal data beyond what other market events carry: the actor (as the audit log records
    # actors), digests and the time
    assert set(event["data"]) == {"deliveryProofId", "ciphertextDigest", "contentSha256", "downloadedAt"}
    assert event["data"]["contentSha256"] == listing["artifactSha256"]


def test_refusals_are_clear_and_change_nothing(shared_cloud: LocalCloud, driver: Driver,
                                               listing: dict[str, Any], http_api: str, tmp_path: Path) -> None:
    token, order_id = _paid(shared_cloud, driver, listing, "owner")
    s3, bucket = shared_cloud.client("s3"), shared_cloud.resources["BUCKET_DELIVERIES"]
    view = driver.ok("GET", f"/orders/{order_id}", token=token)
    key = view["delivery"]["key"]
    cipher = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    before = _state_item(shared_cloud, order_id)

    # another buyer: the order does not exist for them (404), also through the CLI
    eve, _ = _buyer(shared_cloud, "eve")
    _refused(shared_cloud, eve, order_id, 404, "not_found")
    other = _fetch(http_api, eve, order_id, tmp_path / "eve")
    assert other.returncode == 2 and json.loads(other.stdout.strip().splitlines()[-1])["check"] == "api"
    assert not (tmp_path / "eve").exists() or not any((tmp_path / "eve").iterdir())
    # an auditor reads the order but cannot download its content
    _refused(shared_cloud, driver.tokens["auditor"], order_id, 404, "not_found")

    # an unpaid order (the wallet could not pay: 402) has nothing to download
    broke, _ = _buyer(shared_cloud, "broke")
    unpaid = shared_cloud.api("POST", f"/listings/{listing['listingId']}/checkout", token=broke,
                              headers={"Idempotency-Key": f"broke-{RUN}"})
    assert unpaid.status == 402, unpaid.body
    _refused(shared_cloud, broke, unpaid.json()["error"]["details"]["orderId"], 409, "not_paid")

    # a stored ciphertext that is not the one the signed delivery proof names
    tampered = bytearray(cipher)
    tampered[len(tampered) // 2] ^= 0x01
    s3.put_object(Bucket=bucket, Key=key, Body=bytes(tampered))
    try:
        _refused(shared_cloud, token, order_id, 409, "ciphertext_mismatch")
    finally:
        s3.put_object(Bucket=bucket, Key=key, Body=cipher)

    # an order whose encryption context differs from the one the ciphertext was made for
    ddb, table = shared_cloud.client("dynamodb"), shared_cloud.resources["TABLE_STATE"]
    doc = json.loads(before["doc"]["S"])
    forged = {**before, "doc": {"S": json.dumps({**doc, "manifestDigest": "0" * 64}, sort_keys=True)}}
    ddb.put_item(TableName=table, Item=forged)
    try:
        body = _refused(shared_cloud, token, order_id, 403, "context_mismatch")
        assert body["error"]["details"]["keys"] == ["manifestDigest"]
    finally:
        ddb.put_item(TableName=table, Item=before)

    # nothing changed: no download audited, the order and the ciphertext as they were
    shared_cloud.wait_idle()
    assert _downloads(driver, order_id) == []
    assert _state_item(shared_cloud, order_id) == before
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == cipher
    # and the buyer still gets it
    ok = shared_cloud.api("GET", f"/orders/{order_id}/content", token=token)
    assert ok.status == 200 and ok.json()["contentSha256"] == listing["artifactSha256"], ok.body
