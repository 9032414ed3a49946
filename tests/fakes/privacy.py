"""In-memory ports of the privacy vault (hallmark.privacy.vault): subject records and data keys."""

from __future__ import annotations

import os
import threading

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hallmark.privacy.vault import SubjectRecord


class InMemorySubjectStore:
    def __init__(self) -> None:
        self._by_id: dict[str, SubjectRecord] = {}
        self._lock = threading.Lock()

    def get(self, subject_id: str) -> SubjectRecord | None:
        with self._lock:
            return self._by_id.get(subject_id)

    def by_pseudonym(self, pseudonym: str) -> SubjectRecord | None:
        with self._lock:
            return next((r for r in self._by_id.values() if r.pseudonym == pseudonym), None)

    def create(self, record: SubjectRecord) -> SubjectRecord:
        with self._lock:
            return self._by_id.setdefault(record.subject_id, record)

    def delete(self, record: SubjectRecord) -> None:
        with self._lock:
            self._by_id.pop(record.subject_id, None)

    def dump(self) -> str:
        """Everything stored (what a table scan would show)."""
        with self._lock:
            return repr(sorted(self._by_id.items()))


class LocalDataKeys:
    """``DataKeys`` with a local wrapping key (KMS in AWS); counts unwraps."""

    def __init__(self) -> None:
        self._kek = AESGCM(AESGCM.generate_key(bit_length=256))
        self.unwraps = 0

    def generate(self) -> tuple[bytes, bytes]:
        key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(12)
        return key, nonce + self._kek.encrypt(nonce, key, b"hallmark/privacy/dek")

    def unwrap(self, wrapped: bytes) -> bytes:
        self.unwraps += 1
        return self._kek.decrypt(wrapped[:12], wrapped[12:], b"hallmark/privacy/dek")
