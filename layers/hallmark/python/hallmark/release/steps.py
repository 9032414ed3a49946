"""The release flow's steps that touch package bytes: intake, validation input, signing, commit.

The trust rule they keep: **what is signed is what was checked**. Intake hashes the uploaded
bytes, refuses anything but the declared sha256, and pins them to the write-once,
content-addressed key ``sha256/<digest>`` (at the version S3 gave it). Every validator, the
signer, RepoWriter and the publisher read only that pinned object and check its digest again;
the signer refuses to call ``kms:Sign`` unless the statement's subject, the declaration, the
pinned object and every validator's input digest are one and the same. A later write to the
upload key changes nothing and is audited (``PackageUploadIgnored``).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from urllib.parse import unquote, unquote_plus

from hallmark._domain import EventDraft, Principal, emit_by_flow
from hallmark.canonical import canonical_bytes
from hallmark.dsse import manifest_signature_id, sign_envelope
from hallmark.errors import DomainError, NotFound
from hallmark.ports import AuditEmitter, EventPublisher, Signer
from hallmark.release.current import ManifestRepository
from hallmark.release.impact_policy import ImpactPolicyStore, PolicyGovernance
from hallmark.release.names import NameRegistry
from hallmark.release.ports import ArtifactMissing, ArtifactStore, ArtifactTooLarge, PinnedRef
from hallmark.release.service import ReleaseService, UploadAlreadyClaimed
from hallmark.signing import public_key_fingerprint

PIN_PREFIX = "sha256/"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
UPLOAD_TTL_S = 300
"""A presigned upload URL lives five minutes: long enough for one PUT, too short to keep around."""
GET_URL_TTL_S = 900
"""The sealed smoke runner's presigned GET of the pinned object (it has no AWS permissions)."""
REQUIRED_VALIDATORS = ("archive_safety", "attribution", "compliance", "security", "smoke", "static")


class IntegrityError(DomainError):
    """Bytes, digests or results do not line up: the step stops and nothing is signed or published."""

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__("integrity", message, 409, details)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pin_key(digest: str) -> str:
    return f"{PIN_PREFIX}{digest}"


def upload_key_matches(event_key: str, expected: str) -> bool:
    """S3 event shapes disagree on key encoding: classic notifications form-encode it (a space is
    ``+``, a ``+`` is ``%2B``); EventBridge "Object Created" events carry it as stored. The key we
    expect is known, so accept the event if any one reading of it names exactly that key."""
    return expected in {event_key, unquote(event_key), unquote_plus(event_key)}


def package_id_of(event_key: str) -> str:
    parts = unquote(event_key).split("/")
    if len(parts) < 3 or parts[0] != "uploads" or not parts[1]:
        raise DomainError("unexpected_object", f"object {event_key!r} is not a package upload", 400)
    return parts[1]


def failure_reason(failure: dict[str, Any]) -> str:
    """A readable reason from Step Functions' ``{"Error", "Cause"}`` (a Lambda's Cause is JSON)."""
    error = str(failure.get("Error") or "Error")
    cause = failure.get("Cause") or ""
    try:
        parsed = json.loads(cause) if isinstance(cause, str) and cause.startswith("{") else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        cause = parsed.get("errorMessage") or cause
        error = str(parsed.get("errorType") or error)
    return f"{error}: {str(cause)[:500]}" if cause else error


def load_pinned(artifacts: ArtifactStore, pinned: PinnedRef) -> bytes:
    """The pinned bytes, after checking they still hash to the pinned digest."""
    try:
        obj = artifacts.read(pinned.key, pinned.version_id, max_bytes=pinned.size)
    except ArtifactTooLarge as exc:
        raise IntegrityError(f"the pinned artifact {pinned.key} is larger than its {pinned.size} bytes") from exc
    except ArtifactMissing as exc:
        raise IntegrityError(f"the pinned artifact {pinned.key} is missing") from exc
    digest = sha256_of(obj.data)
    if digest != pinned.sha256 or len(obj.data) != pinned.size:
        raise IntegrityError("the pinned artifact does not hash to its pinned digest",
                             {"expected": pinned.sha256, "actual": digest})
    return obj.data


