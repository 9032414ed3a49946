"""Fakes of the release ports: a versioned in-memory bucket and an audit recorder."""

from __future__ import annotations

import uuid
from typing import Any

from hallmark.release.ports import ArtifactMissing, ArtifactTooLarge, StoredObject


class InMemoryArtifactStore:
    """A versioned bucket: every put is a new version; ``put_once`` honours If-None-Match."""

    def __init__(self, bucket: str = "packages") -> None:
        self._bucket = bucket
        self.versions: dict[str, list[tuple[str, bytes]]] = {}
        self.presigned: list[tuple[str, Any]] = []

    @property
    def bucket(self) -> str:
        return self._bucket

    def write(self, key: str, data: bytes) -> str:
        version = uuid.uuid4().hex
        self.versions.setdefault(key, []).append((version, data))
        return version

    def read(self, key: str, version_id: str | None = None, max_bytes: int | None = None) -> StoredObject:
        history = self.versions.get(key)
        if not history:
            raise ArtifactMissing(key)
        if version_id is None:
            version, data = history[-1]
        else:
            found = [d for v, d in history if v == version_id]
            if not found:
                raise ArtifactMissing(f"{key}@{version_id}")
            version, data = version_id, found[0]
        if max_bytes is not None and len(data) > max_bytes:
            raise ArtifactTooLarge(key)
        return StoredObject(data, version)

    def put_once(self, key: str, data: bytes) -> str | None:
        if key in self.versions:
            return self.versions[key][-1][0]
        return self.write(key, data)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.write(key, data)

    def presign_get(self, key: str, version_id: str | None, ttl_seconds: int) -> str:
        self.presigned.append(("GET", (key, version_id, ttl_seconds)))
        return f"https://example.invalid/{key}?versionId={version_id}&ttl={ttl_seconds}"

    def presign_put(self, key: str, size: int, sha256_hex: str, ttl_seconds: int) -> tuple[str, dict[str, str]]:
        self.presigned.append(("PUT", (key, size, sha256_hex, ttl_seconds)))
        return f"https://example.invalid/{key}", {"x-amz-checksum-sha256": sha256_hex}


class RecordingAudit:
    """An ``AuditEmitter`` that keeps each event once per id, as the real log does."""

    def __init__(self) -> None:
        self.events: dict[str, dict[str, Any]] = {}

    def emit(self, *, chain: str, type: str, actor: str, subject: str, data: dict[str, Any],
             event_id: str | None = None) -> str:
        ident = event_id or uuid.uuid4().hex
        self.events.setdefault(ident, {"chain": chain, "type": type, "actor": actor, "subject": subject,
                                       "data": data})
        return ident

    def types(self, subject: str | None = None) -> list[str]:
        return [e["type"] for e in self.events.values() if subject is None or e["subject"] == subject]
