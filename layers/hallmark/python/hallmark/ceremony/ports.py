"""Repository ports of the ceremony package and their in-memory fakes.

Completing a ceremony writes the ceremony and every artifact's new tier together: the
DynamoDB implementation uses one ``TransactWriteItems`` (version condition on the ceremony,
a condition on each artifact's current tier); the fake does the same under a lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

from hallmark.ceremony.models import ArtifactProvenance, Ceremony, ProvenanceAttestation, Tier, Witness


class TierAward(NamedTuple):
    """Move ``record.artifact_id`` from ``from_tier`` (checked) to ``record.tier``."""

    from_tier: Tier | None
    record: ArtifactProvenance


class WitnessRepository(Protocol):
    def get(self, witness_id: str) -> Witness | None: ...

    def put(self, witness: Witness, *, expected_version: int | None) -> None:
        """``expected_version=None``: must not exist yet; else must match (``Conflict``)."""
        ...


class CeremonyRepository(Protocol):
    def get(self, ceremony_id: str) -> Ceremony | None: ...

    def create(self, ceremony: Ceremony) -> None: ...

    def save(self, ceremony: Ceremony, *, expected_version: int, awards: Sequence[TierAward] = ()) -> None:
        """Atomically check the ceremony's version and each artifact's current tier, then
        write all of them. ``Conflict`` (and nothing written) if any check fails."""
        ...

    def artifact(self, artifact_id: str) -> ArtifactProvenance | None: ...

    def provenance(self, signature_id: str) -> ProvenanceAttestation | None:
        """The stored attestation named ``signature_id`` (``None`` if there is none)."""
        ...


class TaskTokens(Protocol):
    """The Step Functions task token a waiting ceremony execution resumes with.

    Attaching the token and completing the witnesses can happen in either order; whoever
    comes second must resume the execution, and only one of them may. ``claim`` hands the
    token out once, and only while the ceremony is ``Witnessed``: both sides call it after
    their own write, so exactly one of them gets it.
    """

    def attach_task_token(self, ceremony_id: str, token: str) -> None:
        """Keep ``token`` on the ceremony (a retried wait replaces it); ``NotFound`` if none."""
        ...

    def claim_task_token(self, ceremony_id: str) -> str | None:
        """The token, once, if one is attached and the ceremony is ``Witnessed``; else ``None``."""
        ...

    def release_task_token(self, ceremony_id: str) -> None:
        """Undo a claim whose resume failed, so that a later attempt may claim again."""
        ...