class ReleaseSteps:
    def __init__(self, service: ReleaseService, artifacts: ArtifactStore, max_bytes: int) -> None:
        self.service = service
        self.artifacts = artifacts
        self.max_bytes = max_bytes

    # ------------------------------------------------------------------ submit
    def upload_url(self, record: dict[str, Any]) -> tuple[str, dict[str, str]]:
        """The presigned PUT for a submitted package: its key, exact size and checksum only."""
        meta = record["meta"]
        return self.artifacts.presign_put(record["objectKey"], int(meta["size"]), meta["sha256"], UPLOAD_TTL_S)

    def check_size(self, size: int) -> None:
        if size > self.max_bytes:
            raise DomainError("too_large", f"a package may be at most {self.max_bytes} bytes, not {size}", 413,
                              {"size": size, "max": self.max_bytes})

    # ------------------------------------------------------------------ intake
    def intake(self, event_key: str, version_id: str | None, execution_arn: str) -> dict[str, Any]:
        """One S3 "Object Created" event: accept (pin), reject (not the declared bytes) or ignore."""
        package_id = package_id_of(event_key)
        try:
            doc = self.service.get(package_id)
        except NotFound:
            return {"outcome": "ignored", "packageId": package_id, "reason": "no such package"}
        discriminator = version_id or execution_arn
        seen = {"key": doc["objectKey"], "uploadVersionId": version_id, "executionArn": execution_arn}
        if not upload_key_matches(event_key, doc["objectKey"]):
            reason = f"object {event_key!r} is not this package's upload key"
            self.service.ignore_upload(package_id, {**seen, "key": event_key, "reason": reason}, discriminator)
            return {"outcome": "ignored", "packageId": package_id, "reason": reason}
        if doc.get("executionArn") == execution_arn and doc.get("pinned"):
            return self._accepted(doc)  # this step, retried
        if doc["status"] != "Submitted" or doc.get("executionArn"):
            return self._ignore(doc, seen, discriminator)
        meta = doc["meta"]
        declared_size = int(meta.get("size") or self.max_bytes)
        try:
            obj = self.artifacts.read(doc["objectKey"], version_id, max_bytes=min(declared_size, self.max_bytes))
        except ArtifactTooLarge:
            return self._refuse(doc, f"the upload is larger than the declared {declared_size} bytes", execution_arn,
                                seen, discriminator)
        except ArtifactMissing:
            reason = "the uploaded object (that version) no longer exists"
            self.service.ignore_upload(package_id, {**seen, "reason": reason}, discriminator)
            return {"outcome": "ignored", "packageId": package_id, "reason": reason}
        digest = sha256_of(obj.data)
        if digest != meta["sha256"]:
            return self._refuse(doc, f"the uploaded bytes have sha256 {digest}, not the declared {meta['sha256']}",
                                execution_arn, seen, discriminator)
        if meta.get("size") is not None and len(obj.data) != int(meta["size"]):
            return self._refuse(doc, f"the upload is {len(obj.data)} bytes, not the declared {meta['size']}",
                                execution_arn, seen, discriminator)
        key = pin_key(digest)
        pinned_version = self.artifacts.put_once(key, obj.data)
        pinned = PinnedRef(self.artifacts.bucket, key, pinned_version, digest, len(obj.data))
        load_pinned(self.artifacts, pinned)  # what was written is what was checked
        try:
            doc = self.service.pin_upload(package_id, pinned.as_dict(), obj.version_id, execution_arn)
        except UploadAlreadyClaimed:
            return self._ignore(self.service.get(package_id), seen, discriminator)
        return self._accepted(doc)

    def _accepted(self, doc: dict[str, Any]) -> dict[str, Any]:
        pinned = PinnedRef.from_dict(doc["pinned"])
        return {"outcome": "accepted", "packageId": doc["packageId"], "submittedBy": doc["submittedBy"],
                "meta": {**doc["meta"], "filename": doc["filename"]},
                "pinned": {**pinned.as_dict(),
                           "getUrl": self.artifacts.presign_get(pinned.key, pinned.version_id, GET_URL_TTL_S)}}

    def _ignore(self, doc: dict[str, Any], seen: dict[str, Any], discriminator: str) -> dict[str, Any]:
        reason = f"package is {doc['status']}: its upload was already taken; later writes change nothing"
        self.service.ignore_upload(doc["packageId"], {**seen, "status": doc["status"], "reason": reason},
                                   discriminator)
        return {"outcome": "ignored", "packageId": doc["packageId"], "reason": reason}

    def _refuse(self, doc: dict[str, Any], reason: str, execution_arn: str, seen: dict[str, Any],
                discriminator: str) -> dict[str, Any]:
        try:
            self.service.refuse_upload(doc["packageId"], reason, execution_arn)
        except UploadAlreadyClaimed:
            return self._ignore(self.service.get(doc["packageId"]), seen, discriminator)
        return {"outcome": "rejected", "packageId": doc["packageId"], "reasons": [f"intake: {reason}"]}

    def record_failure(self, event_key: str, failure: dict[str, Any], execution_arn: str) -> dict[str, Any]:
        """The state machine caught a step's final failure: end the package Failed with why."""
        package_id = package_id_of(event_key)
        reason = failure_reason(failure)
        try:
            doc = self.service.fail(package_id, reason, execution_arn)
        except NotFound:
            doc = None
        if doc is None:
            return {"packageId": package_id, "status": None, "reasons": [reason], "recorded": False}
        return {"packageId": package_id, "status": doc["status"], "reasons": doc["reasons"], "recorded": True}

    # ------------------------------------------------------------------ validation
    def pinned_of(self, package_id: str) -> PinnedRef:
        return _pinned_of(self.service.get(package_id))

    def check_results(self, package_id: str, results: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Every required validator reported, each on the pinned bytes; else stop (nothing signed)."""
        pinned = self.pinned_of(package_id)
        results = list(results)
        _check_cover(pinned, results, "validator")
        return results

    # ------------------------------------------------------------------ sign
    def sign_manifest(self, package_id: str, preconditions: list[dict[str, Any]], signer: Signer) -> dict[str, Any]:
        pinned = self.pinned_of(package_id)
        _check_cover(pinned, preconditions, "precondition")
        failed = sorted(p["validator"] for p in preconditions if not p.get("passed"))
        if failed:
            raise IntegrityError(f"refusing to sign: validators {', '.join(failed)} did not pass")
        load_pinned(self.artifacts, pinned)
        artifact_ref = f"s3://{pinned.bucket}/{pinned.key}" + (f"?versionId={pinned.version_id}"
                                                                if pinned.version_id else "")
        statement = self.service.manifest_statement(package_id, preconditions, artifact_ref)
        # which key signs it, as GET /keys lists it (a verifier picks the key by fingerprint)
        statement["predicate"]["signerKeyFingerprint"] = public_key_fingerprint(signer.public_key_pem())
        subjects = statement.get("subject") or []
        if len(subjects) != 1 or subjects[0].get("digest", {}).get("sha256") != pinned.sha256:
            raise IntegrityError("the manifest subject is not the pinned artifact",
                                 {"subject": subjects, "pinned": pinned.sha256})
        payload = canonical_bytes(statement)
        envelope = sign_envelope(payload, PAYLOAD_TYPE, signer)
        signature_id = manifest_signature_id(envelope)
        digest = sha256_of(payload)
        staged = f"manifests/{package_id}.dsse.json"
        self.artifacts.put(staged, json.dumps(envelope).encode(), "application/json")
        self.service.record_manifest(package_id, signature_id, digest, staged)
        return {"signatureId": signature_id, "digest": digest, "stagedBucket": self.artifacts.bucket,
                "stagedKey": staged, "artifactBucket": pinned.bucket, "artifactKey": pinned.key,
                "artifactVersionId": pinned.version_id, "artifactSha256": pinned.sha256}

    # ------------------------------------------------------------------ commit
    def staged_envelope(self, package_id: str, staged_key: str) -> bytes:
        """The staged envelope, checked: its payload is the recorded manifest, over the pinned bytes."""
        doc = self.service.get(package_id)
        pinned = _pinned_of(doc)
        body = self.artifacts.read(staged_key).data
        try:
            envelope = json.loads(body)
            payload = base64.b64decode(envelope["payload"], validate=True)
            statement = json.loads(payload)
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityError("the staged manifest envelope is not a DSSE envelope") from exc
        recorded = (doc.get("manifest") or {}).get("digest")
        if sha256_of(payload) != recorded:
            raise IntegrityError("the staged manifest is not the one that was signed",
                                 {"recorded": recorded, "staged": sha256_of(payload)})
        subjects = statement.get("subject") or []
        if len(subjects) != 1 or subjects[0].get("digest", {}).get("sha256") != pinned.sha256:
            raise IntegrityError("the staged manifest's subject is not the pinned artifact")
        return body

    def commit(self, package_id: str, manifest: dict[str, Any], repository: ManifestRepository,
               bus: EventPublisher) -> dict[str, Any]:
        """RepoWriter: commit the checked staged envelope to the manifest repository, record
        where, move the package name's "current" pointer to it, announce ManifestCommitted."""
        package = self.service.get(package_id)
        body = self.staged_envelope(package_id, manifest["stagedKey"])
        ref = repository.commit(package, body, manifest["signatureId"])
        self.service.record_repository(package_id, ref)
        repository.point(package["meta"]["name"], {"packageId": package_id, "version": package["meta"]["version"],
                                                   **ref, "manifestSignatureId": manifest["signatureId"]})
        bus.publish("ManifestCommitted", {"packageId": package_id, **ref, "manifestSignatureId": manifest["signatureId"]})
        return ref


def _pinned_of(doc: dict[str, Any]) -> PinnedRef:
    """The package's pinned artifact, which must be the declared one."""
    if not doc.get("pinned"):
        raise IntegrityError(f"package {doc['packageId']} has no pinned artifact")
    pinned = PinnedRef.from_dict(doc["pinned"])
    if pinned.sha256 != doc["meta"]["sha256"]:
        raise IntegrityError("the pinned artifact is not the declared one",
                             {"pinned": pinned.sha256, "declared": doc["meta"]["sha256"]})
    return pinned


def _check_cover(pinned: PinnedRef, items: list[dict[str, Any]], what: str) -> None:
    names = sorted(str(i.get("validator")) for i in items)
    if names != sorted(REQUIRED_VALIDATORS):
        raise IntegrityError(f"expected one {what} of each of {', '.join(REQUIRED_VALIDATORS)}, got {names}")
    wrong = sorted(str(i["validator"]) for i in items if i.get("subjectSha256") != pinned.sha256)
    if wrong:
        raise IntegrityError(f"validators {', '.join(wrong)} did not examine the pinned artifact",
                             {"pinned": pinned.sha256})


class ReleasePolicySteps:
    """Who may release what (package names, the impact policy) as the API changes it: each
    change records its own events."""

    def __init__(self, names: NameRegistry, policies: ImpactPolicyStore, governance: PolicyGovernance,
                 audit: AuditEmitter, clock: Callable[[], datetime]) -> None:
        self.names = names
        self.policies = policies
        self.governance = governance
        self.audit = audit
        self.clock = clock

    def _recorded(self, events: list[EventDraft]) -> None:
        emit_by_flow(self.audit, events)

    def assign(self, caller: Principal, name: str, owner: str) -> dict[str, Any]:
        change = self.names.assign(caller, name, owner, self.clock())
        self._recorded(change.events)
        return change.record

    def delegate(self, caller: Principal, name: str, delegate: str, prefix: bool) -> dict[str, Any]:
        change = self.names.delegate(caller, name, delegate, prefix, self.clock())
        self._recorded(change.events)
        return change.record

    def revoke(self, caller: Principal, name: str, delegate: str) -> dict[str, Any]:
        change = self.names.revoke(caller, name, delegate, self.clock())
        self._recorded(change.events)
        return change.record

    def propose(self, caller: Principal, document: dict[str, Any]) -> dict[str, Any]:
        change = self.policies.propose(caller, document, self.governance, self.clock())
        self._recorded(change.events)
        return change.view

    def apply(self, caller: Principal, proposal_id: str) -> dict[str, Any]:
        change = self.policies.apply(caller, proposal_id, self.governance, self.clock())
        self._recorded(change.events)
        return change.view
