"""Crypto-shredding of personal data on append-only chains (issue 22, item 3; PROTOTYPE, not wired).

A person (an OIDC ``sub``: submitter, approver, witness, buyer, seller, superadmin) never goes on a
chain in the clear. The first time a subject is named, the vault makes a random pseudonym
(``psn-<32 hex>``) and a 256-bit data key, stored wrapped by KMS (``DataKeys``) in the state
table (``SubjectStore``). Events then carry the pseudonym where the id stood, and each personal
field as ``{"psn", "f", "ct"}``: AES-256-GCM under the subject's data key, the AAD binding
pseudonym and field name. Erasure deletes the subject's record (its wrapped key and the
id -> pseudonym link): the ciphertexts on the chains stay, byte for byte, so every event hash,
checkpoint, inclusion proof and bundle still verifies, and nothing can open them any more.
"""

from __future__ import annotations

import base64
import os
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hallmark._domain import EventDraft


@dataclass(frozen=True)
class SubjectRecord:
    subject_id: str
    pseudonym: str
    wrapped_key: bytes


class SubjectStore(Protocol):
    def get(self, subject_id: str) -> SubjectRecord | None: ...

    def by_pseudonym(self, pseudonym: str) -> SubjectRecord | None: ...

    def create(self, record: SubjectRecord) -> SubjectRecord:
        """Store ``record`` unless the subject has one; return the stored one (first write wins)."""
        ...

    def delete(self, subject_id: str) -> bool: ...


class DataKeys(Protocol):
    """KMS ``GenerateDataKey`` / ``Decrypt`` under the privacy key."""

    def generate(self) -> tuple[bytes, bytes]:
        """``(plaintext 32-byte key, wrapped key)``."""
        ...

    def unwrap(self, wrapped: bytes) -> bytes: ...


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

    def delete(self, subject_id: str) -> bool:
        with self._lock:
            return self._by_id.pop(subject_id, None) is not None

    def dump(self) -> str:
        """Everything stored (what a table scan would show)."""
        with self._lock:
            return repr(sorted(self._by_id.items()))


def _aad(pseudonym: str, field: str) -> bytes:
    return f"hallmark/privacy/v1\n{pseudonym}\n{field}".encode()


class Erased(LookupError):
    """The subject's key material is gone."""


class Vault:
    def __init__(self, store: SubjectStore, keys: DataKeys) -> None:
        self._store = store
        self._keys = keys
        self._erased: set[str] = set()  # pseudonyms erased by this process (a tombstone table in AWS)

    def pseudonym(self, subject_id: str) -> str:
        record = self._store.get(subject_id)
        if record is None:
            _, wrapped = self._keys.generate()
            record = self._store.create(SubjectRecord(subject_id, f"psn-{uuid.uuid4().hex}", wrapped))
        return record.pseudonym

    def seal(self, subject_id: str, field: str, value: Any) -> dict[str, str]:
        """``value`` (a string) as ``{"psn", "f", "ct"}`` under the subject's data key."""
        psn = self.pseudonym(subject_id)
        record = self._store.get(subject_id)
        if record is None:
            raise Erased(psn)
        nonce = os.urandom(12)
        ct = AESGCM(self._keys.unwrap(record.wrapped_key)).encrypt(nonce, str(value).encode(), _aad(psn, field))
        return {"psn": psn, "f": field, "ct": base64.b64encode(nonce + ct).decode()}

    def open(self, sealed: Any) -> str | None:
        """The clear value of a sealed field, or None when the subject was erased (or it is not sealed)."""
        if not isinstance(sealed, dict) or not {"psn", "f", "ct"} <= sealed.keys():
            return None
        record = self._store.by_pseudonym(str(sealed["psn"]))
        if record is None:
            return None
        raw = base64.b64decode(str(sealed["ct"]))
        try:
            return AESGCM(self._keys.unwrap(record.wrapped_key)).decrypt(
                raw[:12], raw[12:], _aad(record.pseudonym, str(sealed["f"]))).decode()
        except InvalidTag:
            return None

    def erase(self, subject_id: str, *, actor: str, request_id: str) -> EventDraft:
        """Destroy the subject's key material; ``SubjectErased`` names only the pseudonym."""
        record = self._store.get(subject_id)
        if record is None:
            raise Erased(subject_id)
        self._store.delete(subject_id)
        self._erased.add(record.pseudonym)
        return EventDraft("SubjectErased", record.pseudonym, {"requestId": request_id}, actor=actor)


class LocalDataKeys:
    """``DataKeys`` with a local wrapping key (tests; AWS wraps with KMS)."""

    def __init__(self) -> None:
        self._kek = AESGCM(AESGCM.generate_key(bit_length=256))

    def generate(self) -> tuple[bytes, bytes]:
        key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(12)
        return key, nonce + self._kek.encrypt(nonce, key, b"hallmark/privacy/dek")

    def unwrap(self, wrapped: bytes) -> bytes:
        return self._kek.decrypt(wrapped[:12], wrapped[12:], b"hallmark/privacy/dek")
