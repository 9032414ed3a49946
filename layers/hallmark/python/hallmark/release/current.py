"""The manifest repository: the signed envelopes (versioned, object-locked) and the "current"
pointer per package name (what is published now).

Publishing commits an envelope and moves the pointer forward; an emergency upgrade that is not
ratified moves it back (or clears it). Over the :class:`RepositoryStore` port, free of boto3."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol


class RepositoryStore(Protocol):
    """The manifest repository bucket (``hallmark.adapters.s3.S3BlobStore``)."""

    @property
    def bucket(self) -> str: ...

    def get(self, key: str) -> bytes:
        """The object's bytes; ``KeyError`` if there is none."""
        ...

    def write(self, key: str, data: bytes, *, content_type: str | None = None,
              metadata: Mapping[str, str] | None = None) -> str | None:
        """Write the object; returns its version id (``None`` on an unversioned bucket)."""
        ...

    def delete(self, key: str) -> None: ...


def pointer_key(name: str) -> str:
    return f"current/{name}.json"


def repository_key(meta: Mapping[str, Any], package_id: str) -> str:
    return f"manifests/{meta['name']}/{meta['version']}/{package_id}.dsse.json"


class ManifestRepository:
    def __init__(self, store: RepositoryStore) -> None:
        self.store = store

    def commit(self, package: Mapping[str, Any], envelope: bytes, signature_id: str) -> dict[str, Any]:
        """Commit the signed envelope of ``package``; returns its ``{bucket, key, versionId}``."""
        key = repository_key(package["meta"], package["packageId"])
        version = self.store.write(key, envelope, content_type="application/json",
                                   metadata={"manifest-signature-id": signature_id.replace(":", "_")})
        return {"bucket": self.store.bucket, "key": key, "versionId": version}

    def current(self, name: str) -> dict[str, Any] | None:
        try:
            body = self.store.get(pointer_key(name))
        except KeyError:
            return None
        doc: dict[str, Any] = json.loads(body)
        return doc

    def point(self, name: str, pointer: Mapping[str, Any]) -> None:
        self.store.write(pointer_key(name), json.dumps(pointer, sort_keys=True).encode(), content_type="application/json")

    def clear(self, name: str) -> None:
        self.store.delete(pointer_key(name))
