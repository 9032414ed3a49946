"""Drives the local cloud as a user would: HTTP API calls with role tokens, presigned uploads,
waiting for flows. Used by the demo, the integration tests and the benchmarks."""

from __future__ import annotations

import time
from typing import Any

import requests

from hallmark_tools import samples
from hallmark_tools.localcloud.cloud import ApiResponse, LocalCloud

TERMINAL = ("Published", "Rejected", "RolledBack")


class Driver:
    def __init__(self, cloud: LocalCloud) -> None:
        self.cloud = cloud
        self.tokens = {
            "submitter": cloud.token("submitter", "sam-submitter"),
            "auditor": cloud.token("auditor", "ada-auditor"),
            "superadmin": cloud.token("superadmin", "root-admin", ["superadmin", "submitter"]),
            "buyer": cloud.token("buyer", "bob-buyer", ["buyer"]),
        }

    def call(self, method: str, path: str, role: str | None = None, body: Any = None,
             headers: dict[str, str] | None = None, token: str | None = None) -> ApiResponse:
        tok = token or (self.tokens[role] if role else None)
        return self.cloud.api(method, path, token=tok, json_body=body, headers=headers)

    def ok(self, method: str, path: str, role: str | None = None, body: Any = None, **kw: Any) -> Any:
        resp = self.call(method, path, role, body, **kw)
        if resp.status >= 300:
            raise AssertionError(f"{method} {path} -> {resp.status}: {resp.body[:500]!r}")
        return resp.json()

    # ------------------------------------------------------------------ release
    def submit(self, body: bytes, *, name: str = "greeter", version: str | None = None, role: str = "submitter",
               upload: bytes | None = None, **kw: Any) -> str:
        """POST /packages, then PUT the bytes to the presigned URL (which starts the execution)."""
        req = samples.submission(name, version or samples.unique_version(), body, **kw)
        created = self.ok("POST", "/packages", role, req)
        resp = requests.put(created["uploadUrl"], data=upload if upload is not None else body,
                            headers=created.get("uploadHeaders") if upload is None else None, timeout=30)
        if resp.status_code >= 300:
            raise AssertionError(f"upload failed: {resp.status_code} {resp.text[:200]}")
        return str(created["packageId"])

    def package(self, package_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.ok("GET", f"/packages/{package_id}", "submitter")
        return result

    def wait_package(self, package_id: str, statuses: tuple[str, ...] = TERMINAL, timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            doc = self.package(package_id)
            if doc["status"] in statuses:
                return doc
            if time.monotonic() > deadline:
                raise TimeoutError(f"package {package_id} is still {doc['status']}")
            time.sleep(0.1)

    def execution(self, package_id: str, timeout: float = 120.0) -> dict[str, Any]:
        arn = self.wait_for_execution_arn(package_id, timeout)
        return self.cloud.wait_execution(arn, timeout)

    def wait_for_execution_arn(self, package_id: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            arn = self.package(package_id).get("executionArn")
            if arn:
                return str(arn)
            time.sleep(0.05)
        raise TimeoutError(f"no execution started for {package_id}")


class Approvers:
    """Five approvers whose keys are generated here, at run time; only public keys are registered."""

    def __init__(self, driver: Driver, count: int = 5, prefix: str = "approver") -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        self.driver = driver
        self.keys = {f"{prefix}-{i + 1}": ec.generate_private_key(ec.SECP256R1()) for i in range(count)}
        for approver_id, key in self.keys.items():
            pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo).decode()
            resp = driver.call("POST", "/approvers", "superadmin", {"approverId": approver_id, "publicKeyPem": pem})
            if resp.status not in (201, 409):
                raise AssertionError(f"registering {approver_id}: {resp.status} {resp.body!r}")

    def token(self, approver_id: str) -> str:
        return self.driver.cloud.token("approver", approver_id)

    def form(self, approver_id: str, upgrade_id: str, digest: str, decision: str = "approve",
             expires_in_s: int = 600, nonce: str | None = None, key_of: str | None = None) -> dict[str, Any]:
        from datetime import UTC, datetime, timedelta

        from hallmark.governance.messages import sign_approval

        return sign_approval(self.keys[key_of or approver_id], approver_id=approver_id, subject_id=upgrade_id,
                             digest=digest, decision=decision,  # type: ignore[arg-type]
                             expires_at=datetime.now(UTC) + timedelta(seconds=expires_in_s), nonce=nonce)

    def submit(self, approver_id: str, upgrade_id: str, form: dict[str, Any],
               collection: str = "approvals") -> ApiResponse:
        return self.driver.call("POST", f"/upgrades/{upgrade_id}/{collection}", body=form,
                                token=self.token(approver_id))
