"""Ports of the marketplace service: where artifacts come from, where encrypted deliveries
go, what encrypts them, how a paid order reaches the ArtifactPublisher, and the governance
that approves settlement plans. Adapters over S3, KMS (aws-encryption-sdk) and SQS live in
``hallmark.adapters.market_aws``; ``GovernanceService`` satisfies :class:`SettlementGovernance`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from hallmark.governance.models import ApprovalForm, ApprovalSubject, SettlementApproval, SubjectKind
from hallmark.governance.service import ApprovalResult, Opened


class ArtifactSource(Protocol):
    """Reads a released artifact (the package bytes the manifest signed)."""

    def read(self, bucket: str, key: str, version_id: str | None = None) -> bytes: ...


class DeliveryStore(Protocol):
    """Holds encrypted deliveries and hands out short-lived download URLs."""

    @property
    def bucket(self) -> str: ...

    def put(self, key: str, data: bytes, metadata: Mapping[str, str]) -> None: ...

    def presign(self, key: str, ttl_seconds: int) -> str: ...


class Encryptor(Protocol):
    """Envelope encryption bound to an encryption context (``EnvelopeEncryptor``)."""

    @property
    def key_arn(self) -> str: ...

    def encrypt(self, plaintext: bytes, context: Mapping[str, str]) -> bytes: ...


class DeliveryQueue(Protocol):
    """Hands a paid order to the ArtifactPublisher (at least once)."""

    def enqueue(self, order_id: str) -> None: ...


class SettlementGovernance(Protocol):
    """The multisig that approves settlement plans (``hallmark.governance.GovernanceService``)."""

    def open_settlement(
        self,
        *,
        settlement_id: str,
        plan_digest: str,
        proposed_by: str,
        now: datetime,
        task_token: str | None = None,
        deadline: datetime | None = None,
        plan_summary: Mapping[str, Any] | None = None,
    ) -> Opened[SettlementApproval]: ...

    def load(self, kind: SubjectKind, subject_id: str) -> ApprovalSubject: ...

    def record_approval(
        self, subject: ApprovalSubject, form: ApprovalForm | Mapping[str, Any], caller_sub: str, now: datetime
    ) -> ApprovalResult: ...


class DeliveryReader(Protocol):
    """Reads an encrypted delivery back (the bytes the ArtifactPublisher stored)."""

    def get(self, key: str, max_bytes: int) -> bytes:
        """The stored bytes; ``KeyError`` if absent, ``OverflowError`` if over ``max_bytes``."""
        ...


class Decryptor(Protocol):
    """KMS decryption of a delivery, refused unless the message carries ``expected_context``
    exactly (``EnvelopeEncryptor``: ``context_mismatch`` 403, ``decryption_failed`` 422)."""

    def decrypt(self, ciphertext: bytes, expected_context: Mapping[str, str]) -> bytes: ...
