"""``EvidenceSource`` (``hallmark.deploy.ports``): what deployment admission verifies, read as
stored (the package record, its release bundle, the public keys, the artifact's ceremony record
and the bytes under the package's ``sha256/<digest>`` key as they are now)."""

from __future__ import annotations

from typing import Any

from hallmark.deploy.ports import CodeRef, ReleaseEvidence
from hallmark.errors import NotFound


class StoredEvidence:
    def __init__(self, docs: Any, artifacts: Any, ceremonies: Any, signers: dict[str, Any],
                 bundle_of: Any, max_bytes: int) -> None:
        self.docs, self.artifacts, self.ceremonies = docs, artifacts, ceremonies
        self.signers, self.bundle_of, self.max_bytes = signers, bundle_of, max_bytes

    def package_id(self, name: str, version: str) -> str | None:
        record = self.docs.get("name", name) or {}
        release = (record.get("releases") or {}).get(version)
        return str(release["packageId"]) if release else None

    def evidence(self, package_id: str) -> ReleaseEvidence:
        package = self.docs.get("package", package_id)
        if package is None:
            raise NotFound("package", package_id)
        pinned = package.get("pinned")
        if not pinned:
            raise NotFound("pinned bytes of package", package_id)
        stored = self.artifacts.read(pinned["key"], None, max_bytes=self.max_bytes)
        held = self.ceremonies.artifact(package_id)
        attestation = self.ceremonies.provenance(held.signature_id) if held else None
        return ReleaseEvidence(
            package=package, bundle=self.bundle_of(package),
            keys={p: s.public_key_pem() for p, s in self.signers.items()},
            provenance=held, attestation=attestation,
            code=CodeRef(self.artifacts.bucket, pinned["key"], stored.version_id), artifact=stored.data)
