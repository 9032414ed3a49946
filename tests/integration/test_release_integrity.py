"""Release integrity (issue 16, part 1): what is signed is exactly what was vetted.

A hostile submitter holds the presigned upload URL. These tests swap the bytes under it at every
point of the flow — during each validator, between validation and signing, after publication —
and even overwrite the pinned object itself. The local cloud's S3 (moto) does not enforce the
signed ``x-amz-checksum-sha256`` the way S3 does, so every write here lands: the flow itself must
ignore it. Each time: the signed manifest's subject is the vetted bytes, buyers get the vetted
bytes, and the write is audited ``PackageUploadIgnored``.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from hallmark.release import validators as validator_registry
from hallmark.release.steps import ReleaseSteps
from hallmark.release.validators import smoke as smoke_module
from hallmark_tools import samples
from hallmark_tools.driver import Driver
from hallmark_tools.localcloud.cloud import LocalCloud

VALIDATORS = ("static", "archive_safety", "security", "compliance", "attribution", "smoke")


def _events(subject: str) -> list[dict[str, Any]]:
    from hallmark.adapters.runtime import audit_log

    lines, _ = audit_log().export("release")
    return [e for e in map(json.loads, lines) if e["subject"] == subject]


def _wait_events(cloud: LocalCloud, subject: str, until: str | None = None,
                 timeout: float = 30.0) -> list[dict[str, Any]]:
    """The subject's audit events once the cloud is idle (and, with ``until``, once one of that
    type is there: a later S3 write starts its own execution, which can still be starting)."""
    deadline = time.monotonic() + timeout
    while True:
        cloud.wait_idle()
        events = _events(subject)
        if until is None or any(e["type"] == until for e in events) or time.monotonic() > deadline:
            return events
        time.sleep(0.1)


def _manifest_subject(cloud: LocalCloud, doc: dict[str, Any]) -> str:
    ref = doc["manifest"]["repository"]
    envelope = json.loads(cloud.client("s3").get_object(Bucket=ref["bucket"], Key=ref["key"])["Body"].read())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    return str(statement["subject"][0]["digest"]["sha256"])


def _evil(name: str) -> bytes:
    return samples.variant("secret", name)


class Upload:
    """A submission whose upload URL the test (the attacker) keeps."""

    def __init__(self, driver: Driver, name: str, version: str = "1.0.0") -> None:
        self.body = samples.clean_package(name)
        self.sha256 = samples.submission(name, version, self.body)["sha256"]
        created = driver.ok("POST", "/packages", "submitter", samples.submission(name, version, self.body))
        self.package_id = str(created["packageId"])
        self.url = str(created["uploadUrl"])
        self.headers = dict(created["uploadHeaders"])

    def put(self, data: bytes) -> None:
        resp = requests.put(self.url, data=data, headers=self.headers, timeout=30)
        assert resp.status_code < 300, resp.text[:200]


@pytest.fixture
def swap_in(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """``swap_in["validator"] = (upload, bytes)``: that validator first overwrites the upload."""
    plan: dict[str, Any] = {}
    for name in VALIDATORS:
        original = validator_registry.VALIDATORS[name]

        def wrapped(pkg: Any, config: Any, __name: str = name, __original: Any = original) -> Any:
            if __name in plan:
                upload, data = plan.pop(__name)
                upload.put(data)
            return __original(pkg, config)

        monkeypatch.setitem(validator_registry.VALIDATORS, name, wrapped)
        if name == "smoke":  # the sealed smoke function calls the validator directly
            monkeypatch.setattr(smoke_module, "validate_smoke", wrapped)
    yield plan


def _assert_vetted_published(cloud: LocalCloud, driver: Driver, upload: Upload) -> dict[str, Any]:
    doc = driver.wait_package(upload.package_id)
    assert doc["status"] == "Published", doc
    assert _manifest_subject(cloud, doc) == upload.sha256
    pinned = driver.package(upload.package_id)
    events = _wait_events(cloud, upload.package_id, until="PackageUploadIgnored")
    ignored = [e for e in events if e["type"] == "PackageUploadIgnored"]
    assert ignored, [e["type"] for e in events]
    assert all("already taken" in e["data"]["reason"] for e in ignored)
    signed = next(e for e in events if e["type"] == "PackageUploaded")
    assert signed["data"]["pinned"]["sha256"] == upload.sha256
    assert signed["data"]["pinned"]["key"] == f"sha256/{upload.sha256}"
    return pinned


@pytest.mark.parametrize("validator", VALIDATORS)
def test_a_swap_during_each_validator_is_never_vetted_or_signed(shared_cloud: LocalCloud, driver: Driver,
                                                                 swap_in: dict[str, Any], validator: str) -> None:
    upload = Upload(driver, f"swap-{validator.replace('_', '-')}")
    swap_in[validator] = (upload, _evil("swap"))
    upload.put(upload.body)
    _assert_vetted_published(shared_cloud, driver, upload)
    assert validator not in swap_in  # the swap really happened, mid-validation


def test_a_swap_between_validation_and_signing_is_not_signed(shared_cloud: LocalCloud, driver: Driver,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    upload = Upload(driver, "swap-before-sign")
    original = ReleaseSteps.sign_manifest

    def swap_then_sign(self: ReleaseSteps, package_id: str, *args: Any) -> Any:
        if package_id == upload.package_id:
            upload.put(_evil("swap"))
        return original(self, package_id, *args)

    monkeypatch.setattr(ReleaseSteps, "sign_manifest", swap_then_sign)
    upload.put(upload.body)
    _assert_vetted_published(shared_cloud, driver, upload)


def test_overwriting_the_pinned_object_itself_is_detected_before_signing(
        shared_cloud: LocalCloud, driver: Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    """Someone with write access to the bucket replaces the pinned key (a new S3 version): every
    reader reads the pinned version, so the vetted bytes are still what is signed."""
    upload = Upload(driver, "overwrite-pinned")
    original = ReleaseSteps.sign_manifest
    s3 = shared_cloud.client("s3")

    def overwrite_then_sign(self: ReleaseSteps, package_id: str, *args: Any) -> Any:
        if package_id == upload.package_id:
            s3.put_object(Bucket=self.artifacts.bucket, Key=f"sha256/{upload.sha256}", Body=_evil("pinned"))
        return original(self, package_id, *args)

    monkeypatch.setattr(ReleaseSteps, "sign_manifest", overwrite_then_sign)
    upload.put(upload.body)
    doc = driver.wait_package(upload.package_id)
    assert doc["status"] == "Published", doc
    assert _manifest_subject(shared_cloud, doc) == upload.sha256


def test_wrong_bytes_are_rejected_at_intake_and_never_validated(shared_cloud: LocalCloud, driver: Driver) -> None:
    upload = Upload(driver, "wrong-bytes")
    upload.put(_evil("wrong"))
    doc = driver.wait_package(upload.package_id)
    assert doc["status"] == "Rejected", doc
    assert doc["validators"] == {}  # no validator ever ran on them
    assert any("declared" in r for r in doc["reasons"]), doc["reasons"]
    events = _wait_events(shared_cloud, upload.package_id)
    types = [e["type"] for e in events]
    assert types.count("ValidationFailed") == 1 and "PackageRejected" in types and "ManifestSigned" not in types
    failed = next(e for e in events if e["type"] == "ValidationFailed")
    assert failed["data"]["validator"] == "intake" and "declared" in failed["data"]["reasons"][0]
    # the right bytes afterwards change nothing: the package is over
    upload.put(upload.body)
    assert driver.wait_package(upload.package_id)["status"] == "Rejected"
    assert "PackageUploadIgnored" in [e["type"] for e in _wait_events(shared_cloud, upload.package_id,
                                                                        until="PackageUploadIgnored")]


def test_an_overwrite_after_publication_is_ignored_and_buyers_get_the_vetted_bytes(
        shared_cloud: LocalCloud, driver: Driver, tmp_path: Path) -> None:
    from hallmark.adapters.encryption import EnvelopeEncryptor
    from hallmark_tools.export import export_keys
    from hallmark_tools.fetch import fetch_order, quiet_esdk

    quiet_esdk()
    upload = Upload(driver, "overwrite-after")
    upload.put(upload.body)
    doc = driver.wait_package(upload.package_id)
    assert doc["status"] == "Published", doc
    upload.put(_evil("after"))  # the URL is still inside its five minutes
    events = _wait_events(shared_cloud, upload.package_id, until="PackageUploadIgnored")
    assert [e["type"] for e in events].count("PackageUploadIgnored") == 1
    assert driver.package(upload.package_id)["status"] == "Published"

    token = shared_cloud.token("buyer", "bea-buyer", ["buyer"])
    listing = driver.ok("GET", f"/listings/{doc['listingId']}", "buyer")
    deposit = {"party": "bea-buyer", "amountMinor": listing["price"], "depositId": f"fund-{upload.package_id}"}
    assert driver.call("POST", "/wallets/deposit", "superadmin", deposit).status == 201
    order = driver.call("POST", f"/listings/{doc['listingId']}/checkout", token=token,
                        headers={"Idempotency-Key": f"k-{upload.package_id}"})
    assert order.status == 201, order.body
    keys = {n: p.read_bytes() for n, p in export_keys(tmp_path / "keys", shared_cloud.client("kms")).items()}
    report = fetch_order(str(order.json()["orderId"]), get_json=lambda path: driver.ok("GET", path, token=token),
                         download=lambda url: requests.get(url, timeout=30).content,
                         decryptor_for=EnvelopeEncryptor, proof_key_pem=keys["proof"], out_dir=tmp_path,
                         wait_s=30)
    assert Path(str(report.path)).read_bytes() == upload.body


def test_the_upload_url_is_short_lived_and_signs_length_and_checksum(driver: Driver) -> None:
    body = samples.clean_package("url-shape")
    created = driver.ok("POST", "/packages", "submitter", samples.submission("url-shape", "1.0.0", body))
    query = parse_qs(urlsplit(created["uploadUrl"]).query)
    assert int(query["X-Amz-Expires"][0]) <= 300
    signed = query["X-Amz-SignedHeaders"][0].split(";")
    assert "content-length" in signed and "x-amz-checksum-sha256" in signed
    assert created["uploadHeaders"]["x-amz-checksum-sha256"] == base64.b64encode(
        bytes.fromhex(samples.submission("url-shape", "1.0.0", body)["sha256"])).decode()


def test_a_declared_size_over_the_limit_is_refused_at_submit(driver: Driver) -> None:
    body = samples.clean_package("too-big")
    req = {**samples.submission("too-big", "1.0.0", body), "size": 10 * 1024 ** 3}
    resp = driver.call("POST", "/packages", "submitter", req)
    assert resp.status == 413 and resp.json()["error"]["code"] == "too_large", resp.body


@pytest.mark.parametrize("version", ["1.0.0+b1", "1.1.0-rc.1+build.5"])
def test_a_version_with_build_metadata_is_published(shared_cloud: LocalCloud, driver: Driver, version: str) -> None:
    pid = driver.submit(samples.clean_package("plus"), name="plus", version=version)
    doc = driver.wait_package(pid)
    assert doc["status"] == "Published", doc
    assert "+" in doc["manifest"]["repository"]["key"]


def test_a_step_that_fails_for_good_ends_the_package_failed_with_a_reason(shared_cloud: LocalCloud,
                                                                          driver: Driver,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    name = "fails-for-good"

    def broken(self: ReleaseSteps, package_id: str, *args: Any) -> Any:
        raise RuntimeError("KMS is gone")

    monkeypatch.setattr(ReleaseSteps, "sign_manifest", broken)
    pid = driver.submit(samples.clean_package(name), name=name)
    doc = driver.wait_package(pid, statuses=("Published", "Rejected", "Failed", "RolledBack"))
    assert doc["status"] == "Failed", doc
    assert any("KMS is gone" in r for r in doc["reasons"]), doc["reasons"]
    rejected = [e for e in _wait_events(shared_cloud, pid) if e["type"] == "PackageRejected"]
    assert len(rejected) == 1 and rejected[0]["data"]["status"] == "Failed"
