"""In-memory fakes (tests only; never in the Lambda layer)."""

from __future__ import annotations

import copy
import threading
from typing import Any

from hallmark.errors import Conflict, NotFound


class InMemoryDocStore:
    def __init__(self) -> None:
        self._docs: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, kind: str, ident: str) -> dict[str, Any] | None:
        with self._lock:
            doc = self._docs.get((kind, ident))
            return copy.deepcopy(doc) if doc else None

    def create(self, kind: str, ident: str, doc: dict[str, Any]) -> None:
        with self._lock:
            if (kind, ident) in self._docs:
                raise Conflict(f"{kind} {ident} already exists")
            self._docs[(kind, ident)] = {**copy.deepcopy(doc), "version": 1}

    def replace(self, kind: str, ident: str, doc: dict[str, Any], expected_version: int) -> None:
        with self._lock:
            current = self._docs.get((kind, ident))
            if current is None:
                raise NotFound(kind, ident)
            if current["version"] != expected_version:
                raise Conflict(f"{kind} {ident} changed concurrently", {"expected": expected_version,
                                                                         "actual": current["version"]})
            self._docs[(kind, ident)] = {**copy.deepcopy(doc), "version": expected_version + 1}

    def query(self, kind: str, limit: int = 100) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(d) for (k, _), d in self._docs.items() if k == kind][:limit]
