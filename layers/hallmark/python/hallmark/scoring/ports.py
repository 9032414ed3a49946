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


class InMemoryBlobStore:
    """A BlobStore (and the intake's ChunkStore, the pipeline's RangeReader) in a dict: tests and
    local runs."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def get(self, key: str) -> bytes:
        return self.objects[key]

    def get_range(self, key: str, start: int, length: int) -> bytes:
        return self.objects[key][start:start + length]

    def put(self, key: str, data: bytes) -> None:
        self.objects[key] = data

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)
