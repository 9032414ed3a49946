"""A versioned document store port: records are JSON documents with optimistic concurrency.

The DynamoDB adapter (hallmark.adapters.dynamo_docs) and an in-memory fake implement it, so
domain services (packages, upgrades, ceremonies, orders) stay free of boto3.
"""

from __future__ import annotations

from typing import Any, Protocol

from hallmark.errors import Conflict, NotFound


class DocStore(Protocol):
    def get(self, kind: str, ident: str) -> dict[str, Any] | None: ...

    def create(self, kind: str, ident: str, doc: dict[str, Any]) -> None:
        """Raises Conflict if the document already exists."""
        ...

    def replace(self, kind: str, ident: str, doc: dict[str, Any], expected_version: int) -> None:
        """Writes doc with version expected_version + 1; raises Conflict if the stored version differs."""
        ...

    def query(self, kind: str, limit: int = 100) -> list[dict[str, Any]]: ...


def update(store: DocStore, kind: str, ident: str, change: Any, attempts: int = 5) -> dict[str, Any]:
    """Read-modify-write with optimistic concurrency: ``change(doc)`` mutates and may raise."""
    for _ in range(attempts):
        doc = store.get(kind, ident)
        if doc is None:
            raise NotFound(kind, ident)
        version = doc.pop("version")
        change(doc)
        try:
            store.replace(kind, ident, doc, version)
        except Conflict:
            continue
        doc["version"] = version + 1
        return doc
    raise Conflict(f"{kind} {ident} is being changed concurrently; retry")
