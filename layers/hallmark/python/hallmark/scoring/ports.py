"""Ports of the scoring flow. Adapters (S3, a local directory, in-memory fakes) implement them."""

from __future__ import annotations

from typing import Protocol


class BlobStore(Protocol):
    """A flat key -> bytes store (an S3 bucket in AWS)."""

    def get(self, key: str) -> bytes:
        """Return the object's bytes; raise ``KeyError`` when there is no such key."""
        ...

    def put(self, key: str, data: bytes) -> None:
        """Create or replace the object."""
        ...


