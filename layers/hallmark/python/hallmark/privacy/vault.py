"""Crypto-shredding of personal data on append-only chains (issue 22, item 3).

A person (an OIDC ``sub``: submitter, approver, witness, buyer, seller, superadmin) never goes on
a chain in the clear. The first time a person is named, the vault makes a random pseudonym
(``psn-<32 hex>``, :data:`PSEUDONYM_RE`) and a 256-bit data key, kept wrapped by KMS
(:class:`DataKeys`) in the :class:`SubjectStore` (the state table). Events carry the pseudonym
where the id stood, and each personal free-text field as ``{"psn", "f", "ct"}``: AES-256-GCM
under the person's data key, the AAD binding pseudonym and field name. Erasure deletes the
person's record (the wrapped key and both directions of the id <-> pseudonym link): the
ciphertexts and pseudonyms on the chains stay byte for byte, so every event hash, checkpoint,
inclusion proof and bundle still verifies, and nothing opens or links them any more.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PSEUDONYM_RE: Final = re.compile(r"psn-[0-9a-f]{32}")
ERASED: Final = "erased"


@dataclass(frozen=True)
class SubjectRecord:
    subject_id: str
    pseudonym: str
    wrapped_key: bytes


class SubjectStore(Protocol):
    """Where each person's record lives (the state table in AWS)."""

    def get(self, subject_id: str) -> SubjectRecord | None: ...

    def by_pseudonym(self, pseudonym: str) -> SubjectRecord | None: ...

    def create(self, record: SubjectRecord) -> SubjectRecord:
        """Store ``record`` unless the subject has one; return the stored one (first write wins)."""
        ...

    def delete(self, record: SubjectRecord) -> None:
        """Remove the record and its pseudonym index (idempotent)."""
        ...


class DataKeys(Protocol):
    """KMS ``GenerateDataKey`` / ``Decrypt`` under the privacy key."""

    def generate(self) -> tuple[bytes, bytes]:
        """``(plaintext 32-byte key, wrapped key)``."""
        ...

    def unwrap(self, wrapped: bytes) -> bytes: ...


class Erased(LookupError):
    """The subject has no key material (never named, or erased)."""


def _aad(pseudonym: str, field: str) -> bytes:
    return f"hallmark/privacy/v1\n{pseudonym}\n{field}".encode()


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"psn", "f", "ct"}


class Vault:
    """Pseudonyms, sealed fields, keyed event ids and erasure over the two ports."""

    def __init__(self, store: SubjectStore, keys: DataKeys) -> None:
        self._store = store
        self._keys = keys
        self._plain: dict[str, bytes] = {}  # unwrapped data keys of this process, by pseudonym

    def _record(self, subject_id: str) -> SubjectRecord:
        record = self._store.get(subject_id)
        if record is None:
            _, wrapped = self._keys.generate()
            record = self._store.create(SubjectRecord(subject_id, f"psn-{secrets.token_hex(16)}", wrapped))
        return record

    def _key(self, record: SubjectRecord) -> bytes:
        key = self._plain.get(record.pseudonym)
        if key is None:
            key = self._plain[record.pseudonym] = self._keys.unwrap(record.wrapped_key)
        return key

    def pseudonym(self, subject_id: str) -> str:
        """The person's pseudonym (made, with its data key, the first time the person is named)."""
        if PSEUDONYM_RE.fullmatch(subject_id):
            return subject_id  # already a pseudonym (an id read back from a chain)
        return self._record(subject_id).pseudonym

    def lookup(self, subject_id: str) -> str | None:
        """The person's pseudonym if they have one (makes none)."""
        record = self._store.get(subject_id)
        return record.pseudonym if record is not None else None

    def identity(self, pseudonym: str) -> str | None:
        """The id behind a pseudonym, or None once erased (or never made)."""
        record = self._store.by_pseudonym(pseudonym)
        return record.subject_id if record else None

    def seal(self, subject_id: str, field: str, value: str) -> dict[str, str]:
        """``value`` as ``{"psn", "f", "ct"}`` under the person's data key."""
        record = self._record(subject_id)
        nonce = os.urandom(12)
        ct = AESGCM(self._key(record)).encrypt(nonce, value.encode(), _aad(record.pseudonym, field))
        return {"psn": record.pseudonym, "f": field, "ct": base64.b64encode(nonce + ct).decode()}

    def open(self, sealed: Any) -> str | None:
        """The clear value of a sealed field, or None when its person was erased."""
        if not is_sealed(sealed):
            return None
        record = self._store.by_pseudonym(str(sealed["psn"]))
        if record is None:
            return None
        try:
            raw = base64.b64decode(str(sealed["ct"]), validate=True)
            return AESGCM(self._key(record)).decrypt(raw[:12], raw[12:], _aad(record.pseudonym, str(sealed["f"]))
                                                     ).decode()
        except (InvalidTag, ValueError):
            return None

    def keyed_id(self, event_id: str, persons: Iterable[str]) -> str:
        """An event id a guessed name cannot confirm: HMAC-SHA256 of ``event_id`` chained under
        the data key of each person named (sorted), so erasing any one of them breaks the link.
        Deterministic, so a retried event keeps its id (the chain's idempotency)."""
        mac = event_id.encode()
        for person in sorted(set(persons)):
            mac = hmac.new(self._key(self._record(person)), b"hallmark/event-id/v1\n" + mac, hashlib.sha256).digest()
        return "p" + mac.hex()[:31]

    def erase(self, subject_id: str) -> str:
        """Destroy the person's key material and link; returns the (now unlinkable) pseudonym."""
        record = self._store.get(subject_id)
        if record is None:
            raise Erased(subject_id)
        self._store.delete(record)
        self._plain.pop(record.pseudonym, None)
        return record.pseudonym

    def erase_pseudonym(self, pseudonym: str) -> None:
        """``erase`` by pseudonym (idempotent: an erased one stays erased)."""
        record = self._store.by_pseudonym(pseudonym)
        if record is not None:
            self._store.delete(record)
        self._plain.pop(pseudonym, None)
