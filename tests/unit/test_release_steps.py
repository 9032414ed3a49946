"""The release steps that touch bytes (hallmark.release.steps) against in-memory fakes: intake
pins only the declared bytes, the signer signs only what every validator examined."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from hallmark.release.service import ReleaseService, SubmitRequest
from hallmark.release.steps import REQUIRED_VALIDATORS, IntegrityError, ReleaseSteps, upload_key_matches
from tests.fakes.docstore import InMemoryDocStore
from tests.fakes.release import InMemoryArtifactStore, RecordingAudit
from tests.fakes.signing import LocalSigner

BODY = b"package bytes" * 10
SHA = hashlib.sha256(BODY).hexdigest()


def _setup(body: bytes = BODY, version: str = "1.0.0") -> tuple[ReleaseSteps, InMemoryArtifactStore, RecordingAudit, str]:
    store, audit, artifacts = InMemoryDocStore(), RecordingAudit(), InMemoryArtifactStore()
    svc = ReleaseService(store, audit)
    req = SubmitRequest(name="demo", version=version, type="library", target="pypi:demo", impact="LOW",
                        rationale="r", sha256=hashlib.sha256(body).hexdigest(), size=len(body), license="MIT")
    record = svc.submit(req, "sam", frozenset({"submitter"}))
    return ReleaseSteps(svc, artifacts, 1024 * 1024), artifacts, audit, str(record["packageId"])


def _upload(steps: ReleaseSteps, artifacts: InMemoryArtifactStore, pid: str, data: bytes) -> str:
    return artifacts.write(steps.service.get(pid)["objectKey"], data)


def _preconditions(sha: str = SHA, **override: Any) -> list[dict[str, Any]]:
    out = [{"validator": v, "passed": True, "digest": "0" * 64, "subjectSha256": sha} for v in REQUIRED_VALIDATORS]
    for p in out:
        p.update(override.get(p["validator"], {}))
    return out


def test_intake_pins_the_declared_bytes_write_once() -> None:
    steps, artifacts, audit, pid = _setup()
    version = _upload(steps, artifacts, pid, BODY)
    out = steps.intake(steps.service.get(pid)["objectKey"], version, "exec-1")
    assert out["outcome"] == "accepted"
    assert out["pinned"]["key"] == f"sha256/{SHA}" and out["pinned"]["sha256"] == SHA
    assert artifacts.read(f"sha256/{SHA}", out["pinned"]["versionId"]).data == BODY
    assert steps.service.get(pid)["status"] == "Validating"
    assert audit.types(pid)[-2:] == ["PackageSubmitted", "PackageUploaded"]
    assert steps.intake(steps.service.get(pid)["objectKey"], version, "exec-1")["outcome"] == "accepted"  # retry
    assert audit.types(pid)[-2:] == ["PackageSubmitted", "PackageUploaded"]


def test_intake_reads_the_version_the_event_names_not_the_latest() -> None:
    steps, artifacts, _, pid = _setup()
    first = _upload(steps, artifacts, pid, BODY)
    _upload(steps, artifacts, pid, b"evil")
    out = steps.intake(steps.service.get(pid)["objectKey"], first, "exec-1")
    assert out["outcome"] == "accepted" and out["pinned"]["sha256"] == SHA


def test_intake_refuses_other_bytes_with_an_audited_reason() -> None:
    steps, artifacts, audit, pid = _setup()
    version = _upload(steps, artifacts, pid, BODY[:-1] + b"X")
    out = steps.intake(steps.service.get(pid)["objectKey"], version, "exec-1")
    assert out["outcome"] == "rejected" and "not the declared" in out["reasons"][0]
    assert steps.service.get(pid)["status"] == "Rejected"
    assert audit.types(pid)[-3:] == ["PackageSubmitted", "ValidationFailed", "PackageRejected"]
    assert f"sha256/{SHA}" not in artifacts.versions


def test_a_second_upload_is_ignored_and_audited() -> None:
    steps, artifacts, audit, pid = _setup()
    key = steps.service.get(pid)["objectKey"]
    steps.intake(key, _upload(steps, artifacts, pid, BODY), "exec-1")
    out = steps.intake(key, _upload(steps, artifacts, pid, b"evil"), "exec-2")
    assert out["outcome"] == "ignored"
    assert steps.service.get(pid)["executionArn"] == "exec-1"
    assert audit.types(pid)[-1] == "PackageUploadIgnored"


@pytest.mark.parametrize("encode", [lambda k: k, lambda k: k.replace("+", "%2B"),
                                    lambda k: k.replace("+", "%2B").replace(" ", "+")])
def test_upload_keys_with_plus_match_every_event_encoding(encode: Any) -> None:
    steps, artifacts, _, pid = _setup(version="1.0.0+b1")
    key = steps.service.get(pid)["objectKey"]
    assert "+" in key and upload_key_matches(encode(key), key)
    assert steps.intake(encode(key), _upload(steps, artifacts, pid, BODY), "exec-1")["outcome"] == "accepted"


def test_a_key_that_only_resembles_the_upload_is_not_taken() -> None:
    assert not upload_key_matches("uploads/p/demo-1.0.0 b1.tar.gz", "uploads/p/demo-1.0.0+b1.tar.gz")


def _accepted() -> tuple[ReleaseSteps, InMemoryArtifactStore, str]:
    steps, artifacts, _, pid = _setup()
    steps.intake(steps.service.get(pid)["objectKey"], _upload(steps, artifacts, pid, BODY), "exec-1")
    return steps, artifacts, pid


def test_sign_signs_the_pinned_digest() -> None:
    steps, artifacts, pid = _accepted()
    out = steps.sign_manifest(pid, _preconditions(), LocalSigner.generate())
    envelope = json.loads(artifacts.read(out["stagedKey"]).data)
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["subject"][0]["digest"]["sha256"] == SHA
    assert out["artifactKey"] == f"sha256/{SHA}" and out["artifactVersionId"]
    assert steps.staged_envelope(pid, out["stagedKey"]) == artifacts.read(out["stagedKey"]).data


@pytest.mark.parametrize("preconditions, why", [
    (_preconditions(smoke={"subjectSha256": "f" * 64}), "did not examine the pinned"),
    ([p for p in _preconditions() if p["validator"] != "security"], "expected one precondition of each"),
    (_preconditions() + _preconditions()[:1], "expected one precondition of each"),
    (_preconditions(compliance={"passed": False}), "did not pass"),
])
def test_sign_refuses_unless_every_validator_passed_on_the_pinned_bytes(preconditions: list[dict[str, Any]],
                                                                         why: str) -> None:
    steps, artifacts, pid = _accepted()
    with pytest.raises(IntegrityError, match=why):
        steps.sign_manifest(pid, preconditions, LocalSigner.generate())
    assert not [k for k in artifacts.versions if k.startswith("manifests/")]


def test_sign_refuses_when_the_pinned_bytes_changed() -> None:
    steps, artifacts, pid = _accepted()
    pinned = steps.service.get(pid)["pinned"]
    history = artifacts.versions[pinned["key"]]
    history[0] = (history[0][0], b"tampered" + BODY[8:])
    with pytest.raises(IntegrityError, match="does not hash"):
        steps.sign_manifest(pid, _preconditions(), LocalSigner.generate())


def test_repo_writer_refuses_a_staged_envelope_that_was_replaced() -> None:
    steps, artifacts, pid = _accepted()
    out = steps.sign_manifest(pid, _preconditions(), LocalSigner.generate())
    other, other_artifacts, other_pid = _accepted()
    forged = other.sign_manifest(other_pid, _preconditions(), LocalSigner.generate())
    artifacts.put(out["stagedKey"], other_artifacts.read(forged["stagedKey"]).data, "application/json")
    with pytest.raises(IntegrityError, match="not the one that was signed"):
        steps.staged_envelope(pid, out["stagedKey"])


def test_a_failed_step_ends_only_the_package_its_execution_claimed() -> None:
    steps, _artifacts, pid = _accepted()
    key = steps.service.get(pid)["objectKey"]
    other = steps.record_failure(key, {"Error": "States.TaskFailed", "Cause": "{}"}, "exec-other")
    assert other["recorded"] is False and steps.service.get(pid)["status"] == "Validating"
    cause = json.dumps({"errorType": "RuntimeError", "errorMessage": "KMS is gone"})
    mine = steps.record_failure(key, {"Error": "RuntimeError", "Cause": cause}, "exec-1")
    assert mine["status"] == "Failed" and mine["reasons"] == ["RuntimeError: KMS is gone"]
