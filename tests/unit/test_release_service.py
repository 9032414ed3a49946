"""``ReleaseService`` against the fakes: the package lifecycle, its audit events, idempotent retries."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest

from hallmark.errors import Conflict, DomainError, Forbidden, NotFound
from hallmark.release.service import ReleaseService, SubmitRequest, UploadAlreadyClaimed
from tests.fakes.docstore import InMemoryDocStore
from tests.fakes.release import RecordingAudit

NOW = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
BODY = b"package bytes"
EXEC = "arn:aws:states:us-east-1:000000000000:execution:release:one"


def request(**over: Any) -> SubmitRequest:
    fields: dict[str, Any] = {
        "name": "acme", "version": "1.0.0", "type": "library", "target": "prod", "impact": "LOW",
        "rationale": "first", "sha256": hashlib.sha256(BODY).hexdigest(), "size": len(BODY), "license": "MIT",
    }
    return SubmitRequest(**{**fields, **over})


class Approvers:
    """The ``ApprovalCapacity`` port: three approvals from HIGH up, ``registered`` approvers."""

    def __init__(self, registered: int) -> None:
        self.registered = registered

    def threshold_for(self, impact: str) -> int:
        return 3 if impact in ("HIGH", "CRITICAL") else 0

    def active_approvers(self) -> int:
        return self.registered


def service(registered: int = 5) -> ReleaseService:
    return ReleaseService(InMemoryDocStore(), RecordingAudit(), lambda: NOW, governance=Approvers(registered))


@pytest.fixture()
def svc() -> ReleaseService:
    return service()


def audit_of(svc: ReleaseService) -> RecordingAudit:
    assert isinstance(svc.audit, RecordingAudit)
    return svc.audit


def submitted(svc: ReleaseService, **over: Any) -> str:
    return str(svc.submit(request(**over), "alice", frozenset({"submitter"}))["packageId"])


def pinned(svc: ReleaseService, pid: str, execution: str = EXEC) -> dict[str, Any]:
    return svc.pin_upload(pid, {"size": len(BODY), "sha256": hashlib.sha256(BODY).hexdigest()}, "v1", execution)


def result(validator: str, passed: bool = True) -> dict[str, Any]:
    return {"validator": validator, "passed": passed, "digest": "d" * 64, "reasons": [] if passed else ["bad"],
            "stats": {}}


def test_submit_records_the_package_and_audits_the_claim_and_the_submission(svc: ReleaseService) -> None:
    doc = svc.submit(request(), "alice", frozenset({"submitter"}))
    assert doc["status"] == "Submitted" and doc["submittedBy"] == "alice"
    assert doc["objectKey"] == f"uploads/{doc['packageId']}/acme-1.0.0.tar.gz"
    assert svc.get(doc["packageId"])["meta"]["version"] == "1.0.0"
    assert audit_of(svc).types(doc["packageId"]) == ["NameClaimed", "PackageSubmitted"]
    assert {e["chain"] for e in audit_of(svc).events.values()} == {"release"}


def test_an_emergency_needs_a_superadmin_and_high_impact(svc: ReleaseService) -> None:
    with pytest.raises(Forbidden):
        svc.submit(request(emergency=True, impact="HIGH"), "alice", frozenset({"submitter"}))
    with pytest.raises(DomainError) as err:
        svc.submit(request(emergency=True), "root", frozenset({"superadmin"}))
    assert err.value.code == "invalid_request"
    assert svc.store.query("package", 10) == [] and audit_of(svc).events == {}


def test_a_high_impact_release_without_enough_approvers_is_refused() -> None:
    svc = service(registered=2)
    with pytest.raises(Conflict) as err:
        svc.submit(request(impact="HIGH"), "alice", frozenset({"submitter"}))
    assert err.value.code == "approvers_insufficient"
    assert svc.store.query("package", 10) == []


def test_pinning_claims_the_package_once(svc: ReleaseService) -> None:
    pid = submitted(svc)
    assert pinned(svc, pid)["status"] == "Validating"
    assert pinned(svc, pid)["executionArn"] == EXEC  # the same execution retried: a no-op
    with pytest.raises(UploadAlreadyClaimed):
        pinned(svc, pid, EXEC.replace("one", "two"))
    assert audit_of(svc).types(pid).count("PackageUploaded") == 1


def test_a_refused_upload_ends_rejected_with_the_intake_reason(svc: ReleaseService) -> None:
    pid = submitted(svc)
    doc = svc.refuse_upload(pid, "sha256 differs", EXEC)
    assert doc["status"] == "Rejected" and doc["reasons"] == ["intake: sha256 differs"]
    svc.refuse_upload(pid, "sha256 differs", EXEC)  # retried
    assert audit_of(svc).types(pid)[-2:] == ["ValidationFailed", "PackageRejected"]
    assert audit_of(svc).types(pid).count("PackageRejected") == 1


def test_validation_outcome_lists_each_failed_reason(svc: ReleaseService) -> None:
    pid = submitted(svc)
    pinned(svc, pid)
    outcome = svc.record_validation(pid, [result("static"), result("security", passed=False)])
    assert outcome["passed"] is False and outcome["reasons"] == ["security: bad"]
    assert [p["validator"] for p in outcome["preconditions"]] == ["security", "static"]
    assert set(svc.get(pid)["results"]) == {"security", "static"}
    assert {"ValidationPassed", "ValidationFailed"} <= set(audit_of(svc).types(pid))
    rejected = svc.reject(pid, outcome["reasons"])
    assert rejected["status"] == "Rejected" and rejected["reasons"] == ["security: bad"]


def test_transitions_refuse_a_wrong_status_and_repeat_idempotently(svc: ReleaseService) -> None:
    pid = submitted(svc)
    with pytest.raises(Conflict):
        svc.reject(pid, ["too early"])  # Submitted cannot become Rejected by validation
    pinned(svc, pid)
    svc.reject(pid, ["x"])
    history = list(svc.get(pid)["history"])
    svc.reject(pid, ["x"])
    assert svc.get(pid)["history"] == history
    assert audit_of(svc).types(pid).count("PackageRejected") == 1


def test_an_unknown_package_is_not_found(svc: ReleaseService) -> None:
    with pytest.raises(NotFound):
        svc.get("missing")
