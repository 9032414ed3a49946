"""The ports the domain talks to. Adapters in ``hallmark.adapters`` implement them over AWS;
tests use in-memory fakes or keys generated at test time."""

from __future__ import annotations

from typing import Any, Protocol


class Signer(Protocol):
    """Signs bytes with ECDSA P-256 / SHA-256 and returns a DER signature.

    ``key_id`` is the stable identifier published next to the signature (for KMS: the key ARN).
    """

    @property
    def key_id(self) -> str: ...

    def sign(self, message: bytes) -> bytes: ...

    def public_key_pem(self) -> bytes: ...


class AuditEmitter(Protocol):
    """Records a state change on the audit log (asynchronously, serialized per chain)."""

    def emit(
        self,
        *,
        chain: str,
        type: str,
        actor: str,
        subject: str,
        data: dict[str, Any],
        event_id: str | None = None,
    ) -> str:
        """Queue one event; returns its id. A repeated ``event_id`` never makes a second entry."""
        ...
