"""The release pipeline on the local cloud, running the real statemachines/release.asl.json."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from hallmark.dsse import DsseError, verify_envelope
from hallmark.signing import public_key_fingerprint
from hallmark_tools import samples
from hallmark_tools.driver import Driver
from hallmark_tools.export import export_keys
from hallmark_tools.localcloud.cloud import LocalCloud


def _envelope(cloud: LocalCloud, doc: dict[str, Any]) -> dict[str, Any]:
    ref = doc["manifest"]["repository"]
    body = cloud.client("s3").get_object(Bucket=ref["bucket"], Key=ref["key"])["Body"].read()
    return dict(json.loads(body))


def test_clean_package_is_published_with_a_verifying_envelope(shared_cloud: LocalCloud, driver: Driver,
                                                              tmp_path: Any) -> None:
    body = samples.clean_package("clean-one")
    pid = driver.submit(body, name="clean-one", version="1.0.0")
    doc = driver.wait_package(pid)
    assert doc["status"] == "Published", doc
    assert set(doc["validators"]) == {"static", "archive_safety", "security", "compliance", "attribution", "smoke"}
    assert all(v["passed"] for v in doc["validators"].values())
    assert doc["listingId"]
    execution = shared_cloud.wait_execution(doc["executionArn"])
    assert execution["status"] == "SUCCEEDED"

    keys = export_keys(tmp_path, shared_cloud.client("kms"))
    envelope = _envelope(shared_cloud, doc)
    payload = verify_envelope(envelope, keys["manifest"].read_bytes())
    statement = json.loads(payload)
    assert statement["subject"][0]["digest"]["sha256"] == samples.submission("clean-one", "1.0.0", body)["sha256"]
    preconditions = {p["validator"]: p["digest"] for p in statement["predicate"]["preconditions"]}
    assert preconditions == {k: v["digest"] for k, v in doc["validators"].items()}
    assert statement["predicate"]["signerKeyFingerprint"] == public_key_fingerprint(keys["manifest"].read_bytes())
    # tampering with the payload breaks the signature
    forged = dict(envelope, payload=base64.b64encode(payload.replace(b"LOW", b"HIGH")).decode())
    with pytest.raises(DsseError):
        verify_envelope(forged, keys["manifest"].read_bytes())


def test_validation_is_reproducible(driver: Driver) -> None:
    body = samples.clean_package("repro")
    a = driver.wait_package(driver.submit(body, name="repro", version="1.0.0"))
    b = driver.wait_package(driver.submit(body, name="repro", version="1.0.1"))
    assert {k: v["digest"] for k, v in a["validators"].items() if k != "static"} == \
           {k: v["digest"] for k, v in b["validators"].items() if k != "static"}


@pytest.mark.parametrize(("kind", "validator", "needle"), [
    ("zip_slip", "archive_safety", "traversal"),
    ("bomb", "archive_safety", "ratio"),
    ("secret", "security", "secret"),
    ("pii", "compliance", ""),
    ("vulnerable", "security", "requests"),
    ("smoke_fails", "smoke", "exit"),
])
def test_each_validator_rejection_ends_rejected_with_no_listing(shared_cloud: LocalCloud, driver: Driver,
                                                               kind: str, validator: str, needle: str) -> None:
    pid = driver.submit(samples.variant(kind), name=f"bad-{kind.replace('_', '-')}", version="1.0.0")
    doc = driver.wait_package(pid)
    assert doc["status"] == "Rejected"
    assert doc["listingId"] is None and doc["manifest"] is None
    assert not doc["validators"][validator]["passed"]
    assert any(r.startswith(f"{validator}:") and needle in r.lower() for r in doc["reasons"]), doc["reasons"]
    execution = shared_cloud.wait_execution(doc["executionArn"])
    assert execution["status"] == "FAILED" and execution.get("error") == "Rejected"


def test_bad_checksum_and_disallowed_license_are_rejected(driver: Driver) -> None:
    body = samples.clean_package("checks")
    wrong = driver.wait_package(driver.submit(body, name="checks", version="1.0.0", sha256="0" * 64))
    assert wrong["status"] == "Rejected" and any("sha256" in r for r in wrong["reasons"])
    gpl = driver.wait_package(driver.submit(body, name="checks", version="1.0.1", license="GPL-3.0-only"))
    assert gpl["status"] == "Rejected" and any("GPL-3.0-only" in r for r in gpl["reasons"])


@pytest.mark.parametrize(("payload", "status", "code"), [
    ({"name": "x"}, 400, "invalid_request"),
    ({**samples.submission("x", "1", b"x"), "impact": "ENORMOUS"}, 400, "invalid_request"),
    ({**samples.submission("x", "1", b"x"), "filename": "x.rar"}, 400, "invalid_request"),
    ({**samples.submission("x", "1", b"x"), "sha256": "nothex"}, 400, "invalid_request"),
    ({**samples.submission("x", "1", b"x"), "unexpected": 1}, 400, "invalid_request"),
])
def test_malformed_requests_get_json_4xx(driver: Driver, payload: dict[str, Any], status: int, code: str) -> None:
    resp = driver.call("POST", "/packages", "submitter", payload)
    assert resp.status == status
    assert resp.json()["error"]["code"] == code


def test_malformed_json_wrong_role_and_missing_token(shared_cloud: LocalCloud, driver: Driver) -> None:
    resp = shared_cloud.api("POST", "/packages", token=driver.tokens["submitter"], body=b"{nope",
                            headers={"content-type": "application/json"})
    assert resp.status == 400 and resp.json()["error"]["code"] == "malformed_json"
    assert driver.call("POST", "/packages", "auditor", samples.submission("x", "1", b"x")).status == 403
    assert driver.call("POST", "/packages", None, samples.submission("x", "1", b"x")).status == 401
    assert driver.call("GET", "/packages/does-not-exist", "submitter").status == 404


def test_emergency_requires_superadmin(driver: Driver) -> None:
    resp = driver.call("POST", "/packages", "submitter",
                       samples.submission("x", "1", b"x", impact="HIGH", emergency=True))
    assert resp.status == 403 and resp.json()["error"]["code"] == "forbidden"
