"""Ports of the release flow: where package bytes are kept.

``ArtifactStore`` is one bucket seen by the release steps: the upload key a submitter PUTs to, and
the write-once, content-addressed ``sha256/<digest>`` key every later step reads (pinned bytes).
The S3 adapter is ``hallmark.adapters.s3_artifacts.S3ArtifactStore``; tests use
``InMemoryArtifactStore`` from ``tests/fakes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class ArtifactMissing(KeyError):
    """The object (or that version of it) does not exist."""


class ArtifactTooLarge(ValueError):
    """The object is larger than the reader allowed."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    data: bytes
    version_id: str | None


@dataclass(frozen=True, slots=True)
class PinnedRef:
    """The one immutable object every validator, the signer, RepoWriter and the publisher read."""

    bucket: str
    key: str
    version_id: str | None
    sha256: str
    size: int

    def as_dict(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "key": self.key, "versionId": self.version_id,
                "sha256": self.sha256, "size": self.size}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PinnedRef:
        return cls(str(d["bucket"]), str(d["key"]), d.get("versionId"), str(d["sha256"]), int(d["size"]))


class ArtifactStore(Protocol):
    @property
    def bucket(self) -> str: ...

    def read(self, key: str, version_id: str | None = None, max_bytes: int | None = None) -> StoredObject:
        """The object's bytes (``ArtifactMissing``; ``ArtifactTooLarge`` past ``max_bytes``)."""
        ...

    def put_once(self, key: str, data: bytes) -> str | None:
        """Write ``key`` only if it does not exist yet; return the version id of what is there.

        If the key already exists the existing object is left alone and its version id returned
        (content-addressed keys: the same key always names the same bytes)."""
        ...

    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def presign_get(self, key: str, version_id: str | None, ttl_seconds: int) -> str: ...

    def presign_put(self, key: str, size: int, sha256_hex: str, ttl_seconds: int) -> tuple[str, dict[str, str]]:
        """A URL that accepts exactly ``size`` bytes whose SHA-256 is ``sha256_hex``, and the
        headers the client must send with it."""
        ...
